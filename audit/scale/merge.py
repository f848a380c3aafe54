"""Fold the stores of a sharded run into one scan of one store, with honest history.

Each shard (``rempart scan --shard K/N``) wrote its own SQLite file. Merging takes the
latest scan of every input and writes them as *one* new scan of the output store, through
:meth:`audit.store.Store.record`, the same call the engine makes. Rows are not copied
blindly: ``record`` derives each finding's lifecycle (new, open, resolved, reopened) and
first-seen date from the output store's own history, so merging the shards of scan N into
a store that holds scan N-1 yields exactly the lifecycle an unsharded scan N would have.
A shard's own history (its store may be fresh each run) never leaks in.

Guards, each a one-line :class:`~audit.errors.OptionError` (exit 2):

- the inputs must be slices of one run: same inventory, same policy versions (a store
  given twice, or a copy of one, counts once);
- the output must not already hold a scan that started after them (history is computed
  in the order scans ran);
- merging the same inputs again changes nothing: every merged scan leaves a ``merged``
  event in the append-only trail naming the scans it came from, and a later merge of the
  same scans reports the existing one. Inputs that were merged with *other* inputs are
  refused rather than counted twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from audit.errors import OptionError, StoreError
from audit.governance import store_scores
from audit.models import Status, SystemInfo
from audit.scale.sharding import shard_of
from audit.store import MERGED_EVENT, SCHEMA_VERSION, Store, sqlite_errors

BATCH = 500
_STATUS_RANK = {"complete": 0, "interrupted": 1, "failed": 2}
T = TypeVar("T")


@dataclass(frozen=True)
class SourceScan:
    """The scan an input store contributes (its latest one)."""

    path: str
    scan_id: int
    status: str
    started_at: str
    finished_at: str | None
    policies: tuple[str, ...]
    inventory: str | None
    scope_declared: bool
    targets: tuple[str, ...]
    systems: tuple[SystemInfo, ...]
    tool_version: str
    identity: str
    """Digest of the scan row's fixed part (where, when, by which process, with what
    inventory, policies and targets): a copy of the file has the same identity, and two
    runs could share it only if one process started both within the same second."""


@dataclass(frozen=True)
class MergeResult:
    """What a merge did; ``is_new`` is False when the inputs were already merged."""

    scan_id: int
    is_new: bool
    sources: int
    targets: int
    findings: int
    status: str


def merge_stores(
    out_path: str | Path, inputs: Sequence[str | Path], *, shards: int | None = None
) -> MergeResult:
    """Merge the latest scan of every input store into one new scan of ``out_path``.

    With ``shards=N``, the inputs must be exactly the N slices of one run (see
    :func:`check_slices`), so a missing or duplicated shard cannot pass for a whole scan.
    """
    if not inputs:
        raise OptionError("db merge: give at least one input store")
    with sqlite_errors(str(out_path), "merge into"):
        return _merge_stores(out_path, inputs, shards)


def _merge_stores(
    out_path: str | Path, inputs: Sequence[str | Path], shards: int | None
) -> MergeResult:
    _refuse_output_among_inputs(out_path, inputs)
    sources = unique([read_source(str(path)) for path in inputs])
    check_compatible(sources)
    if shards is not None:
        check_slices(sources, shards)
    out = Store(out_path)
    try:
        with _only_merge(out):
            existing = already_merged(out, sources)
            if existing is not None:
                return _unchanged(out, existing, sources)
            check_order(out, sources)
            return _merge_into(out, sources)
    finally:
        out.close()


@contextmanager
def _only_merge(out: Store) -> Iterator[None]:
    """Hold an advisory lock on the output for the whole merge, so a retried merge job
    that overlaps the first cannot also find the inputs unmerged and merge them twice.
    (``flock`` and SQLite's own ``fcntl`` locks do not interfere.)"""
    with open(out.path, "rb") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OptionError(f"{out.path}: another merge into this store is running") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _unchanged(out: Store, scan_id: int, sources: Sequence[SourceScan]) -> MergeResult:
    summary = out.scan(scan_id)
    findings = sum(summary.counts.get(s.value, 0) for s in Status)
    targets = len(_union_targets(sources))
    return MergeResult(scan_id, False, len(sources), targets, findings, summary.status)


# --- reading an input ------------------------------------------------------------------


def read_source(path: str) -> SourceScan:
    """The latest scan of an input store, opened read-only."""
    with sqlite_errors(path, "read"), closing(_open_readonly(path)) as store:
        scans = store.scans()
        if not scans:
            raise OptionError(f"{path}: the store holds no scan to merge")
        return _source(path, store, scans[-1].id)


def _open_readonly(path: str) -> Store:
    """An input store, read-only, after the checks every store gets (a link, a
    planted trigger or view is refused: an input's rows become the output's)."""
    store = Store(path, readonly=True)
    if not store.is_current:
        store.close()
        raise StoreError(
            f"{path}: store schema {store.version}, this version of rempart writes "
            f"{SCHEMA_VERSION}; merge stores written by the same version"
        )
    return store


def _source(path: str, store: Store, scan_id: int) -> SourceScan:
    """The scan as a source; read-only, a scan whose process is gone reads as
    interrupted (what it finished is kept, as a scan), one still alive is refused."""
    record = store.scan_record(scan_id)
    scan = record.summary
    if scan.status == "running":
        raise OptionError(f"{path}: scan #{scan.id} is still running; merge it once done")
    identity = json.dumps(list(record.identity))
    return SourceScan(
        path=path,
        scan_id=scan.id,
        status=scan.status,
        started_at=scan.started_at,
        finished_at=scan.finished_at,
        policies=scan.policies,
        inventory=scan.inventory,
        scope_declared=scan.scope_declared,
        targets=record.targets,
        systems=record.systems,
        tool_version=record.tool_version,
        identity=hashlib.sha256(identity.encode()).hexdigest()[:32],
    )


# --- guards ----------------------------------------------------------------------------


def _refuse_output_among_inputs(out_path: str | Path, inputs: Sequence[str | Path]) -> None:
    out = Path(out_path).resolve()
    for path in inputs:
        if Path(path).resolve() == out:
            raise OptionError(f"db merge: {path} is the output store; give it once, first")


def unique(sources: Sequence[SourceScan]) -> list[SourceScan]:
    """One of each scan: a store given twice, or a copy of it, is merged once."""
    return list({s.identity: s for s in reversed(sources)}.values())[::-1]


def check_compatible(sources: Sequence[SourceScan]) -> None:
    """Refuse inputs that are not slices of one run (inventory, policy versions)."""
    first = sources[0]
    for source in sources:
        if source.inventory != first.inventory:
            raise OptionError(
                f"{source.path}: scanned inventory {source.inventory!r}, but {first.path} "
                f"scanned {first.inventory!r}; only shards of one inventory can be merged"
            )
        if sorted(source.policies) != sorted(first.policies):
            raise OptionError(
                f"{source.path}: ran policies {', '.join(source.policies)}, but {first.path} "
                f"ran {', '.join(first.policies)}; shards must use the same policy versions"
            )


def check_slices(sources: Sequence[SourceScan], count: int) -> None:
    """Each input holds one slice K of ``count`` (its targets say which), each slice once,
    and there are ``count`` inputs (an empty slice is an input with no targets)."""
    if len(sources) != count:
        raise OptionError(
            f"--shards {count}: got {len(sources)} distinct shard scan(s); "
            f"a run of {count} shards is merged with all of them"
        )
    taken: dict[int, str] = {}
    for source in sources:
        slices = {shard_of(uri, count) for uri in source.targets}
        if len(slices) > 1:
            raise OptionError(f"{source.path}: its targets are not one slice of {count}")
        for index in slices:
            if index in taken:
                raise OptionError(
                    f"{source.path} and {taken[index]} both hold slice {index}/{count}"
                )
            taken[index] = source.path


def already_merged(out: Store, sources: Sequence[SourceScan]) -> int | None:
    """The scan these very inputs were merged into before, if any.

    Inputs merged before together with other inputs are refused: merging them again
    would count their findings in two scans of one run.
    """
    wanted = {s.identity for s in sources}
    for scan_id, merged in _merges(out):
        if merged == wanted:
            return scan_id
        overlap = merged & wanted
        if overlap:
            path = next(s.path for s in sources if s.identity in overlap)
            raise OptionError(
                f"{path}: its scan was already merged into scan #{scan_id} with other "
                "stores; merge all the shards of a run together, once"
            )
    return None


def _merges(out: Store) -> Iterator[tuple[int, set[str]]]:
    for scan_id, detail in out.merges():
        yield scan_id, {s["identity"] for s in detail.get("sources", [])}


def check_order(out: Store, sources: Sequence[SourceScan]) -> None:
    """Refuse to merge a run older than a scan the output already holds."""
    started = min(s.started_at for s in sources)
    later = [s for s in out.scans() if s.started_at > started]
    if later:
        raise OptionError(
            f"{out.path} already holds scan #{later[0].id}, started at {later[0].started_at}, "
            f"after these shards ({started}); history must be merged in the order scans ran"
        )


# --- writing the merged scan -----------------------------------------------------------


def _merge_into(out: Store, sources: Sequence[SourceScan]) -> MergeResult:
    first = sources[0]
    targets = _union_targets(sources)
    scan_id = out.begin_scan(
        policies=first.policies,
        inventory=first.inventory,
        scope_declared=all(s.scope_declared for s in sources),
        targets=targets,
        systems=_union_systems(sources),
        tool_version=first.tool_version,
    )
    out.set_scan_times(scan_id, started=min(s.started_at for s in sources))
    status = "failed"
    try:
        written = sum(_copy(out, scan_id, source) for source in sources)
        status = max((s.status for s in sources), key=lambda s: _STATUS_RANK.get(s, 2))
    finally:
        out.finish_scan(scan_id, status)
    _close_merge(out, scan_id, sources)
    store_scores(out, scan_id, first.tool_version)
    return MergeResult(scan_id, True, len(sources), len(targets), written, status)


def _union_targets(sources: Sequence[SourceScan]) -> list[str]:
    return sorted({t for s in sources for t in s.targets})


def _union_systems(sources: Sequence[SourceScan]) -> list[SystemInfo]:
    systems: dict[str, SystemInfo] = {}
    for source in sources:
        for system in source.systems:
            systems.setdefault(system.name, system)
    return list(systems.values())


def _copy(out: Store, scan_id: int, source: SourceScan) -> int:
    """Record one input's resources and findings, in batches, through ``Store.record``.

    Lifecycle is a property of each fingerprint's history in the *output* store, so
    batches need not follow targets: ``record`` stamps every finding from earlier scans
    (what the input says of lifecycle and first-seen is not carried over).
    """
    written = 0
    with closing(_open_readonly(source.path)) as store:
        for resources in _chunks(iter(store.resources(source.scan_id))):
            out.record(scan_id, resources, [])
        for findings in _chunks(store.stored_findings(source.scan_id)):
            written += len(out.record(scan_id, [], findings))
    return written


def _chunks(items: Iterator[T]) -> Iterator[list[T]]:
    while batch := list(islice(items, BATCH)):
        yield batch


def _close_merge(out: Store, scan_id: int, sources: Sequence[SourceScan]) -> None:
    """Give the scan the end time of its last shard, and leave the trail entry."""
    detail: dict[str, Any] = {
        "sources": [
            {"identity": s.identity, "store": s.path, "scan_id": s.scan_id, "status": s.status}
            for s in sources
        ]
    }
    finished = max((s.finished_at for s in sources if s.finished_at), default=None)
    out.set_scan_times(scan_id, finished=finished)
    out.add_event(scan_id, "", MERGED_EVENT, detail)
