"""The recorded results outside a checkout: ``colorlab results fetch`` and the chapters' fallback.

A reader in Colab has one chapter notebook and colorlab from the repository; a student has the
wheel. Neither holds ``results/``. :func:`fetch_results` fetches ``results/`` of the book's version
(one shallow ``git fetch`` of one commit, then only that folder is checked out) into the cache
(``$COLORLAB_CACHE``, default ``~/.cache/colorlab``), where later calls find it without network.

* ``COLORLAB_REPOSITORY``: where from; default :data:`REPOSITORY`, the ``repository.url`` of the
  book's ``_config.yml`` (a test checks they agree). Any git URL works, ``file:///path/to/clone``
  included (offline tests).
* ``COLORLAB_REF``: which version; default the commit colorlab was installed from (pip records it
  for ``pip install git+...``, which is what the chapters' install cell runs), else
  :data:`BRANCH`, the branch the HTML book is built from.

:func:`fetched_recorded_results` is what :func:`colorlab.results.book_results` calls when no
``results/`` is at hand: the fetched recorded run, or None after printing one line that says why
(the chapter then shows its labelled CI-sized stand-in). It never falls back silently.
"""
from __future__ import annotations

import datetime
import functools
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .paths import cache_root, checkout_root

__all__ = ["REPOSITORY", "BRANCH", "FetchError", "repository", "book_ref", "installed_commit",
           "fetch_results", "fetched_recorded_results"]

#: ``repository.url`` and ``repository.branch`` of ``_config.yml`` (tests/test_book.py checks)
REPOSITORY = "https://github.com/colorlab-book/colorlab"
BRANCH = "main"
FETCHED = ".fetched.json"  #: written into a fetched ``results/``: source, ref and commit


class FetchError(RuntimeError):
    """``results/`` could not be fetched; the message is one line and says from where."""


def repository() -> str:
    """``$COLORLAB_REPOSITORY`` or :data:`REPOSITORY`.

    >>> isinstance(repository(), str)
    True
    """
    return os.environ.get("COLORLAB_REPOSITORY", "").strip() or REPOSITORY


def installed_commit() -> str | None:
    """The git commit colorlab was installed from (``pip install git+URL``), if pip recorded one."""
    from importlib import metadata

    try:
        text = metadata.distribution("colorlab").read_text("direct_url.json")
    except metadata.PackageNotFoundError:
        return None
    try:
        return json.loads(text or "{}").get("vcs_info", {}).get("commit_id")
    except ValueError:
        return None


def book_ref() -> str:
    """``$COLORLAB_REF``, else :func:`installed_commit`, else :data:`BRANCH`."""
    return os.environ.get("COLORLAB_REF", "").strip() or installed_commit() or BRANCH


def _default_dest(url: str, ref: str) -> Path:
    root = cache_root() or Path(tempfile.gettempdir()) / "colorlab"
    key = hashlib.sha256(f"{url}\n{ref}".encode()).hexdigest()[:12]
    return root / f"recorded-results-{key}" / "results"


def _git(args: list[str], cwd: Path, timeout: float) -> str:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}  # a wrong URL must fail, not ask for a login
    try:
        out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=env,
                             timeout=timeout)
    except FileNotFoundError as err:
        raise FetchError("git is not installed (it fetches the recorded results)") from err
    except subprocess.TimeoutExpired as err:
        raise FetchError(f"git {args[0]} took more than {timeout:.0f} s") from err
    if out.returncode:
        lines = [ln for ln in out.stderr.strip().splitlines() if ln.strip()]
        raise FetchError(lines[-1].strip() if lines else f"git {args[0]} failed")
    return out.stdout.strip()


def fetch_results(dest: str | Path | None = None, url: str | None = None, ref: str | None = None,
                  refresh: bool = False, timeout: float = 300) -> Path:
    """``results/`` of ``url`` (default :func:`repository`) at ``ref`` (default :func:`book_ref`)
    in ``dest`` (default: in the cache); returns ``dest``.

    A folder fetched earlier is reused unless ``refresh``. The fetch goes to a temporary folder
    beside ``dest`` and is moved into place only when complete; on failure nothing is left and a
    :class:`FetchError` says why in one line.
    """
    url, ref = url or repository(), ref or book_ref()
    dest = Path(dest) if dest is not None else _default_dest(url, ref)
    if (dest / FETCHED).is_file() and not refresh:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=dest.parent))
    try:
        _git(["init", "-q"], tmp, timeout)
        try:
            _git(["fetch", "-q", "--depth", "1", url, ref], tmp, timeout)
        except FetchError as err:
            raise FetchError(f"could not fetch {ref} of {url}: {err}") from err
        commit = _git(["rev-parse", "FETCH_HEAD"], tmp, timeout)
        try:
            _git(["checkout", "-q", "FETCH_HEAD", "--", "results"], tmp, timeout)
        except FetchError as err:
            raise FetchError(f"{url} at {commit[:10]} has no results/ folder") from err
        (tmp / "results" / FETCHED).write_text(json.dumps({
            "repository": url, "ref": ref, "commit": commit,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}))
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp / "results", dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


@functools.lru_cache(maxsize=1)
def fetched_recorded_results(log=print):
    """The recorded run fetched by :func:`fetch_results`, for chapters run outside a checkout.

    None in a checkout or with ``$COLORLAB_RESULTS`` set (those say where results are), and None
    after one printed line when the fetch fails or brings no full recorded run. Tried once per
    process."""
    from .results import recorded_results

    if checkout_root() is not None or os.environ.get("COLORLAB_RESULTS"):
        return None
    url, ref = repository(), book_ref()
    try:
        path = fetch_results(url=url, ref=ref)
    except FetchError as err:
        log(f"Note: the recorded results could not be fetched ({err}); this page shows a "
            f"CI-sized stand-in run instead (set COLORLAB_REPOSITORY to another source).")
        return None
    found = recorded_results(path)
    if found is None:
        log(f"Note: results/ of {url} at {ref} holds no full recorded run; this page shows a "
            f"CI-sized stand-in run instead.")
    return found


def add_results_command(sub) -> None:
    """Register ``colorlab results fetch`` (see :mod:`colorlab.cli`)."""
    p = sub.add_parser("results", help="fetch the recorded results/ of the book's version")
    p.add_argument("action", choices=("fetch",))
    p.add_argument("--repository", default=None, help="git URL (default: $COLORLAB_REPOSITORY "
                                                      f"or {REPOSITORY})")
    p.add_argument("--ref", default=None, help="branch, tag or commit (default: $COLORLAB_REF, "
                                               "the installed commit, or main)")
    p.add_argument("--out", default=None, help="where to put results/ (default: the cache)")
    p.add_argument("--refresh", action="store_true", help="fetch again even if cached")
    p.set_defaults(run=_fetch_command)


def _fetch_command(args) -> int:
    from .results import recorded_results

    path = fetch_results(args.out, args.repository, args.ref, refresh=args.refresh)
    origin = json.loads((path / FETCHED).read_text())
    found = recorded_results(path)
    print(f"results/ of {origin['repository']} at {origin['commit'][:10]} in {path}")
    print(found.label if found else "it holds no full recorded run")
    print(f"use it with: export COLORLAB_RESULTS={path}")
    return 0
