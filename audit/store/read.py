"""The read path: scans, findings with acceptances overlaid, diffs, resources, reports.

Findings are read as plain tuples and decoded by :mod:`audit.store.rows`; the
cyclic collector is paused while 100,000 of them are built (none forms a cycle).
``accepted`` / ``expired`` are overlaid when a finding is read, since acceptances
change after a scan. A reader opened read-only shows a scan whose process is gone as
the interrupted scan a writer would make it, without writing.
"""

from __future__ import annotations

import os
import socket
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from audit.errors import OptionError
from audit.heap import collector_paused
from audit.models import Acceptance, Finding, Resource, ScanSummary, Severity, Status, SystemInfo
from audit.store import rows
from audit.store.acceptances import overlay

CHUNK = 500
COMPARISONS = ("new", "resolved", "still_open", "not_evaluated")
LiveAcceptances = Callable[[], Mapping[str, Sequence[Acceptance]]]


@dataclass(frozen=True)
class ScanRecord:
    """A scan row as stored, with what identifies the run (for ``db merge``)."""

    summary: ScanSummary
    targets: tuple[str, ...]
    systems: tuple[SystemInfo, ...]
    tool_version: str
    host: str | None
    pid: int | None
    identity: tuple[Any, ...]
    """The columns that never change once the scan began (status, counts and end do)."""


_IDENTITY = (
    "host", "pid", "id", "started_at", "inventory", "policies", "targets", "systems",
    "scope_declared", "tool_version",
)  # fmt: skip


class Reader:
    """Queries over one connection; ``live`` gives the acceptances to overlay."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: str,
        readonly: bool,
        texts: rows.TextCache,
        live: LiveAcceptances,
    ) -> None:
        self.conn = conn
        self.path = path
        self.readonly = readonly
        self.texts = texts
        self.live = live
        self._memo: tuple[tuple[object, ...], tuple[Finding, ...]] | None = None

    # --- scans ---------------------------------------------------------------------------

    def scan(self, scan_id: int) -> ScanSummary:
        """One scan row; OptionError when it does not exist."""
        row = self.conn.execute("SELECT * FROM scans WHERE id = ?", (scan_id,)).fetchone()
        if row is None:
            raise OptionError(f"{self.path}: no scan with id {scan_id}")
        return self.summary(row)

    def scans(self, statuses: Iterable[str] | None = None) -> list[ScanSummary]:
        """Every scan, oldest first (optionally only with the given statuses)."""
        found = self.conn.execute("SELECT * FROM scans ORDER BY id").fetchall()
        wanted = set(statuses) if statuses is not None else None
        summaries = [self.summary(r) for r in found]
        return [s for s in summaries if wanted is None or s.status in wanted]

    def summary(self, row: sqlite3.Row) -> ScanSummary:
        """A scan row; read-only, a running scan whose process is gone reads as the
        interrupted scan a writer would make it (with its counts), the file unchanged."""
        summary = rows.summary(row)
        if not self.readonly or summary.status != "running":
            return summary
        if scan_process_alive(row["host"], row["pid"]):
            return summary
        return replace(summary, status="interrupted", counts=counts(self.conn, summary.id))

    def record_of(self, scan_id: int) -> ScanRecord:
        """A scan with the columns that identify its run."""
        row = self.conn.execute("SELECT * FROM scans WHERE id = ?", (scan_id,)).fetchone()
        if row is None:
            raise OptionError(f"{self.path}: no scan with id {scan_id}")
        return ScanRecord(
            summary=self.summary(row),
            targets=tuple(_json_list(row["targets"])),
            systems=rows.systems(row["systems"]),
            tool_version=row["tool_version"] or "",
            host=row["host"],
            pid=row["pid"],
            identity=tuple(row[name] for name in _IDENTITY),
        )

    def latest_scan_id(self, complete_only: bool = False) -> int:
        """The newest scan id (complete ones only when asked); OptionError when empty."""
        sql = "SELECT MAX(id) FROM scans"
        if complete_only:
            sql += " WHERE status = 'complete'"
        value = self.conn.execute(sql).fetchone()[0]
        if value is None:
            raise OptionError(
                f"{self.path}: the store holds no {'complete ' if complete_only else ''}scan yet"
            )
        return int(value)

    def systems(self, scan_id: int) -> tuple[SystemInfo, ...]:
        """The systems of the inventory the scan ran with."""
        row = self.conn.execute("SELECT systems FROM scans WHERE id = ?", (scan_id,)).fetchone()
        return rows.systems(row[0]) if row else ()

    def scores(self, scan_id: int) -> dict[str, Any] | None:
        """The stored score snapshot of a scan, if any."""
        row = self.conn.execute("SELECT scores FROM scans WHERE id = ?", (scan_id,)).fetchone()
        return _json_dict(row[0]) if row and row[0] else None

    # --- findings ------------------------------------------------------------------------

    def findings(self, scan_id: int, filters: Sequence[tuple[str, object]]) -> list[Finding]:
        """Findings of a scan, filtered by (column, value or values), acceptances overlaid.

        The last answer is kept while the file is unchanged: a scan's close reads its
        findings for the scores, then for each report and the gate, 15,000 rows each time
        on a large inventory. Unchanged means no row written on this connection
        (``total_changes``) and no commit by any other (``PRAGMA data_version``), so an
        acceptance recorded in between, here or by another process, is always seen.
        """
        key = (scan_id, _hashable(filters), *self._file_state())
        if self._memo is not None and self._memo[0] == key:
            return list(self._memo[1])
        found = self._findings(scan_id, filters)
        self._memo = (key, tuple(found))
        return found

    @contextmanager
    def findings_kept(self) -> Iterator[None]:
        """Around a write that changes no finding, acceptance or rule text (a scan's score
        snapshot): the findings kept stay kept. Only when no other connection committed
        meanwhile; otherwise the next read goes to the file."""
        before = self._file_state()
        yield
        after = self._file_state()
        if self._memo is not None and self._memo[0][2:] == before and after[1] == before[1]:
            self._memo = ((*self._memo[0][:2], *after), self._memo[1])

    def _file_state(self) -> tuple[int, int]:
        """What changes whenever the file's rows may have: this connection's row changes,
        and SQLite's count of commits made by other connections."""
        version = self.conn.execute("PRAGMA data_version").fetchone()[0]
        return self.conn.total_changes, int(version)

    def _findings(self, scan_id: int, filters: Sequence[tuple[str, object]]) -> list[Finding]:
        """The query behind :meth:`findings`."""
        where, args = "m.scan_id = ?", list[object]([scan_id])
        for column, value in filters:
            if isinstance(value, (list, tuple)):
                where += f" AND f.{column} IN ({','.join('?' * len(value))})"
                args.extend(value)
            elif value is not None:
                where += f" AND f.{column} = ?"
                args.append(value)
        return self.select(
            f"SELECT {rows.FINDINGS_OF_SCAN} FROM {rows.FINDINGS_JOIN} "  # noqa: S608
            f"WHERE {where} ORDER BY f.system, f.rule_id, f.resource_key",
            args,
            self.scan(scan_id).started_at,
        )

    def select(self, sql: str, args: Sequence[object], on: str) -> list[Finding]:
        """Run a findings query (columns: FINDING_COLUMNS) and overlay acceptances."""
        live = self.live()
        cursor = self.conn.cursor()
        cursor.row_factory = None
        found = cursor.execute(sql, args)
        texts = self.texts.current()
        with collector_paused():
            return [_overlaid(row, texts, live, on) for row in found]

    def stored_findings(self, scan_id: int) -> Iterator[Finding]:
        """A scan's findings as stored: no acceptance overlaid (what ``db merge`` copies)."""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        texts = self.texts.current()
        found = cursor.execute(
            f"SELECT {rows.FINDINGS_OF_SCAN} FROM {rows.FINDINGS_JOIN} "  # noqa: S608
            "WHERE m.scan_id = ?",
            (scan_id,),
        )
        for row in found:
            yield rows.finding(row, texts)

    def compare(self, old: int, new: int) -> dict[str, list[Finding]]:
        """Failing findings that are new, resolved, still open or no longer evaluated.

        The two scans' (fingerprint, status) pairs are matched in memory, then only the
        rows that belong to a group are read whole. A fingerprint written twice in a
        running scan counts by its last record, as closing the scan will keep it.
        """
        on = self.scan(new).started_at
        failing = self.statuses(old, ("fail",))
        evaluated = self.statuses(new, ("fail", "pass"))
        picked: dict[int, str] = {}
        for fp, (status, rowid) in evaluated.items():
            if status == "fail":
                picked[rowid] = "still_open" if fp in failing else "new"
            elif fp in failing:
                picked[rowid] = "resolved"
        gone = {rowid for fp, (_, rowid) in failing.items() if fp not in evaluated}
        groups: dict[str, list[Finding]] = {name: [] for name in COMPARISONS}
        for rowid, finding in self.by_rowid(new, picked, on):
            groups[picked[rowid]].append(finding)
        groups["not_evaluated"] = [f for _, f in self.by_rowid(old, gone, on)]
        for items in groups.values():
            items.sort(key=rows.listing_order)
        return groups

    def stored_status(self, scan_id: int) -> str:
        """A scan's status as the file holds it (``running`` until a writer closes it)."""
        row = self.conn.execute("SELECT status FROM scans WHERE id = ?", (scan_id,)).fetchone()
        return str(row[0]) if row is not None else self.scan(scan_id).status

    def statuses(self, scan_id: int, statuses: Sequence[str]) -> dict[str, tuple[str, int]]:
        """The fingerprints of a scan with one of ``statuses``, each with its status and
        row. A running scan may hold a fingerprint twice: its rows are read in write
        order, so the last record counts, as closing the scan will keep it."""
        in_order = " ORDER BY m.row" if self.stored_status(scan_id) == "running" else ""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        found = cursor.execute(
            f"SELECT f.fingerprint, f.status, m.row FROM {rows.FINDINGS_JOIN} "  # noqa: S608
            f"WHERE m.scan_id = ? AND f.status IN ({','.join('?' * len(statuses))}){in_order}",
            (scan_id, *statuses),
        )
        with collector_paused():
            return {fp: (status, rowid) for fp, status, rowid in found}

    def by_rowid(
        self, scan_id: int, rowids: Iterable[int], on: str
    ) -> Iterator[tuple[int, Finding]]:
        """Whole findings of a scan by row id, acceptances applied, a chunk at a time."""
        live = self.live()
        texts = self.texts.current()
        cursor = self.conn.cursor()
        cursor.row_factory = None
        wanted = sorted(rowids)
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            found = cursor.execute(
                f"SELECT ?, {', '.join(rows.FINDING_FIELDS)}, rowid FROM findings "  # noqa: S608
                f"WHERE rowid IN ({','.join('?' * len(chunk))})",
                (scan_id, *chunk),
            ).fetchall()
            with collector_paused():
                for row in found:
                    yield row[-1], _overlaid(row, texts, live, on)

    def find_fingerprint(self, token: str) -> tuple[str, str, str] | None:
        """Resolve a (possibly shortened) fingerprint to (fingerprint, rule, resource);
        None when unknown; ValueError when ambiguous."""
        found = self.conn.execute(
            "SELECT s.fingerprint, f.rule_id, f.resource_key FROM finding_state s "
            "JOIN findings f ON f.rowid = s.last_row "
            "WHERE s.fingerprint LIKE ? LIMIT 2",
            (token.replace("%", "") + "%",),
        ).fetchall()
        if len(found) > 1:
            raise ValueError(token)
        return (found[0][0], found[0][1], found[0][2]) if found else None

    # --- resources -----------------------------------------------------------------------

    def resources(self, scan_id: int) -> list[Resource]:
        """Resources observed by a scan, by key (a key written twice, the last time)."""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        found = cursor.execute(
            f"SELECT {', '.join(f'r.{name}' for name in rows.RESOURCE_FIELDS)} "  # noqa: S608
            "FROM scan_resources m JOIN resources r ON r.rowid = m.row "
            "WHERE m.scan_id = ? ORDER BY r.key, m.row",
            (scan_id,),
        )
        latest = {row[0]: row for row in found}
        return [rows.resource(row) for row in latest.values()]


def counts(conn: sqlite3.Connection, scan_id: int) -> dict[str, int]:
    """A scan's counts, from its findings (stored when the scan closes)."""
    result: dict[str, int] = {s.value: 0 for s in Status}
    result.update({f"fail_{severity.value}": 0 for severity in Severity})
    for status, severity, history, n in conn.execute(
        f"SELECT f.status, f.severity, f.history, COUNT(*) FROM {rows.FINDINGS_JOIN} "  # noqa: S608
        "WHERE m.scan_id = ? GROUP BY f.status, f.severity, f.history",
        (scan_id,),
    ):
        result[status] = result.get(status, 0) + n
        if status == "fail":
            result[f"fail_{severity}"] = result.get(f"fail_{severity}", 0) + n
        if history is not None:
            result[f"lifecycle_{history}"] = result.get(f"lifecycle_{history}", 0) + n
    result["resources"] = conn.execute(
        "SELECT COUNT(DISTINCT r.key) FROM scan_resources m JOIN resources r "
        "ON r.rowid = m.row WHERE m.scan_id = ?",
        (scan_id,),
    ).fetchone()[0]
    return result


def vanished(
    conn: sqlite3.Connection,
    scan_id: int,
    target: str,
    rule_ids: frozenset[str],
    present: set[str],
    texts: Mapping[int, rows.RuleTexts],
) -> list[Finding]:
    """Passing findings for failures whose resource is gone from an observed target.

    The open port closed, the public bucket was deleted. Only rules this scan still
    evaluates count: a rule dropped from the policies says nothing about its resource.
    """
    candidates = conn.execute(
        "SELECT f.rowid, f.resource_key, f.rule_id FROM finding_state s JOIN findings f "
        "ON f.rowid = s.last_row "
        "WHERE s.target = ? AND s.last_status = 'fail' AND s.last_scan_id < ?",
        (target, scan_id),
    ).fetchall()
    # whole rows only for the few that are gone, not for every failure still present
    gone = [
        conn.execute(
            f"SELECT {rows.FINDING_COLUMNS} FROM findings WHERE rowid = ?",  # noqa: S608
            (rowid,),
        ).fetchone()
        for rowid, key, rule_id in candidates
        if key not in present and rule_id in rule_ids
    ]
    return [
        rows.finding(tuple(row), texts).evolve(
            status=Status.PASS,
            evidence=None,
            reason=None,
            message="resolved: the resource is no longer present on its target",
        )
        for row in gone
    ]


def scan_process_alive(host: str | None, pid: int | None) -> bool:
    """Whether the process that wrote a ``running`` scan row is still alive.

    A row from another machine, or with no pid, counts as dead: nothing can vouch for it.
    """
    if host != socket.gethostname() or not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _overlaid(
    row: Sequence[Any],
    texts: Mapping[int, rows.RuleTexts],
    live: Mapping[str, Sequence[Acceptance]],
    on: str,
) -> Finding:
    """The finding of a row (columns: FINDING_COLUMNS first), acceptances applied."""
    finding = rows.finding(row, texts)
    accepted = live.get(row[1])
    return overlay(finding, accepted, on) if accepted else finding


def _json_list(text: str) -> list[Any]:
    import json

    value = json.loads(text)
    return value if isinstance(value, list) else []


def _json_dict(text: str) -> dict[str, Any]:
    import json

    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def _hashable(filters: Sequence[tuple[str, object]]) -> tuple[tuple[str, object], ...]:
    """Filters as a memo key: lists of values become tuples."""
    return tuple(
        (column, tuple(value) if isinstance(value, (list, tuple)) else value)
        for column, value in filters
    )
