"""Fetching ``results/`` of the book's version from git, for readers without a checkout
(``colorlab results fetch`` and the chapters' fallback, :func:`colorlab.results.book_results`).

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
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from .settings import scratch_root

__all__ = ["REPOSITORY", "BRANCH", "FETCHED", "FetchError", "repository", "book_ref",
           "installed_commit", "fetch_results"]


#: ``repository.url`` and ``repository.branch`` of the book's ``_config.yml`` (a test checks)
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
    root = scratch_root()
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
        lines = [ln.strip() for ln in out.stderr.strip().splitlines() if ln.strip()]
        # git's first "fatal:" line says what failed; its last may be advice ("... and the
        # repository exists.") that reads as the opposite on its own
        fatal = [ln.removeprefix("fatal: ") for ln in lines if ln.startswith("fatal: ")]
        raise FetchError((fatal or lines or [f"git {args[0]} failed"])[0 if fatal else -1])
    return out.stdout.strip()


def _refuse_foreign(dest: Path) -> None:
    """A fetch replaces ``dest`` as a whole, so ``dest`` must be new, an empty folder or an
    earlier fetch (it holds :data:`FETCHED`): never a reader's own files or a recorded run."""
    if dest.exists() and not dest.is_dir():
        raise FetchError(f"{dest} is a file; choose a folder to fetch the results into")
    if dest.is_dir() and not (dest / FETCHED).is_file():
        found = sorted(p.name for p in dest.iterdir())
        if found:
            raise FetchError(f"{dest} holds files that colorlab did not fetch (e.g. {found[0]}), "
                             f"and a fetch replaces the folder as a whole; choose a new or empty "
                             f"folder (--out DIR)")


def _fetch_owner() -> str:
    """How the names of this machine's fetch folders begin: ``.fetch-<host>``."""
    return f".fetch-{socket.gethostname()}"


def _fetch_prefix(pid: int) -> str:
    """The name of a fetch's temporary folder begins with the machine and process that own it."""
    return f"{_fetch_owner()}-{pid}-"


def _remove_abandoned_fetches(folder: Path) -> None:
    """Delete the temporary folders in ``folder`` of fetches whose process has ended on this
    machine without removing them (``kill -9``, a power cut); a live process's fetch, or
    another machine's on a shared disk, is left alone."""
    mine = _fetch_owner()
    for stale in folder.glob(".fetch-*"):
        # ".fetch-<host>-<pid>-<suffix>": read from the right (a host name may hold "-"; the
        # suffix of mkdtemp has none)
        parts = stale.name.rsplit("-", 2)  # [".fetch-<host>", "<pid>", "<suffix>"]
        if len(parts) != 3 or parts[0] != mine or not (parts[1].isascii() and
                                                       parts[1].isdigit()):
            continue
        try:
            os.kill(int(parts[1]), 0)
        except ProcessLookupError:
            shutil.rmtree(stale, ignore_errors=True)
        except (OSError, OverflowError):  # another user's live process; no process number
            continue


def fetch_results(dest: str | Path | None = None, url: str | None = None, ref: str | None = None,
                  refresh: bool = False, timeout: float = 300) -> Path:
    """``results/`` of ``url`` (default :func:`repository`) at ``ref`` (default :func:`book_ref`)
    in ``dest`` (default: in the cache); returns ``dest``.

    A folder fetched earlier is reused unless ``refresh``. Any other folder that holds files (a
    recorded run, a reader's own work) is refused before anything is fetched: a fetch replaces
    ``dest`` as a whole. The fetch goes to a temporary folder beside ``dest`` and is moved into
    place only when complete; on failure, an interrupt or ``SIGTERM`` (under the CLI) nothing
    is left and a :class:`FetchError` says why in one line. What a killed fetch (``kill -9``)
    leaves, the next fetch beside it removes.

    >>> import tempfile
    >>> dest = Path(tempfile.mkdtemp()) / "results"
    >>> fetch_results(dest, url="file:///nowhere", ref="main")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    colorlab.results_fetch.FetchError: could not fetch main of file:///nowhere: ...
    >>> dest.parent.rmdir()  # empty: nothing half-fetched is left
    """
    url, ref = url or repository(), ref or book_ref()
    dest = Path(dest) if dest is not None else _default_dest(url, ref)
    if not dest.name:  # "." names no folder of its own: the current one, by its name
        dest = dest.absolute()
    if (dest / FETCHED).is_file() and not refresh:
        return dest
    _refuse_foreign(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_fetches(dest.parent)
    tmp = Path(tempfile.mkdtemp(prefix=_fetch_prefix(os.getpid()), dir=dest.parent))
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
        if dest.exists():  # an earlier fetch (or an empty folder): moved aside in one rename,
            os.replace(dest, tmp / "replaced")  # so that dest is never half deleted
        os.replace(tmp / "results", dest)
    finally:
        if not dest.exists() and (tmp / "replaced").exists():  # stopped between the renames
            os.replace(tmp / "replaced", dest)
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
