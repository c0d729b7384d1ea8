"""colorlab.gamut: the 313 bins, the 261 sRGB-reachable bins and exact k-NN against cKDTree."""
import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from colorlab.color import rgb_to_lab
from colorlab.gamut import ab_bins, nearest_bin, nearest_bins, srgb_reachable_bins


def test_bins_are_the_reference_table():
    q = ab_bins()
    assert q.shape == (313, 2) and q.dtype == torch.float32
    assert ab_bins(torch.float64).dtype == torch.float64
    # on the grid of 10 and sorted by a, then b (the order of the models' output channels)
    assert torch.equal(q, torch.round(q / 10) * 10)
    keys = (q[:, 0] * 1000 + q[:, 1]).tolist()
    assert keys == sorted(keys)


def test_bins_equal_the_shared_reference_file(shared_data):
    ref = np.load(shared_data / "reference" / "pts_in_hull.npy")
    np.testing.assert_array_equal(ab_bins(torch.float64).numpy(), ref.astype(np.float64))


def test_srgb_reaches_261_bins_all_among_the_313_and_the_rest_is_a_ring():
    reach = srgb_reachable_bins()
    assert reach.shape == (261, 2)
    table = {tuple(v) for v in ab_bins().int().tolist()}
    reached = {tuple(v) for v in reach.int().tolist()}
    assert reached <= table
    ring = table - reached
    assert len(ring) == 52
    # every ring bin touches (8-neighbourhood) a reachable bin
    for a, b in ring:
        assert any((a + da, b + db) in reached for da in (-10, 0, 10) for db in (-10, 0, 10))


def test_srgb_reachable_rejects_bad_grid():
    with pytest.raises(ValueError, match="grid"):
        srgb_reachable_bins(0)


def _kdtree(points, bins, k):
    d, i = cKDTree(bins).query(points, k=k)
    return d.reshape(len(points), k) ** 2, i.reshape(len(points), k)


@pytest.mark.parametrize("k", [1, 5, 10])
def test_knn_matches_ckdtree_in_and_out_of_gamut(k, device):
    gen = torch.Generator().manual_seed(k)
    inside = rgb_to_lab(torch.rand(2, 3, 30, 30, generator=gen, dtype=torch.float64))[:, 1:]
    outside = torch.rand(2, 2, 30, 30, generator=gen, dtype=torch.float64) * 400 - 200
    ab = torch.cat([inside, outside]).to(device)
    idx, d2 = nearest_bins(ab, k)
    assert idx.shape == (4, k, 30, 30) and d2.shape == (4, k, 30, 30)
    points = ab.permute(0, 2, 3, 1).reshape(-1, 2).cpu().numpy()
    ref_d2, ref_i = _kdtree(points, ab_bins(torch.float64).numpy(), k)
    ours_i = idx.permute(0, 2, 3, 1).reshape(-1, k).cpu().numpy()
    ours_d2 = d2.permute(0, 2, 3, 1).reshape(-1, k).cpu().numpy()
    np.testing.assert_allclose(ours_d2, ref_d2, rtol=1e-9, atol=1e-6)
    assert (ours_i == ref_i).mean() > 0.9999  # only exact ties may differ in order


def test_knn_float32_distances_match():
    ab = rgb_to_lab(torch.rand(4, 3, 40, 40))[:, 1:]
    _, d2 = nearest_bins(ab, 5)
    points = ab.permute(0, 2, 3, 1).reshape(-1, 2).double().numpy()
    ref_d2, _ = _kdtree(points, ab_bins(torch.float64).numpy(), 5)
    np.testing.assert_allclose(d2.permute(0, 2, 3, 1).reshape(-1, 5).double().numpy(), ref_d2,
                               atol=2e-3)


def test_ties_are_ordered_by_a_then_b():
    ab = torch.zeros(1, 2, 1, 1)  # (0, 0) is a bin; its 4 neighbours tie at distance 10
    idx, d2 = nearest_bins(ab, 5)
    centres = ab_bins()[idx.flatten()].tolist()
    assert centres == [[0, 0], [-10, 0], [0, -10], [0, 10], [10, 0]]
    assert d2.flatten().tolist() == [0, 100, 100, 100, 100]
    again, _ = nearest_bins(ab.repeat(3, 1, 4, 4), 5)
    assert (again == idx).all()


@pytest.mark.parametrize("k", [1, 4, 7, 15, 20])
def test_k_nearest_equals_a_dense_float64_search_ties_included(k):
    """colorlab.bin_search._k_nearest on (N, 2) points, against all 313 distances in float64
    ordered by (distance, a, b): points on bins and halfway between them (many ties), in the
    gamut and far outside it (the full search), for k inside and beyond the 16-site block."""
    from colorlab.bin_search import _k_nearest

    bins = ab_bins(torch.float64)
    gen = torch.Generator().manual_seed(k)
    halves = torch.arange(-125.0, 130.0, 5.0, dtype=torch.float64)
    points = torch.cat([torch.cartesian_prod(halves, halves),
                        torch.rand(500, 2, generator=gen, dtype=torch.float64) * 500 - 250])
    idx, d2 = _k_nearest(points, bins, k)
    dense = ((points[:, None, :] - bins[None, :, :]) ** 2).sum(-1)  # (N, 313)
    rank = np.lexsort((np.broadcast_to(bins[:, 1].numpy(), dense.shape),
                       np.broadcast_to(bins[:, 0].numpy(), dense.shape), dense.numpy()), axis=-1)
    np.testing.assert_array_equal(idx.numpy(), rank[:, :k])
    np.testing.assert_allclose(d2.numpy(), np.take_along_axis(dense.numpy(), rank[:, :k], 1),
                               rtol=1e-12, atol=1e-9)  # cdist (the full search) rounds


def test_custom_bins_off_the_lattice_use_the_full_search():
    gen = torch.Generator().manual_seed(1)
    bins = torch.rand(40, 2, generator=gen, dtype=torch.float64) * 100
    ab = torch.rand(1, 2, 10, 10, generator=gen, dtype=torch.float64) * 120 - 10
    idx, d2 = nearest_bins(ab, 3, bins)
    ref_d2, ref_i = _kdtree(ab.permute(0, 2, 3, 1).reshape(-1, 2).numpy(), bins.numpy(), 3)
    np.testing.assert_array_equal(idx.permute(0, 2, 3, 1).reshape(-1, 3).numpy(), ref_i)
    np.testing.assert_allclose(d2.permute(0, 2, 3, 1).reshape(-1, 3).numpy(), ref_d2, atol=1e-9)


def test_custom_lattice_bins_use_their_own_table():
    bins = torch.tensor([[0.0, 0.0], [0.0, 5.0], [5.0, 0.0]])  # spacing 5
    ab = torch.tensor([4.0, 1.0]).view(1, 2, 1, 1)
    assert nearest_bin(ab, bins).item() == 2


def test_nearest_bin_shapes_and_leading_dims():
    ab = torch.zeros(2, 3, 2, 4, 5)
    assert nearest_bin(ab).shape == (2, 3, 4, 5)
    assert nearest_bin(torch.zeros(2, 4, 5)).shape == (4, 5)


def test_bad_inputs():
    ab = torch.zeros(1, 2, 2, 2)
    with pytest.raises(ValueError, match="k must be"):
        nearest_bins(ab, 314)
    with pytest.raises(ValueError, match="k must be"):
        nearest_bins(ab, 0)
    with pytest.raises(ValueError, match="2 channels"):
        nearest_bins(torch.zeros(1, 3, 2, 2))
    with pytest.raises(TypeError, match="floating-point"):
        nearest_bins(torch.zeros(1, 2, 2, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match="NaN or inf"):
        nearest_bins(torch.full((1, 2, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="empty"):
        nearest_bins(torch.zeros(0, 2, 2, 2))
    with pytest.raises(ValueError, match="bins must have shape"):
        nearest_bins(ab, 1, torch.zeros(5, 3))


def _srgb_ab_slices():
    """The ab of all 16.7 million 8-bit sRGB colours, one red level at a time (float32)."""
    levels = torch.arange(256, dtype=torch.float32) / 255
    gb = torch.cartesian_prod(levels, levels)
    for red in levels:
        rgb = torch.cat([red.expand(len(gb), 1), gb], dim=1)
        yield rgb_to_lab(rgb.reshape(-1, 3, 1, 1))[:, 1:, 0, 0]


def _cube_surface_ab(n: int = 513):
    """The ab of the six faces of the sRGB cube, ``n`` x ``n`` each: its image holds the edge of
    the ab region that sRGB colours (8-bit or not) reach."""
    t = torch.linspace(0, 1, n)
    u, v = torch.meshgrid(t, t, indexing="ij")
    faces = []
    for axis in range(3):
        for value in (0.0, 1.0):
            others = [i for i in range(3) if i != axis]
            face = torch.empty(3, n * n)
            face[axis], face[others[0]], face[others[1]] = value, u.flatten(), v.flatten()
            faces.append(face)
    rgb = torch.cat(faces, dim=1).T
    return rgb_to_lab(rgb.reshape(-1, 3, 1, 1))[:, 1:, 0, 0]


def test_the_fast_search_is_exact_for_every_srgb_colour_up_to_SRGB_EXACT_K():
    """What the trainer's deferred check relies on (colorlab.bin_search.deferred_exactness): for
    k <= SRGB_EXACT_K the 16-site search needs no full search for any sRGB colour, 8-bit or not.

    With all 16 sites of its block in the gamut, a point's 9 nearest sites are provably nearer
    than any site outside the block, so only points near the gamut's edge (where sites are
    missing) can need the full search. So: every 8-bit colour is exact, and the points that are
    not lie at least a Lab unit outside the edge of what sRGB reaches (the image of the cube's
    surface). The constant is the largest such k: at k + 1 some 8-bit colours are not exact."""
    from colorlab.bin_search import SRGB_EXACT_K
    from colorlab.gamut import needs_full_search

    inexact = {SRGB_EXACT_K: 0, SRGB_EXACT_K + 1: 0}
    for ab in _srgb_ab_slices():
        for k in inexact:
            inexact[k] += int(needs_full_search(ab.T.reshape(2, 1, -1), k).sum())
    assert inexact[SRGB_EXACT_K] == 0 and inexact[SRGB_EXACT_K + 1] > 0
    a = torch.arange(-140.0, 140.0, 0.25)
    grid = torch.cartesian_prod(a, a)
    far = grid[needs_full_search(grid.T.reshape(2, 1, -1), SRGB_EXACT_K).flatten()]
    far = far.double().numpy()
    edge = cKDTree(_cube_surface_ab().double().numpy())
    distance, _ = edge.query(far, k=1)
    assert len(far) > 0 and distance.min() > 1.0


def test_deferred_exactness_keeps_the_flag_on_the_device(monkeypatch):
    """Inside deferred_exactness, on an accelerator, the search reads nothing back: it appends
    its flag and returns the fast result (exact for sRGB colours); the flags tell afterwards.
    Outside the block, and on the CPU, it stays exact with its full-search fallback."""
    import colorlab.bin_search as bin_search
    from colorlab._validation import trusted_values
    from colorlab.bin_search import all_exact, deferred_exactness

    inside = rgb_to_lab(torch.rand(1, 3, 6, 6, generator=torch.Generator().manual_seed(0)))[:, 1:]
    far = torch.full((1, 2, 1, 1), 300.0)  # far outside: the fast search is not exact here
    full_searches = []
    real_full = bin_search._full_search
    monkeypatch.setattr(bin_search, "_full_search", lambda *a: (full_searches.append(1),
                                                                real_full(*a))[1])
    expected = [nearest_bins(x, 5) for x in (inside, far)]
    assert full_searches == [1]  # the far point needed it
    monkeypatch.setattr(bin_search, "_syncs_are_costly", lambda device: True)
    flags = []
    with deferred_exactness(flags):
        got = nearest_bins(inside, 5)
        assert torch.equal(got[0], expected[0][0]) and torch.equal(got[1], expected[0][1])
        assert all_exact(flags) and len(flags) == 1 and flags[0].shape == ()
        with trusted_values():  # as in the trainer
            idx, d2 = nearest_bins(far, 5)
            # not the nearest bins, but values that no kernel fails on before the flags are read
            assert bool((idx >= 0).all()) and bool(torch.isfinite(d2).all())
            from colorlab.losses import rebalanced_cross_entropy

            loss = rebalanced_cross_entropy(torch.zeros(1, 313, 1, 1), far)
            assert bool(torch.isfinite(loss))
            with deferred_exactness(None):  # exact again inside, whatever the outer block does
                assert torch.equal(nearest_bins(far, 5)[0], expected[1][0])
    assert full_searches == [1, 1] and len(flags) == 3 and not all_exact(flags)
    assert all_exact([])
    outside_block = nearest_bins(far, 5)  # the block is over: exact again
    assert torch.equal(outside_block[0], expected[1][0]) and full_searches == [1, 1, 1]


def test_needs_full_search_rejects_bad_input():
    from colorlab.gamut import needs_full_search

    with pytest.raises(ValueError, match="k must be an integer from 1 to 15"):
        needs_full_search(torch.zeros(1, 2, 1, 1), k=16)
    with pytest.raises(ValueError, match="2"):
        needs_full_search(torch.zeros(1, 3, 1, 1))
    with pytest.raises(TypeError, match="floating"):
        needs_full_search(torch.zeros(1, 2, 1, 1, dtype=torch.long))
    from colorlab.bin_search import _needs_full

    off_lattice = torch.tensor([[0.0, 0.0], [3.3, 7.1], [10.0, 1.7]], dtype=torch.float64)
    with pytest.raises(ValueError, match="square lattice"):
        _needs_full(torch.zeros(2, 2), off_lattice, 1)
