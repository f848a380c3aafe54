"""The findings store: one SQLite file, written by one process, read by anyone.

Scans, resources, findings, acceptances and an append-only ``finding_events`` trail,
through sqlite-utils, in WAL mode with a busy timeout, and explicit migrations keyed by
``PRAGMA user_version``. Findings are written as each target completes, one short
transaction per target, so a scan killed halfway keeps everything it finished and
nothing is half-written; the scan row goes ``running`` → ``complete`` /
``interrupted`` / ``failed``, and a scan whose process died is shown ``interrupted``
by the next command that opens the store.

Lifecycle derives from history: ``new`` / ``open`` / ``reopened`` / ``resolved`` are
computed when a finding is written (from the earlier records of its fingerprint), and
``accepted`` / ``expired`` are overlaid when it is read (acceptances change later).
Secrets never enter the store: checks do not put them in facts, and nothing else here
receives them.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import sqlite_utils

from audit.errors import OptionError, StoreError
from audit.models import (
    Acceptance,
    Finding,
    Lifecycle,
    Reason,
    Resource,
    ScanSummary,
    Severity,
    Status,
    SystemInfo,
    fingerprint,
)
from audit.reporting import ReportData

MAX_ACCEPTANCE_DAYS = 3 * 366
_CHUNK = 500


def now_iso() -> str:
    """Current UTC time, ISO 8601 with seconds (what every timestamp column holds)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def default_db_path() -> str:
    """``$REMPART_DB`` or ``./rempart.db``."""
    return os.environ.get("REMPART_DB") or "rempart.db"


MIGRATIONS: tuple[str, ...] = (
    # 1: the initial schema
    """
    CREATE TABLE scans (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        policies TEXT NOT NULL DEFAULT '[]',
        counts TEXT NOT NULL DEFAULT '{}',
        inventory TEXT,
        scope_declared INTEGER NOT NULL DEFAULT 1,
        targets TEXT NOT NULL DEFAULT '[]',
        systems TEXT NOT NULL DEFAULT '[]',
        scores TEXT,
        pid INTEGER,
        host TEXT,
        tool_version TEXT
    );
    CREATE TABLE resources (
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        key TEXT NOT NULL,
        type TEXT NOT NULL,
        target TEXT NOT NULL,
        system TEXT NOT NULL,
        facts TEXT NOT NULL,
        unknown TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (scan_id, key)
    );
    CREATE TABLE findings (
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        fingerprint TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        policy TEXT NOT NULL,
        title TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        resource_key TEXT NOT NULL,
        target TEXT NOT NULL,
        system TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        message TEXT NOT NULL,
        evidence TEXT,
        controls TEXT NOT NULL DEFAULT '{}',
        remediation TEXT NOT NULL DEFAULT '',
        reason TEXT,
        history TEXT,
        first_seen TEXT,
        title_fr TEXT NOT NULL DEFAULT '',
        remediation_fr TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (scan_id, fingerprint)
    );
    CREATE INDEX findings_status ON findings (scan_id, status, severity);
    CREATE TABLE finding_state (
        fingerprint TEXT PRIMARY KEY,
        last_scan_id INTEGER NOT NULL,
        last_status TEXT NOT NULL,
        ever_failed INTEGER NOT NULL,
        first_seen TEXT,
        target TEXT NOT NULL DEFAULT ''
    ) WITHOUT ROWID;
    CREATE INDEX finding_state_target ON finding_state (target, last_status);
    CREATE TABLE acceptances (
        id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        resource_key TEXT NOT NULL,
        owner TEXT NOT NULL,
        reason TEXT NOT NULL,
        compensating TEXT NOT NULL DEFAULT '',
        decided_by TEXT NOT NULL DEFAULT '',
        until TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE INDEX acceptances_fingerprint ON acceptances (fingerprint);
    CREATE TABLE finding_events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        scan_id INTEGER,
        fingerprint TEXT NOT NULL,
        event TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX finding_events_fingerprint ON finding_events (fingerprint);
    CREATE TRIGGER finding_events_append_only_update BEFORE UPDATE ON finding_events
    BEGIN SELECT RAISE(ABORT, 'finding_events is append-only'); END;
    CREATE TRIGGER finding_events_append_only_delete BEFORE DELETE ON finding_events
    BEGIN SELECT RAISE(ABORT, 'finding_events is append-only'); END;
    """,
)


@dataclass(frozen=True)
class Observed:
    """A target observed whole in this scan, and the rules the scan evaluates."""

    target: str
    rule_ids: frozenset[str]


_LATE_V1_COLUMNS = (
    ("findings", "title_fr", "TEXT NOT NULL DEFAULT ''"),
    ("findings", "remediation_fr", "TEXT NOT NULL DEFAULT ''"),
    ("finding_state", "target", "TEXT NOT NULL DEFAULT ''"),
)
"""Columns added to schema 1 in place: (table, column, definition as in MIGRATIONS[0])."""


@dataclass(frozen=True)
class Prior:
    """What the store knew about a fingerprint before this scan."""

    last_status: str
    ever_failed: bool
    first_seen: str | None


class Store:
    """The SQLite store. One instance per process; the engine is its only writer."""

    def __init__(self, path: str | Path, *, readonly: bool = False):
        self.path = str(path)
        self.conn = _connect(self.path, readonly)
        self.db = sqlite_utils.Database(self.conn)
        if not readonly:
            self._migrate()
            self.recover_interrupted()

    # --- opening ---------------------------------------------------------------------

    def _migrate(self) -> None:
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise StoreError(
                f"{self.path}: store schema {version} is newer than this "
                f"version of rempart understands ({len(MIGRATIONS)})"
            )
        for number in range(version, len(MIGRATIONS)):
            with self._write():
                for statement in _statements(MIGRATIONS[number]):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {number + 1}")
        self._complete_first_schema()

    def _complete_first_schema(self) -> None:
        """Add the columns schema 1 gained after stores were first written with it.

        A store created before them is still at ``user_version`` 1, and every write
        failed on it with a raw "no such column" error.
        """
        for table, column, definition in _LATE_V1_COLUMNS:
            names = {row[1] for row in self.conn.execute(f"PRAGMA table_info({table})")}
            if column not in names:
                with self._write():
                    self.conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
        indexed = self.conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'finding_state_target'"
        ).fetchone()
        if indexed is None:
            with self._write():
                self.conn.execute(
                    "CREATE INDEX finding_state_target ON finding_state (target, last_status)"
                )

    def recover_interrupted(self) -> None:
        """Mark as interrupted the running scans whose process is gone."""
        rows = self.conn.execute(
            "SELECT id, pid, host FROM scans WHERE status = 'running'"
        ).fetchall()
        for scan_id, pid, host in rows:
            if scan_process_alive(host, pid):
                continue
            with self._write():
                closed = self.conn.execute(
                    "UPDATE scans SET status = 'interrupted', finished_at = "
                    "COALESCE(finished_at, ?) WHERE id = ? AND status = 'running'",
                    (now_iso(), scan_id),
                ).rowcount
                if closed:
                    self._apply_state(scan_id)
                self._set_counts(scan_id)

    def close(self) -> None:
        """Close the connection (checkpointing the WAL when possible)."""
        self.conn.close()

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One short IMMEDIATE transaction: the writer lock is taken up front."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: cannot write the store: {exc}") from None
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"{self.path}: cannot write the store: {exc}") from None

    # --- writing a scan --------------------------------------------------------------

    def begin_scan(
        self,
        *,
        policies: Sequence[str],
        inventory: str | None,
        scope_declared: bool,
        targets: Sequence[str],
        systems: Sequence[SystemInfo],
        tool_version: str,
    ) -> int:
        """Create the scan row (status ``running``) and return its id."""
        with self._write():
            cursor = self.conn.execute(
                "INSERT INTO scans (started_at, status, policies, inventory, scope_declared, "
                "targets, systems, pid, host, tool_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    now_iso(),
                    "running",
                    json.dumps(list(policies)),
                    inventory,
                    int(scope_declared),
                    json.dumps(list(targets)),
                    json.dumps([_system_json(s) for s in systems]),
                    os.getpid(),
                    socket.gethostname(),
                    tool_version,
                ),
            )
        return int(cursor.lastrowid or 0)

    def record(
        self,
        scan_id: int,
        resources: Sequence[Resource],
        findings: Sequence[Finding],
        *,
        observed: Observed | None = None,
    ) -> list[Finding]:
        """Write one target's resources and findings in one transaction.

        With ``observed`` (the target was observed whole, without any problem), a finding
        that failed before on a resource of that target which no longer exists is
        *resolved*: the open port closed, the public bucket was deleted. Returns the
        findings with their history-derived lifecycle and first_seen.
        """
        at = now_iso()
        with self._write():
            if observed is not None:
                findings = [*findings, *self._vanished(scan_id, observed, resources, findings)]
            priors = self._priors(scan_id, [f.fingerprint for f in findings])
            stamped = [_stamp(f, priors.get(f.fingerprint), at, scan_id) for f in findings]
            self.conn.executemany(
                "INSERT OR REPLACE INTO resources VALUES (?,?,?,?,?,?,?)",
                [_resource_row(scan_id, r) for r in resources],
            )
            self.conn.executemany(
                f"INSERT OR REPLACE INTO findings ({_FINDING_COLUMNS}) "  # noqa: S608
                f"VALUES ({','.join('?' * _FINDING_WIDTH)})",
                [_finding_row(scan_id, f) for f in stamped],
            )
            self.conn.executemany(
                "INSERT INTO finding_events (at, scan_id, fingerprint, event, detail) "
                "VALUES (?,?,?,?,?)",
                [
                    (
                        at,
                        scan_id,
                        f.fingerprint,
                        f.lifecycle.value,
                        json.dumps({"rule_id": f.rule_id, "resource_key": f.resource_key}),
                    )
                    for f in stamped
                    if f.lifecycle in _EVENTFUL
                ],
            )
        return stamped

    def _vanished(
        self,
        scan_id: int,
        observed: Observed,
        resources: Sequence[Resource],
        findings: Sequence[Finding],
    ) -> list[Finding]:
        """Passing findings for failures whose resource is gone from an observed target.

        Only rules this scan still evaluates count: a rule dropped from the policies says
        nothing about its resource.
        """
        present = {r.key for r in resources} | {f.resource_key for f in findings}
        rows = self.conn.execute(
            f"SELECT {_qualified('f')} FROM finding_state s JOIN findings f "  # noqa: S608
            "ON f.scan_id = s.last_scan_id AND f.fingerprint = s.fingerprint "
            "WHERE s.target = ? AND s.last_status = 'fail' AND s.last_scan_id < ?",
            (observed.target, scan_id),
        ).fetchall()
        gone = []
        for row in rows:
            old = _finding(tuple(row))
            if old.resource_key in present or old.rule_id not in observed.rule_ids:
                continue
            gone.append(
                old.evolve(
                    status=Status.PASS,
                    evidence=None,
                    reason=None,
                    message="resolved: the resource is no longer present on its target",
                )
            )
        return gone

    def _priors(self, scan_id: int, prints: Sequence[str]) -> dict[str, Prior]:
        """The latest earlier state of each fingerprint (one indexed lookup per chunk)."""
        priors: dict[str, Prior] = {}
        for start in range(0, len(prints), _CHUNK):
            chunk = prints[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            rows = self.conn.execute(
                "SELECT fingerprint, last_status, ever_failed, first_seen FROM finding_state "  # noqa: S608
                f"WHERE fingerprint IN ({marks}) AND last_scan_id < ?",
                (*chunk, scan_id),
            ).fetchall()
            for fp, status, ever, first_seen in rows:
                priors[fp] = Prior(status, bool(ever), first_seen)
        return priors

    def _apply_state(self, scan_id: int) -> None:
        """Fold a closed scan's findings into the per-fingerprint state, in key order.

        Done once when the scan closes (finished, failed, or found interrupted), not per
        target: fingerprints are hashes, so per-target upserts dirtied pages all over the
        state's B-tree and every commit rewrote most of it (5.6 KB of WAL per finding).
        Priors only ever come from earlier scans, so nothing reads this state before.
        A later scan that closed first keeps its newer state.
        """
        self.conn.execute(
            "INSERT INTO finding_state (fingerprint, last_scan_id, last_status, ever_failed, "
            "first_seen, target) SELECT fingerprint, scan_id, status, status = 'fail', "
            "first_seen, target FROM findings WHERE scan_id = ? ORDER BY fingerprint "
            "ON CONFLICT(fingerprint) DO UPDATE SET last_scan_id = excluded.last_scan_id, "
            "last_status = excluded.last_status, "
            "ever_failed = MAX(finding_state.ever_failed, excluded.ever_failed), "
            "first_seen = excluded.first_seen, target = excluded.target "
            "WHERE excluded.last_scan_id >= finding_state.last_scan_id",
            (scan_id,),
        )

    def finish_scan(self, scan_id: int, status: str) -> ScanSummary:
        """Close the scan row with its final status and counts."""
        with self._write():
            self.conn.execute(
                "UPDATE scans SET status = ?, finished_at = ? WHERE id = ?",
                (status, now_iso(), scan_id),
            )
            self._apply_state(scan_id)
            self._set_counts(scan_id)
        return self.scan(scan_id)

    def set_scores(self, scan_id: int, scores: Mapping[str, Any]) -> None:
        """Store the score snapshot of a scan (trends read it back cheaply)."""
        with self._write():
            self.conn.execute(
                "UPDATE scans SET scores = ? WHERE id = ?",
                (json.dumps(scores, default=str), scan_id),
            )

    def _set_counts(self, scan_id: int) -> None:
        counts: dict[str, int] = {s.value: 0 for s in Status}
        for status, n in self.conn.execute(
            "SELECT status, COUNT(*) FROM findings WHERE scan_id = ? GROUP BY status", (scan_id,)
        ):
            counts[status] = n
        for severity in Severity:
            counts[f"fail_{severity.value}"] = 0
        for severity, n in self.conn.execute(
            "SELECT severity, COUNT(*) FROM findings WHERE scan_id = ? AND status = 'fail' "
            "GROUP BY severity",
            (scan_id,),
        ):
            counts[f"fail_{severity}"] = n
        for history, n in self.conn.execute(
            "SELECT history, COUNT(*) FROM findings WHERE scan_id = ? AND history IS NOT NULL "
            "GROUP BY history",
            (scan_id,),
        ):
            counts[f"lifecycle_{history}"] = n
        counts["resources"] = self.conn.execute(
            "SELECT COUNT(*) FROM resources WHERE scan_id = ?", (scan_id,)
        ).fetchone()[0]
        self.conn.execute("UPDATE scans SET counts = ? WHERE id = ?", (json.dumps(counts), scan_id))

    # --- reading ---------------------------------------------------------------------

    def scan(self, scan_id: int) -> ScanSummary:
        """One scan row; StoreError when it does not exist."""
        row = self.conn.execute("SELECT * FROM scans WHERE id = ?", (scan_id,)).fetchone()
        if row is None:
            raise OptionError(f"{self.path}: no scan with id {scan_id}")
        return _summary(row)

    def scans(self, statuses: Iterable[str] | None = None) -> list[ScanSummary]:
        """Every scan, oldest first (optionally only with the given statuses)."""
        rows = self.conn.execute("SELECT * FROM scans ORDER BY id").fetchall()
        wanted = set(statuses) if statuses is not None else None
        return [_summary(r) for r in rows if wanted is None or r["status"] in wanted]

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

    def findings(
        self,
        scan_id: int,
        *,
        status: str | None = None,
        severity: str | None = None,
        system: str | None = None,
        rule: str | None = None,
        target: str | None = None,
        statuses: Sequence[str] | None = None,
    ) -> list[Finding]:
        """Findings of a scan, filtered, with acceptances overlaid on their lifecycle."""
        where, args = "scan_id = ?", list[object]([scan_id])
        for column, value in (
            ("status", status),
            ("severity", severity),
            ("system", system),
            ("rule_id", rule),
            ("target", target),
        ):
            if value is not None:
                where += f" AND {column} = ?"
                args.append(value)
        if statuses is not None:
            where += f" AND status IN ({','.join('?' * len(statuses))})"
            args.extend(statuses)
        return self._select_findings(
            f"SELECT {_FINDING_COLUMNS} FROM findings WHERE {where} "  # noqa: S608
            "ORDER BY system, rule_id, resource_key",
            args,
            self.scan(scan_id).started_at,
        )

    def _select_findings(
        self, sql: str, args: Sequence[object] | Mapping[str, object], on: str
    ) -> list[Finding]:
        """Run a findings query (columns: _FINDING_COLUMNS) and overlay acceptances."""
        live = self._acceptances_by_fingerprint()
        cursor = self.conn.cursor()
        cursor.row_factory = None
        found = []
        for row in cursor.execute(sql, args):
            finding = _finding(row)
            accepted = live.get(row[1])
            found.append(_overlay(finding, accepted, on) if accepted else finding)
        return found

    def compare(self, old: int, new: int) -> dict[str, list[Finding]]:
        """Failing findings that are new, resolved, still open or no longer evaluated."""
        on = self.scan(new).started_at
        self.scan(old)
        return {
            name: self._select_findings(_compare_sql(side, condition), {"old": old, "new": new}, on)
            for name, (side, condition) in _COMPARISONS.items()
        }

    def resources(self, scan_id: int) -> list[Resource]:
        """Resources observed by a scan."""
        rows = self.conn.execute(
            "SELECT * FROM resources WHERE scan_id = ? ORDER BY key", (scan_id,)
        )
        return [_resource(row) for row in rows]

    def systems(self, scan_id: int) -> tuple[SystemInfo, ...]:
        """The systems of the inventory the scan ran with."""
        row = self.conn.execute("SELECT systems FROM scans WHERE id = ?", (scan_id,)).fetchone()
        return tuple(SystemInfo(**s) for s in json.loads(row[0])) if row else ()

    def scores(self, scan_id: int) -> dict[str, Any] | None:
        """The stored score snapshot of a scan, if any."""
        row = self.conn.execute("SELECT scores FROM scans WHERE id = ?", (scan_id,)).fetchone()
        return json.loads(row[0]) if row and row[0] else None

    def load_report(
        self, scan_id: int | None = None, *, tool_version: str = "", with_resources: bool = True
    ) -> ReportData:
        """Everything a renderer needs for one scan, from the store alone.

        ``with_resources=False`` leaves the facts out, for figures that only count findings.
        """
        scan_id = scan_id if scan_id is not None else self.latest_scan_id()
        scan = self.scan(scan_id)
        history = tuple(s for s in self.scans(("complete", "interrupted")) if s.id < scan_id)
        return ReportData(
            scan=scan,
            findings=tuple(self.findings(scan_id)),
            resources=tuple(self.resources(scan_id)) if with_resources else (),
            systems=self.systems(scan_id),
            acceptances=tuple(self.acceptances()),
            history=history,
            generated_at=now_iso(),
            tool_version=tool_version,
        )

    # --- acceptances -----------------------------------------------------------------

    def accept(
        self,
        *,
        fingerprint_: str,
        rule_id: str,
        resource_key: str,
        owner: str,
        reason: str,
        until: date,
        compensating: str = "",
        decided_by: str = "",
        today: date | None = None,
    ) -> Acceptance:
        """Record a risk acceptance; expiry is mandatory and at most three years out."""
        today = today or datetime.now(UTC).date()
        if until < today:
            raise OptionError(f"--until {until.isoformat()} is in the past")
        if until > today + timedelta(days=MAX_ACCEPTANCE_DAYS):
            raise OptionError(
                f"--until {until.isoformat()} is more than 3 years away; "
                "a risk acceptance must be reviewed at least every 3 years"
            )
        if not owner.strip() or not reason.strip():
            raise OptionError("an acceptance needs a named --owner and a --reason")
        at = now_iso()
        with self._write():
            cursor = self.conn.execute(
                "INSERT INTO acceptances (fingerprint, rule_id, resource_key, owner, reason, "
                "compensating, decided_by, until, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    fingerprint_,
                    rule_id,
                    resource_key,
                    owner,
                    reason,
                    compensating,
                    decided_by,
                    until.isoformat(),
                    at,
                ),
            )
            self.conn.execute(
                "INSERT INTO finding_events (at, fingerprint, event, detail) VALUES (?,?,?,?)",
                (
                    at,
                    fingerprint_,
                    "accepted",
                    json.dumps({"owner": owner, "until": until.isoformat(), "reason": reason}),
                ),
            )
        return self.acceptance(int(cursor.lastrowid or 0))

    def unaccept(self, acceptance_id: int) -> Acceptance:
        """Revoke an acceptance (it stays in the record, marked revoked)."""
        current = self.acceptance(acceptance_id)
        at = now_iso()
        with self._write():
            self.conn.execute(
                "UPDATE acceptances SET revoked_at = ? WHERE id = ?", (at, acceptance_id)
            )
            self.conn.execute(
                "INSERT INTO finding_events (at, fingerprint, event, detail) VALUES (?,?,?,?)",
                (at, current.fingerprint, "unaccepted", json.dumps({"id": acceptance_id})),
            )
        return self.acceptance(acceptance_id)

    def acceptance(self, acceptance_id: int) -> Acceptance:
        """One acceptance by id."""
        row = self.conn.execute(
            "SELECT * FROM acceptances WHERE id = ?", (acceptance_id,)
        ).fetchone()
        if row is None:
            raise OptionError(f"no acceptance with id {acceptance_id}")
        return _acceptance(row)

    def acceptances(self, *, include_revoked: bool = True) -> list[Acceptance]:
        """Every acceptance, newest first."""
        rows = self.conn.execute("SELECT * FROM acceptances ORDER BY id DESC").fetchall()
        items = [_acceptance(r) for r in rows]
        return [a for a in items if include_revoked or a.revoked_at is None]

    def _acceptances_by_fingerprint(self) -> dict[str, tuple[Acceptance, ...]]:
        grouped: dict[str, list[Acceptance]] = {}
        for acceptance in self.acceptances(include_revoked=False):
            grouped.setdefault(acceptance.fingerprint, []).append(acceptance)
        return {fp: tuple(items) for fp, items in grouped.items()}

    def find_fingerprint(self, token: str) -> tuple[str, str, str]:
        """Resolve a (possibly shortened) fingerprint to (fingerprint, rule, resource)."""
        rows = self.conn.execute(
            "SELECT s.fingerprint, f.rule_id, f.resource_key FROM finding_state s "
            "JOIN findings f ON f.scan_id = s.last_scan_id AND f.fingerprint = s.fingerprint "
            "WHERE s.fingerprint LIKE ? LIMIT 2",
            (token.replace("%", "") + "%",),
        ).fetchall()
        if not rows:
            raise OptionError(f"no finding with fingerprint {token!r} in {self.path}")
        if len(rows) > 1:
            raise OptionError(f"fingerprint prefix {token!r} is ambiguous; give more of it")
        return rows[0][0], rows[0][1], rows[0][2]

    def events(self, fingerprint_: str | None = None) -> list[dict[str, Any]]:
        """The audit trail, oldest first."""
        sql, args = "SELECT * FROM finding_events", list[str]()
        if fingerprint_:
            sql += " WHERE fingerprint = ?"
            args.append(fingerprint_)
        return [dict(r) for r in self.conn.execute(sql + " ORDER BY id", args)]


# --- helpers ---------------------------------------------------------------------------

_EVENTFUL = frozenset({Lifecycle.NEW, Lifecycle.RESOLVED, Lifecycle.REOPENED})


def _connect(path: str, readonly: bool) -> sqlite3.Connection:
    try:
        if readonly:
            conn = _connect_read_only(path)
        else:
            parent = Path(path).resolve().parent
            if not parent.is_dir():
                raise StoreError(f"{path}: directory {parent} does not exist")
            conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode = WAL")
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: random index inserts stay in memory
        conn.execute("PRAGMA foreign_keys = ON")
        return conn
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the store: {exc}") from None


def _connect_read_only(path: str) -> sqlite3.Connection:
    """Open for reading; on read-only media, where SQLite cannot create the WAL index,
    open the file as immutable (a store that was closed has no pending WAL)."""
    if not Path(path).exists():
        raise StoreError(f"{path}: no such store")
    uri = f"file:{quote(str(Path(path).resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(
            uri, uri=True, timeout=30, isolation_level=None, check_same_thread=False
        )
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        conn = sqlite3.connect(
            uri + "&immutable=1",
            uri=True,
            timeout=30,
            isolation_level=None,
            check_same_thread=False,
        )
    return conn


def _statements(script: str) -> list[str]:
    """Split a migration script into statements (triggers keep their inner ';')."""
    statements, buffer = [], ""
    for line in script.strip().splitlines():
        buffer += line + "\n"
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return statements


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


def _stamp(finding: Finding, prior: Prior | None, at: str, scan_id: int) -> Finding:
    """Derive the history part of the lifecycle, and when the problem was first seen."""

    lifecycle: Lifecycle | None = None
    first_seen = None
    if finding.status is Status.FAIL:
        if prior is None or not prior.ever_failed:
            lifecycle, first_seen = Lifecycle.NEW, at
        elif prior.last_status in ("fail", "error"):
            lifecycle, first_seen = Lifecycle.OPEN, prior.first_seen or at
        else:
            lifecycle, first_seen = Lifecycle.REOPENED, at
    elif finding.status is Status.PASS and prior is not None and prior.last_status == "fail":
        lifecycle = Lifecycle.RESOLVED
    elif finding.status is Status.ERROR and prior is not None and prior.last_status == "fail":
        first_seen = prior.first_seen
    return finding.evolve(lifecycle=lifecycle, first_seen=first_seen, scan_id=scan_id)


def _overlay(finding: Finding, acceptances: Sequence[Acceptance], on: str) -> Finding:
    """Apply acceptances: a live one makes a failure ``accepted``, a lapsed one ``expired``."""

    if finding.status is not Status.FAIL or not acceptances:
        return finding
    if any(a.is_live(on) for a in acceptances):
        return finding.evolve(lifecycle=Lifecycle.ACCEPTED)
    return finding.evolve(lifecycle=Lifecycle.EXPIRED)


_ENCODER = json.JSONEncoder(default=str, ensure_ascii=False)


def _dumps(value: Any) -> str:
    """JSON for a column; one encoder for all (json.dumps with options builds one per call)."""
    return _ENCODER.encode(value)


def _resource_row(scan_id: int, r: Resource) -> tuple[Any, ...]:
    unknown = {k: {"reason": p.reason.value, "message": p.message} for k, p in r.unknown.items()}
    return (scan_id, r.key, r.type, r.target, r.system, _dumps(dict(r.facts)), _dumps(unknown))


_CONTROLS_JSON: dict[int, tuple[Mapping[str, tuple[str, ...]], str]] = {}


def _controls_json(controls: Mapping[str, tuple[str, ...]]) -> str:
    """Serialise a rule's control map once: every finding of the rule shares the object."""
    cached = _CONTROLS_JSON.get(id(controls))
    if cached is not None and cached[0] is controls:
        return cached[1]
    text = _dumps({k: list(v) for k, v in controls.items()})
    if len(_CONTROLS_JSON) > 10_000:
        _CONTROLS_JSON.clear()
    _CONTROLS_JSON[id(controls)] = (controls, text)
    return text


def _finding_row(scan_id: int, f: Finding) -> tuple[Any, ...]:
    return (
        scan_id,
        f.fingerprint,
        f.rule_id,
        f.policy,
        f.title,
        f.resource_type,
        f.resource_key,
        f.target,
        f.system,
        f.status.value,
        f.severity.value,
        f.message,
        _dumps(f.evidence),
        _controls_json(f.controls),
        f.remediation,
        f.reason.value if f.reason else None,
        f.lifecycle.value if f.lifecycle else None,
        f.first_seen,
        f.title_fr,
        f.remediation_fr,
    )


_FINDING_COLUMNS = (
    "scan_id, fingerprint, rule_id, policy, title, resource_type, resource_key, target, system, "
    "status, severity, message, evidence, controls, remediation, reason, history, first_seen, "
    "title_fr, remediation_fr"
)
_FINDING_WIDTH = _FINDING_COLUMNS.count(",") + 1
# diff groups: which side's row to return, and the condition on new (n) and old (o) rows
_COMPARISONS = {
    "new": ("n", "n.status = 'fail' AND (o.status IS NULL OR o.status != 'fail')"),
    "resolved": ("n", "n.status = 'pass' AND o.status = 'fail'"),
    "still_open": ("n", "n.status = 'fail' AND o.status = 'fail'"),
    "not_evaluated": (
        "o",
        "o.status = 'fail' AND (n.status IS NULL OR n.status IN ('error', 'skip'))",
    ),
}


def _qualified(alias: str) -> str:
    """_FINDING_COLUMNS prefixed with a table alias, for joins."""
    return ", ".join(f"{alias}.{c}" for c in _FINDING_COLUMNS.split(", "))


def _compare_sql(side: str, condition: str) -> str:
    """Join two scans' findings by fingerprint (named parameters ``old`` and ``new``)."""
    cols = _qualified(side)
    if side == "n":
        source = (
            "findings n LEFT JOIN findings o ON o.scan_id = :old AND o.fingerprint = n.fingerprint"
        )
        where = "n.scan_id = :new"
    else:
        source = (
            "findings o LEFT JOIN findings n ON n.fingerprint = o.fingerprint AND n.scan_id = :new"
        )
        where = "o.scan_id = :old"
    return (
        f"SELECT {cols} FROM {source} WHERE {where} AND {condition} "  # noqa: S608
        f"ORDER BY {side}.system, {side}.rule_id, {side}.resource_key"
    )


_STATUS = {s.value: s for s in Status}
_SEVERITY = {s.value: s for s in Severity}
_REASON = {r.value: r for r in Reason}
_LIFECYCLE = {lc.value: lc for lc in Lifecycle}


@lru_cache(maxsize=4096)
def _controls(text: str) -> Mapping[str, tuple[str, ...]]:
    """Control maps repeat across findings of a rule: parse each distinct one once."""
    return MappingProxyType({k: tuple(v) for k, v in json.loads(text).items()})


def _finding(row: tuple[Any, ...]) -> Finding:
    """A finding from a row of _FINDING_COLUMNS (tuples: this is the hot path).

    Built like :meth:`Finding.evolve`, without the frozen dataclass's per-field
    ``object.__setattr__``: every value here comes typed from our own columns.
    """
    finding = object.__new__(Finding)
    finding.__dict__.update(
        rule_id=row[2],
        policy=row[3],
        title=row[4],
        resource_type=row[5],
        resource_key=row[6],
        target=row[7],
        system=row[8],
        status=_STATUS[row[9]],
        severity=_SEVERITY[row[10]],
        message=row[11],
        evidence=json.loads(row[12]) if row[12] else None,
        controls=_controls(row[13]),
        remediation=row[14],
        reason=_REASON[row[15]] if row[15] else None,
        lifecycle=_LIFECYCLE[row[16]] if row[16] else None,
        first_seen=row[17],
        scan_id=row[0],
        title_fr=row[18],
        remediation_fr=row[19],
        fingerprint=row[1],
    )
    return finding


def _resource(row: sqlite3.Row) -> Resource:
    from audit.models import Problem

    unknown = {
        k: Problem(Reason(v["reason"]), v["message"]) for k, v in json.loads(row["unknown"]).items()
    }
    return Resource(
        row["type"], row["key"], row["target"], row["system"], json.loads(row["facts"]), unknown
    )


def _summary(row: sqlite3.Row) -> ScanSummary:
    """A scan row; the score snapshot joins the counts so trends read one mapping."""
    counts = json.loads(row["counts"])
    if row["scores"]:
        counts.update(json.loads(row["scores"]))
    return ScanSummary(
        id=row["id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        status=row["status"],
        policies=tuple(json.loads(row["policies"])),
        counts=counts,
        scope_declared=bool(row["scope_declared"]),
        inventory=row["inventory"],
    )


def _acceptance(row: sqlite3.Row) -> Acceptance:
    return Acceptance(
        id=row["id"],
        fingerprint=row["fingerprint"],
        rule_id=row["rule_id"],
        resource_key=row["resource_key"],
        owner=row["owner"],
        reason=row["reason"],
        until=row["until"],
        created_at=row["created_at"],
        decided_by=row["decided_by"],
        compensating=row["compensating"],
        revoked_at=row["revoked_at"],
    )


def _system_json(system: SystemInfo) -> dict[str, str]:
    return {
        "name": system.name,
        "owner": system.owner,
        "criticality": system.criticality,
        "description": system.description,
    }


def fingerprint_for(rule_id: str, resource_key: str) -> str:
    """Public helper: the fingerprint ``accept RULE RESOURCE`` refers to."""
    return fingerprint(rule_id, resource_key)
