"""The ``results/`` folder of :func:`colorlab.reproduce.reproduce`, written one dataset at a time.

A reproduction is a few independent items: one folder per dataset (``celeba/``, ``fruits/``) and,
optionally, the training benchmark (``bench_train.json``). Each item is built in a staging folder
and renamed into the hidden in-progress folder ``.<name>.partial`` beside ``results/`` together
with a record (``dataset.json``) that says which code, profile and data made it. When every item
is there, ``table1.json``, ``table1.md`` and ``provenance.json`` are written and the in-progress
folder replaces ``results/`` in one rename.

So ``results/`` is either the previous complete reproduction or the new complete one, never a mix,
and a call cut off after its first dataset (a timeout on a lent GPU, say) leaves that dataset in
``.<name>.partial``: the next call with the same code, profile and data keeps it and trains only
what is missing, also on a fresh machine that is handed the folder back. An item is kept only when
its record's key (profile, classifier, :func:`colorlab.source_code.source_hash`) and data manifest
hash match.

**The calls.** A reproduction can take several calls (a Colab session that disconnects, a lent
GPU's time limit), and a call can be cut off before it finishes any item while its runs, trained
to the end, are kept in the work folder for the next call. So each call is written into the
in-progress folder's ``calls.json`` when it starts and its wall time is brought up to date as it
goes (:meth:`ResultsFolder.begin_call`, :meth:`ResultsFolder.tick`); the provenance lists every
call that worked on the reproduction, with its wall time, device and commit
(:meth:`ResultsFolder.calls`).
"""
from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

from .checkpoint import atomic_write_text, make_folder

__all__ = ["ResultsFolder", "ResultsExist", "RECORD", "smaller_than"]

#: the record that each dataset folder carries
RECORD = "dataset.json"
#: the top-level files a reproduction wrote before its provenance listed them (``files``)
LEGACY_FILES = ("table1.json", "table1.md", "table1_seeds.json")
BENCH = "bench_train.json"
#: the in-progress folder's record of the calls that worked on the reproduction
CALLS = "calls.json"


class ResultsExist(ValueError):
    """The results folder holds a larger reproduction than the one about to replace it."""


def _describe(profile: dict) -> str:
    data = "sample images" if profile.get("sample_count") else "real data"
    return (f"{profile.get('name', '?')} profile: {data}, {profile.get('epochs')} epochs at "
            f"{profile.get('size')}x{profile.get('size')}, width {profile.get('width')}")


def smaller_than(new: dict, old: dict) -> bool:
    """Whether reproduction profile ``new`` is smaller than ``old`` in any respect: sample images
    where ``old`` had real data, or fewer epochs, seeds, a smaller image size or a narrower
    network.

    >>> full = {"sample_count": 0, "epochs": 100, "size": 88, "width": 1.0}
    >>> smaller_than({**full, "epochs": 2}, full), smaller_than(full, {**full, "epochs": 2})
    (True, False)
    """
    if "sample_count" in old and bool(new.get("sample_count")) and not old["sample_count"]:
        return True
    return any(isinstance(old.get(k), (int, float)) and (new.get(k) or 0) < old[k]
               for k in ("epochs", "seeds", "size", "width"))  # what the old record does not say: unknown


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _records(folder: Path) -> dict[str, dict]:
    """The readable records of the items in ``folder``: item name -> record."""
    found = {}
    if not folder.is_dir():
        return found
    for record_file in [*folder.glob(f"[!.]*/{RECORD}"), folder / BENCH]:
        record = _read(record_file) if record_file.is_file() else None
        if record is not None:
            found[record_file.parent.name if record_file.name == RECORD else "bench"] = record
    return found


class ResultsFolder:
    """Keeps finished items of a reproduction and assembles ``path`` when all are done.

    Args:
        path: the results folder (``results/``).
        key: what must match for a finished item to be kept (JSON-serialisable dict); its
            ``"profile"`` (a :class:`colorlab.reproduce.ReproduceProfile` as a dict) says how large
            the reproduction is.
        items: the items this reproduction will hold (datasets, ``"bench"``); None: not checked.
        force: replace a larger reproduction (:func:`smaller_than`), or one with items that
            ``items`` leaves out, found in ``path`` or in its in-progress folder; without it that
            is a :class:`ResultsExist` error, raised before anything is changed, so a CI-sized or
            partial run never replaces a recorded GPU run by accident. So is a ``path`` that holds
            anything but a reproduction, or files the reproduction did not write (the folder is
            replaced as a whole), and an in-progress folder of another key (other settings or
            code), which ``force`` discards.

    >>> import tempfile
    >>> from pathlib import Path
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root = Path(tmp.name)
    >>> folder = ResultsFolder(root / "results", {"profile": "demo"})
    >>> staged = folder.stage("celeba")
    >>> _ = (staged / "metrics.json").write_text("{}")
    >>> folder.commit("celeba", staged, {"manifest_hash": "abc", "runs": {}, "rows": {}})
    >>> ResultsFolder(root / "results", {"profile": "demo"}).kept("celeba", "abc") is not None
    True
    >>> ResultsFolder(root / "results", {"profile": "other"})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    colorlab.results_folder.ResultsExist: ... holds an unfinished reproduction (celeba) made with other settings or code than this call's, ...
    >>> ResultsFolder(root / "results", {"profile": "other"}, force=True).kept("celeba", "abc") is None
    True
    >>> tmp.cleanup()
    """

    def __init__(self, path: str | Path, key: dict, items: list[str] | None = None,
                 force: bool = False):
        self.path, self.key = Path(path), json.loads(json.dumps(key))
        if not self.path.name:  # "." names no folder of its own: the current one, by its name
            self.path = self.path.absolute()
        self.partial = self.path.with_name(f".{self.path.name}.partial")
        if self.path.exists() and not self.path.is_dir():
            raise NotADirectoryError(f"results folder {self.path} is a file; choose a folder")
        if not force:
            self._refuse_to_shrink(items)
            self._refuse_foreign_files()
        make_folder(self.path.parent)
        for stray in self.partial.glob(".staging-*"):  # left by a call killed while building
            shutil.rmtree(stray, ignore_errors=True)
        self.final = self._matching(_records(self.path))
        in_progress = _records(self.partial)
        self.staged = self._matching(in_progress)
        if len(self.staged) < len(in_progress):  # made by other code or settings: never mixed
            if not force:
                other = sorted(set(in_progress) - set(self.staged))
                raise ResultsExist(
                    f"{self.partial} holds an unfinished reproduction ({', '.join(other)}) made "
                    f"with other settings or code than this call's, and it may be the only copy "
                    f"of that work; finish it with the same settings and code, write elsewhere "
                    f"with --out DIR (out_dir=...), or pass --force (force=True) to discard it")
            shutil.rmtree(self.partial)
            self.staged = {}
        ledger = _read(self.partial / CALLS) or {}
        # the calls that worked towards this key (another key's were for other results)
        self._calls = list(ledger.get("calls", [])) if ledger.get("key") == self.key else []
        self._current: dict | None = None
        self._started = 0.0

    def _refuse_foreign_files(self) -> None:
        """``path`` is replaced as a whole: it must be new, empty or a reproduction (its
        ``provenance.json`` is one :meth:`finish` wrote, with a ``profile``: not any file of
        that name)."""
        if not self.path.is_dir():
            return
        provenance = _read(self.path / "provenance.json")
        ours = isinstance(provenance, dict) and "profile" in provenance
        # what finish() wrote (older reproductions: their items and the tables)
        written = set(provenance.get("files", LEGACY_FILES)) | {"provenance.json", BENCH} \
            if ours else set()
        found = sorted(p.name for p in self.path.iterdir()
                       if p.name not in written and not (p / RECORD).is_file())
        if found:
            what = "files that colorlab reproduce did not write" if ours else \
                "files that are not a colorlab reproduction"
            raise ResultsExist(
                f"{self.path} holds {what} (e.g. {found[0]}), and the results folder is replaced "
                f"as a whole; move them away, write elsewhere with --out DIR (out_dir=...), or "
                f"pass --force (force=True) to delete them with the folder")

    def _refuse_to_shrink(self, items: list[str] | None) -> None:
        new = self.key.get("profile") or {}
        final = _read(self.path / "provenance.json") or {}
        found = [(self.path, final.get("profile"),
                  set(final.get("datasets", {})) | ({"bench"} if "bench_train" in final else set()))]
        found += [(self.partial, r.get("key", {}).get("profile"), {item})
                  for item, r in _records(self.partial).items()]
        for where, old, old_items in found:
            if not isinstance(old, dict):
                continue
            lost = sorted(old_items - set(items)) if items is not None else []
            if smaller_than(new, old) or lost:
                kind = "an unfinished" if where == self.partial else "a"
                what = f"larger reproduction ({_describe(old)}) than this one ({_describe(new)})" \
                    if smaller_than(new, old) else f"reproduction with {', '.join(lost)}, which " \
                    f"this one ({', '.join(items)}) leaves out"
                raise ResultsExist(f"{self.path} holds {kind} {what}; write elsewhere with --out "
                                   f"DIR (out_dir=...), or pass --force (force=True) to replace it")

    def _matching(self, records: dict[str, dict]) -> dict[str, dict]:
        return {item: r for item, r in records.items() if r.get("key") == self.key}

    def kept(self, item: str, manifest_hash: str | None = None,
             data: str | None = None) -> dict | None:
        """The record of ``item`` if an earlier call finished it with this key and data: the
        same ``manifest_hash`` (file names and split) and the same ``data``, the
        :func:`~colorlab.run_state.data_fingerprint` of its pixels (records from before the
        fingerprint are not checked)."""
        for records in (self.staged, self.final):
            record = records.get(item)
            if record is not None and record.get("manifest_hash") == manifest_hash and \
                    record.get("data", data) == data:
                return record
        return None

    def stage(self, item: str) -> Path:
        """An empty folder in which to build ``item``'s files (then :meth:`commit` it)."""
        self.partial.mkdir(exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".staging-{item}-", dir=self.partial))

    def commit(self, item: str, staged: Path, record: dict) -> None:
        """Move the built ``staged`` folder into place as ``item``, with its ``record``."""
        record = {**record, "key": self.key}
        atomic_write_text(json.dumps(record), staged / RECORD)
        staged.chmod(0o755)
        target = self.partial / item
        if target.exists():
            shutil.rmtree(target)
        staged.rename(target)
        self.staged[item] = record

    def commit_bench(self, result: dict, meta: dict) -> None:
        """Record the training benchmark ``result`` and ``meta`` (device, date...) as
        ``bench_train.json``."""
        self.partial.mkdir(exist_ok=True)
        record = {**meta, "key": self.key, "manifest_hash": None, "bench_train": result}
        atomic_write_text(json.dumps(record), self.partial / BENCH)
        self.staged["bench"] = record

    def begin_call(self, meta: dict) -> None:
        """Start recording this call (``meta``: its ``"call"`` id, ``"device"``, ``"torch"``,
        ``"git_commit"``...): its wall time counts from now. Nothing is written until the call
        does some work (:meth:`tick`)."""
        self._started = time.perf_counter()
        self._current = {**meta, "wall_seconds": 0.0, "finished": []}

    def tick(self, finished: str | None = None) -> None:
        """Note that this call is working on the reproduction (it measures, trains or
        assembles) and bring its wall time up to date in ``calls.json``; ``finished``: the item
        it has just finished. Called as the runs start, after each run and each item."""
        if self._current is None:
            return
        if not self._recording():
            self._calls.append(self._current)
        self._current["wall_seconds"] = round(time.perf_counter() - self._started, 1)
        if finished is not None and finished not in self._current["finished"]:
            self._current["finished"].append(finished)
        self._save_calls()

    def end_call(self) -> None:
        """This call ends, by a return, an exception or an interrupt: its final wall time is
        recorded if it did some work (a call that stopped at bad input is no call of the
        reproduction)."""
        if self._recording():
            self.tick()
        self._current = None

    def _recording(self) -> bool:
        """Whether this call is in the record (it has done some work)."""
        return any(c is self._current for c in self._calls)

    def _save_calls(self) -> None:
        self.partial.mkdir(exist_ok=True)
        atomic_write_text(json.dumps({"key": self.key, "calls": self._calls}, indent=1),
                          self.partial / CALLS)

    def calls(self, items: list[str]) -> list[dict]:
        """Every call that worked on the reproduction of ``items``, oldest first: those of the
        complete reproduction in ``path`` whose items are carried over (its provenance's
        ``call_log``), then those recorded in ``calls.json``, this one last. A call is left out
        when every item it finished has been made again since (by a later call, for other
        data); one that finished none (cut off, its runs kept for the next) stays.

        >>> import tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> folder = ResultsFolder(Path(tmp.name) / "results", {"profile": "demo"})
        >>> folder.begin_call({"call": "2026-11-27T10:00:00+00:00"})
        >>> folder.tick()  # it trains...
        >>> folder.end_call()  # ...and is cut off
        >>> again = ResultsFolder(Path(tmp.name) / "results", {"profile": "demo"})  # a next call
        >>> again.begin_call({"call": "2026-11-27T11:00:00+00:00"})
        >>> again.tick()
        >>> [c["call"][11:16] for c in again.calls(["fruits"])]
        ['10:00', '11:00']
        >>> tmp.cleanup()
        """
        earlier: list[dict] = []
        if any(item in self.final and item not in self.staged for item in items):
            provenance = _read(self.path / "provenance.json") or {}
            earlier = list(provenance.get("call_log", [])) or [
                {"call": call, "wall_seconds": seconds}  # a provenance from before the call log
                for call, seconds in provenance.get("call_wall_seconds", {}).items()]
        known = {c.get("call") for c in self._calls}
        calls = [c for c in earlier if c.get("call") not in known] + self._calls
        # a call whose every finished item was done again since (other data) made nothing kept
        made = {item: (self.staged.get(item) or self.final.get(item) or {}).get("call")
                for item in items}
        return [dict(c) for c in calls if c is self._current or not c.get("finished")
                or any(made.get(item) == c.get("call") for item in c["finished"])]

    def _forget_this_call(self) -> None:
        """A call that changed nothing is no call of the reproduction: its entry goes, and with
        the last entry the in-progress folder it made."""
        self._calls = [c for c in self._calls if c is not self._current]
        self._current = None
        if self._calls:
            self._save_calls()
            return
        (self.partial / CALLS).unlink(missing_ok=True)
        if self.partial.is_dir() and not any(self.partial.iterdir()):
            self.partial.rmdir()

    def finish(self, items: list[str], provenance: dict, files: dict[str, str]) -> bool:
        """Replace ``path`` by the finished reproduction of ``items``; returns ``False`` when
        ``path`` already held exactly that (nothing was rewritten, and this call is forgotten).

        ``provenance`` and ``files`` (name -> text: the tables) are written at the top level;
        ``provenance`` gains (in place) ``files``, their names, and a ``profile``, the key's if it
        has none: what marks the folder as a reproduction, and what a later call may replace.
        ``calls.json`` is not carried into ``path`` (the provenance lists the calls).
        """
        if all(item in self.final and item not in self.staged for item in items):
            self._forget_this_call()
            return False
        self._current = None  # the call is over: nothing more to record
        self.partial.mkdir(exist_ok=True)
        for item in items:
            if item not in self.staged:  # finished by an earlier call into path: carry it over
                source = self.path / (BENCH if item == "bench" else item)
                target = self.partial / source.name
                (shutil.copy2 if source.is_file() else shutil.copytree)(source, target)
        wanted = {BENCH if item == "bench" else item for item in items}
        for extra in [p for p in self.partial.iterdir() if p.name not in wanted]:
            shutil.rmtree(extra) if extra.is_dir() else extra.unlink()  # e.g. an old table1.md
        for name, text in files.items():
            atomic_write_text(text, self.partial / name)
        provenance.setdefault("profile", self.key.get("profile"))  # (in place: the caller
        provenance["files"] = sorted(files)  # returns it) what a later call may replace
        atomic_write_text(json.dumps(provenance, indent=1), self.partial / "provenance.json")
        old = self.path.with_name(f".{self.path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if self.path.exists():
            self.path.rename(old)
        self.partial.rename(self.path)
        shutil.rmtree(old, ignore_errors=True)
        return True
