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
