"""The audit trail: ``finding_events``, append-only (triggers refuse UPDATE and DELETE).

Every change a reader of the trail must be able to reconstruct leaves one event: a
finding ``new``, ``resolved`` or ``reopened`` (written with the finding), a risk
``accepted`` or ``unaccepted``, a scan ``merged`` from shards. Nothing here updates or
deletes a row, and pruning old scans leaves the trail whole.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from typing import Any

MERGED = "merged"

_INSERT = "INSERT INTO finding_events (at, scan_id, fingerprint, event, detail) VALUES (?,?,?,?,?)"


def append(
    conn: sqlite3.Connection,
    at: str,
    fingerprint: str,
    event: str,
    detail: dict[str, Any],
    scan_id: int | None = None,
) -> None:
    """Append one event (inside the caller's transaction)."""
    conn.execute(_INSERT, (at, scan_id, fingerprint, event, json.dumps(detail)))


def append_many(conn: sqlite3.Connection, rows: Iterable[tuple[Any, ...]]) -> None:
    """Append events given as (at, scan_id, fingerprint, event, detail JSON) rows."""
    conn.executemany(_INSERT, rows)


def events(conn: sqlite3.Connection, fingerprint: str | None = None) -> list[dict[str, Any]]:
    """The trail, oldest first (one fingerprint's, when given)."""
    sql, args = "SELECT * FROM finding_events", list[str]()
    if fingerprint:
        sql += " WHERE fingerprint = ?"
        args.append(fingerprint)
    return [dict(r) for r in conn.execute(sql + " ORDER BY id", args)]


def merges(conn: sqlite3.Connection) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each ``merged`` event, oldest first: the scan it made and its detail."""
    rows = conn.execute(
        "SELECT scan_id, detail FROM finding_events WHERE event = ? ORDER BY id", (MERGED,)
    ).fetchall()
    for scan_id, detail in rows:
        yield int(scan_id), json.loads(detail)
