"""Retention: drop the scans a body no longer needs, keep what history depends on.

``rempart db prune --keep N`` keeps the N latest scans (and any scan still running).
The older scans go with their references to findings and resources; a row goes with
them only when nothing else refers to it: no kept scan, and no fingerprint whose
latest state it is (so a finding last seen in a pruned scan keeps its history: it comes
back ``reopened`` or ``open``, not ``new``). Acceptances and the audit trail are left
whole, events of pruned scans included. The file is then vacuumed, which returns the
freed pages to the file system (it needs as much free space as the store while it runs).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from audit.store.schema import Transaction


@dataclass(frozen=True)
class PruneResult:
    """What a prune removed, and the file's size before and after."""

    scans: tuple[int, ...]
    finding_rows: int
    resource_rows: int
    bytes_before: int
    bytes_after: int


def prunable(conn: sqlite3.Connection, keep: int) -> tuple[int, ...]:
    """The scans older than the ``keep`` latest ones, running scans aside."""
    found = conn.execute(
        "SELECT id FROM scans WHERE status != 'running' AND id NOT IN "
        "(SELECT id FROM scans ORDER BY id DESC LIMIT ?) ORDER BY id",
        (keep,),
    ).fetchall()
    return tuple(int(scan_id) for (scan_id,) in found)


def prune_old_scans(
    conn: sqlite3.Connection, transaction: Transaction, path: str, keep: int, vacuum: bool
) -> PruneResult:
    """Drop every scan older than the ``keep`` latest, in one transaction, then vacuum."""
    before = _size(path)
    scans = prunable(conn, keep)
    with transaction():
        findings, resources = _drop(conn, scans)
    if vacuum and scans:
        conn.execute("VACUUM")
    return PruneResult(scans, findings, resources, before, _size(path))


def _drop(conn: sqlite3.Connection, scans: Sequence[int]) -> tuple[int, int]:
    """Delete the scans, their references, then the rows nobody refers to any more."""
    pairs = [(scan_id,) for scan_id in scans]
    for table in ("scan_findings", "scan_resources", "scans"):
        column = "id" if table == "scans" else "scan_id"
        conn.executemany(f"DELETE FROM {table} WHERE {column} = ?", pairs)  # noqa: S608
    findings = conn.execute(
        "DELETE FROM findings WHERE rowid NOT IN (SELECT row FROM scan_findings) "
        "AND rowid NOT IN (SELECT last_row FROM finding_state WHERE last_row IS NOT NULL)"
    ).rowcount
    resources = conn.execute(
        "DELETE FROM resources WHERE rowid NOT IN (SELECT row FROM scan_resources)"
    ).rowcount
    return findings, resources


def _size(path: str) -> int:
    """The store's bytes on disk, its WAL included."""
    return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
