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
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

from audit import storefile
from audit.engine import _store_scores
from audit.errors import OptionError, StoreError
from audit.models import Finding, Problem, Reason, Resource, Severity, Status, SystemInfo
from audit.sharding import shard_of
from audit.store import MIGRATIONS, Store, now_iso, scan_process_alive

BATCH = 500
MERGED_EVENT = "merged"
_STATUS_RANK = {"complete": 0, "interrupted": 1, "failed": 2}
T = TypeVar("T")
_IDENTITY = (
    "host", "pid", "id", "started_at", "inventory", "policies", "targets", "systems",
    "scope_declared", "tool_version",
)  # fmt: skip
"""Scan columns that never change once the scan began (status, counts and end do)."""


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
    with storefile.sqlite_errors(str(out_path), "merge into"):
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
    with storefile.sqlite_errors(path, "read"), closing(_open_readonly(path)) as conn:
        row = conn.execute("SELECT * FROM scans ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            raise OptionError(f"{path}: the store holds no scan to merge")
        return _source(path, row)


def _open_readonly(path: str) -> sqlite3.Connection:
    """An input store, read-only, after the checks every store gets (a link, a
    planted trigger or view is refused: an input's rows become the output's)."""
    conn = storefile.connect(path, MIGRATIONS, readonly=True)
    with storefile.sqlite_errors(path, "read"):
        conn.row_factory = sqlite3.Row
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version != len(MIGRATIONS):
        conn.close()
        raise StoreError(
            f"{path}: store schema {version}, this version of rempart writes "
            f"{len(MIGRATIONS)}; merge stores written by the same version"
        )
    return conn


def _source(path: str, row: sqlite3.Row) -> SourceScan:
    status = row["status"]
    if status == "running":
        if scan_process_alive(row["host"], row["pid"]):
            raise OptionError(f"{path}: scan #{row['id']} is still running; merge it once done")
        status = "interrupted"  # its process is gone: what it finished is kept, as a scan
    targets = tuple(json.loads(row["targets"]))
    identity = json.dumps([row[name] for name in _IDENTITY])
    return SourceScan(
        path=path,
        scan_id=row["id"],
        status=status,
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        policies=tuple(json.loads(row["policies"])),
        inventory=row["inventory"],
        scope_declared=bool(row["scope_declared"]),
        targets=targets,
        systems=tuple(SystemInfo(**s) for s in json.loads(row["systems"])),
        tool_version=row["tool_version"] or "",
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
    rows = out.conn.execute(
        "SELECT scan_id, detail FROM finding_events WHERE event = ? ORDER BY id",
        (MERGED_EVENT,),
    ).fetchall()
    for scan_id, detail in rows:
        yield int(scan_id), {s["identity"] for s in json.loads(detail).get("sources", [])}


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
    _set_times(out, scan_id, min(s.started_at for s in sources), None)
    status = "failed"
    try:
        written = sum(_copy(out, scan_id, source) for source in sources)
        status = max((s.status for s in sources), key=lambda s: _STATUS_RANK.get(s, 2))
    finally:
        out.finish_scan(scan_id, status)
    _close_merge(out, scan_id, sources)
    _store_scores(out, scan_id, first.tool_version)
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
    batches need not follow targets: ``record`` stamps every finding from earlier scans.
    """
    written = 0
    with closing(_open_readonly(source.path)) as conn:
        for resources in _chunks(_resources(conn, source.scan_id)):
            out.record(scan_id, resources, [])
        for findings in _chunks(_findings(conn, source.scan_id)):
            written += len(out.record(scan_id, [], findings))
    return written


def _chunks(items: Iterator[T]) -> Iterator[list[T]]:
    while batch := list(islice(items, BATCH)):
        yield batch


def _resources(conn: sqlite3.Connection, scan_id: int) -> Iterator[Resource]:
    rows = conn.execute(
        "SELECT key, type, target, system, facts, unknown FROM resources WHERE scan_id = ?",
        (scan_id,),
    )
    for row in rows:
        unknown = {
            name: Problem(Reason(p["reason"]), p["message"])
            for name, p in json.loads(row["unknown"]).items()
        }
        yield Resource(
            type=row["type"],
            key=row["key"],
            target=row["target"],
            system=row["system"],
            facts=json.loads(row["facts"]),
            unknown=unknown,
        )


def _findings(conn: sqlite3.Connection, scan_id: int) -> Iterator[Finding]:
    """The observed part of each finding; lifecycle and first-seen are recomputed.

    Every column named like a field of :class:`Finding` is carried over, so a column a
    later schema adds (a translated title, say) survives the merge without a change here.
    """
    rows = conn.execute("SELECT * FROM findings_full WHERE scan_id = ?", (scan_id,))
    fields = [column[0] for column in rows.description if column[0] in _FINDING_FIELDS]
    for row in rows:
        yield Finding(**{name: _decode(name, row[name]) for name in fields})


_FINDING_FIELDS = frozenset(f.name for f in dataclass_fields(Finding)) - {
    "lifecycle",
    "first_seen",
    "scan_id",
}
_DECODERS: dict[str, Callable[[Any], Any]] = {
    "status": Status,
    "severity": Severity,
    "reason": lambda raw: Reason(raw) if raw else None,
    "evidence": lambda raw: json.loads(raw) if raw else None,
    "controls": lambda raw: {k: tuple(v) for k, v in json.loads(raw).items()},
}


def _decode(name: str, raw: Any) -> Any:
    decoder = _DECODERS.get(name)
    return decoder(raw) if decoder is not None else raw


def _close_merge(out: Store, scan_id: int, sources: Sequence[SourceScan]) -> None:
    """Give the scan the end time of its last shard, and leave the trail entry."""
    detail: dict[str, Any] = {
        "sources": [
            {"identity": s.identity, "store": s.path, "scan_id": s.scan_id, "status": s.status}
            for s in sources
        ]
    }
    finished = max((s.finished_at for s in sources if s.finished_at), default=None)
    _set_times(out, scan_id, None, finished)
    with out._write():
        out.conn.execute(
            "INSERT INTO finding_events (at, scan_id, fingerprint, event, detail) "
            "VALUES (?,?,?,?,?)",
            (now_iso(), scan_id, "", MERGED_EVENT, json.dumps(detail)),
        )


def _set_times(out: Store, scan_id: int, started: str | None, finished: str | None) -> None:
    """The merged scan ran when its shards did, not when they were merged."""
    with out._write():
        out.conn.execute(
            "UPDATE scans SET started_at = COALESCE(?, started_at), "
            "finished_at = COALESCE(?, finished_at) WHERE id = ?",
            (started, finished, scan_id),
        )
