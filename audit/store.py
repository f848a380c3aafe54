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
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NamedTuple

from audit import storefile
from audit.errors import OptionError, StoreError
from audit.heap import collector_paused
from audit.jsontext import dumps as _dumps
from audit.jsontext import loads as _loads
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

if TYPE_CHECKING:
    import sqlite_utils

MAX_ACCEPTANCE_DAYS = 3 * 366
PRIOR_CACHE = 250_000
"""Fingerprints that ever failed whose states a writer keeps in memory (about 200 bytes
each); past that, it keeps their hashes and looks the states up."""
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
    # 2: findings lose their (scan_id, fingerprint) key. Fingerprints are hashes, so that
    # index took every insert at a random place and each per-target commit rewrote most
    # of its pages (about 5 KB of WAL per finding). Rows now append in write order;
    # finding_state keeps the row of each fingerprint's latest record, and duplicates
    # within a scan are folded away when the scan closes. A rule's texts (titles,
    # remediations in both languages, controls) are stored once in rule_texts, not on
    # every finding of the rule; the view findings_full joins them back, with the columns
    # findings had in schema 1, for SQL written against it. The trail loses its
    # fingerprint index: that key too was random, and only the per-finding trail (rare,
    # interactive) read through it.
    """
    CREATE TABLE rule_texts (
        id INTEGER PRIMARY KEY,
        policy TEXT NOT NULL,
        title TEXT NOT NULL,
        controls TEXT NOT NULL,
        remediation TEXT NOT NULL,
        title_fr TEXT NOT NULL,
        remediation_fr TEXT NOT NULL,
        UNIQUE (policy, title, controls, remediation, title_fr, remediation_fr)
    );
    INSERT OR IGNORE INTO rule_texts (policy, title, controls, remediation, title_fr,
        remediation_fr) SELECT policy, title, controls, remediation, title_fr, remediation_fr
        FROM findings ORDER BY rowid;
    CREATE TABLE findings_v2 (
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        fingerprint TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        texts INTEGER NOT NULL,
        resource_type TEXT NOT NULL,
        resource_key TEXT NOT NULL,
        target TEXT NOT NULL,
        system TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        message TEXT NOT NULL,
        evidence TEXT,
        reason TEXT,
        history TEXT,
        first_seen TEXT
    );
    INSERT INTO findings_v2 SELECT f.scan_id, f.fingerprint, f.rule_id, t.id, f.resource_type,
        f.resource_key, f.target, f.system, f.status, f.severity, f.message, f.evidence,
        f.reason, f.history, f.first_seen
        FROM findings f JOIN rule_texts t ON t.policy = f.policy AND t.title = f.title
        AND t.controls = f.controls AND t.remediation = f.remediation
        AND t.title_fr = f.title_fr AND t.remediation_fr = f.remediation_fr
        ORDER BY f.scan_id, f.fingerprint;
    CREATE INDEX findings_v2_migration ON findings_v2 (scan_id, fingerprint);
    ALTER TABLE finding_state ADD COLUMN last_row INTEGER;
    UPDATE finding_state SET last_row = (SELECT v.rowid FROM findings_v2 v
        WHERE v.scan_id = finding_state.last_scan_id
        AND v.fingerprint = finding_state.fingerprint);
    DROP INDEX findings_v2_migration;
    DROP TABLE findings;
    ALTER TABLE findings_v2 RENAME TO findings;
    CREATE INDEX findings_status ON findings (scan_id, status, severity);
    DROP INDEX IF EXISTS finding_state_target;
    CREATE INDEX finding_state_failing ON finding_state (target) WHERE last_status = 'fail';
    DROP INDEX IF EXISTS finding_events_fingerprint;
    CREATE VIEW findings_full AS SELECT f.scan_id, f.fingerprint, f.rule_id, t.policy,
        t.title, f.resource_type, f.resource_key, f.target, f.system, f.status, f.severity,
        f.message, f.evidence, t.controls, t.remediation, f.reason, f.history, f.first_seen,
        t.title_fr, t.remediation_fr
        FROM findings f JOIN rule_texts t ON t.id = f.texts;
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


class Prior(NamedTuple):
    """What the store knew about a fingerprint that failed before this scan (only those
    have a history that changes a lifecycle)."""

    last_status: str
    first_seen: str | None


@storefile.guard_public_methods
class Store:
    """The SQLite store. One instance per process; the engine is its only writer.

    ``readonly`` opens the file read-only: nothing is migrated, recovered or written,
    and a scan whose process is gone is only *shown* interrupted. ``recover=False``
    migrates without touching scans (see :func:`open_for_reading`).
    """

    def __init__(self, path: str | Path, *, readonly: bool = False, recover: bool = True):
        self.path = str(path)
        self.readonly = readonly
        self.conn = _connect(self.path, readonly)
        self._text_ids: dict[tuple[str, ...], int] = {}
        self._failed: dict[str, Prior] | frozenset[int] = {}
        self._failed_mark: tuple[Any, ...] = ()
        self._texts_by_id: dict[int, RuleTexts] = {}
        # scans this process writes: the hashes of their fingerprints so far, or None
        # once one repeated
        self._recorded: dict[int, set[int] | None] = {}
        self.version = self._schema_version()
        if not readonly:
            self._migrate()
        if recover and not readonly:
            self.recover_interrupted()

    @cached_property
    def db(self) -> sqlite_utils.Database:
        """The sqlite-utils view of the same connection, for ad hoc table work (built on
        first use: importing sqlite-utils costs every read command 30 ms)."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    # --- opening ---------------------------------------------------------------------

    def _schema_version(self) -> int:
        """The store's schema version; a newer one than this code knows is refused."""
        version = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        if version > len(MIGRATIONS):
            self.conn.close()
            raise StoreError(
                f"{self.path}: store schema {version} is newer than this "
                f"version of rempart understands ({len(MIGRATIONS)})"
            )
        return version

    @property
    def is_current(self) -> bool:
        """Whether the store is at the schema this code reads and writes."""
        return self.version == len(MIGRATIONS)

    def _migrate(self) -> None:
        for number in range(self.version, len(MIGRATIONS)):
            if number == 1:
                self._complete_first_schema()  # migration 2 copies the late columns
            with self._write():
                for statement in _statements(MIGRATIONS[number]):
                    self.conn.execute(statement)
                self.conn.execute(f"PRAGMA user_version = {number + 1}")
        self.version = len(MIGRATIONS)

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
                    self._close_findings(scan_id)
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
        texts = _TextIds(self)
        with self._write(), collector_paused():
            if observed is not None:
                findings = [*findings, *self._vanished(scan_id, observed, resources, findings)]
            prints = [f.fingerprint for f in findings]
            priors = self._priors(scan_id, prints)
            stamped = [
                _stamp(f, priors.get(fp), at, scan_id)
                for f, fp in zip(findings, prints, strict=True)
            ]
            self._note_recorded(scan_id, prints)
            self.conn.executemany(
                "INSERT OR REPLACE INTO resources VALUES (?,?,?,?,?,?,?)",
                [_resource_row(scan_id, r) for r in resources],
            )
            self.conn.executemany(
                f"INSERT INTO findings ({_FINDING_COLUMNS}) "  # noqa: S608
                f"VALUES ({','.join('?' * _FINDING_WIDTH)})",
                [_finding_row(scan_id, f, texts.id_of(f)) for f in stamped],
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
                        _dumps({"rule_id": f.rule_id, "resource_key": f.resource_key}),
                    )
                    for f in stamped
                    if f.lifecycle in _EVENTFUL
                ],
            )
        texts.keep()
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
        candidates = self.conn.execute(
            "SELECT f.rowid, f.resource_key, f.rule_id FROM finding_state s JOIN findings f "
            "ON f.rowid = s.last_row "
            "WHERE s.target = ? AND s.last_status = 'fail' AND s.last_scan_id < ?",
            (observed.target, scan_id),
        ).fetchall()
        # whole rows only for the few that are gone, not for every failure still present
        rows = [
            self.conn.execute(
                f"SELECT {_FINDING_COLUMNS} FROM findings WHERE rowid = ?",  # noqa: S608
                (rowid,),
            ).fetchone()
            for rowid, key, rule_id in candidates
            if key not in present and rule_id in observed.rule_ids
        ]
        gone = []
        texts = self._texts()
        for row in rows:
            old = _finding(tuple(row), texts)
            gone.append(
                old.evolve(
                    status=Status.PASS,
                    evidence=None,
                    reason=None,
                    message="resolved: the resource is no longer present on its target",
                )
            )
        return gone

    def _text_id(self, key: tuple[str, ...]) -> int:
        """The id of a rule's texts, inserted when this version of the rule is new."""
        self.conn.execute(
            "INSERT OR IGNORE INTO rule_texts (policy, title, controls, remediation, "
            "title_fr, remediation_fr) VALUES (?,?,?,?,?,?)",
            key,
        )
        row = self.conn.execute(
            "SELECT id FROM rule_texts WHERE policy = ? AND title = ? AND controls = ? "
            "AND remediation = ? AND title_fr = ? AND remediation_fr = ?",
            key,
        ).fetchone()
        return int(row[0])

    def _texts(self) -> Mapping[int, RuleTexts]:
        """Every rule version's texts, read once and then only the rows added since
        (rows are never changed or deleted; another process may add some)."""
        cache = self._texts_by_id
        cursor = self.conn.cursor()
        cursor.row_factory = None
        for row in cursor.execute(
            "SELECT id, policy, title, controls, remediation, title_fr, remediation_fr "
            "FROM rule_texts WHERE id > ? ORDER BY id",
            (max(cache, default=0),),
        ):
            cache[row[0]] = RuleTexts(row[1], row[2], _controls(row[3]), *row[4:])
        return cache

    def _priors(self, scan_id: int, prints: Sequence[str]) -> Mapping[str, Prior]:
        """The latest earlier state of each fingerprint that ever failed.

        A fingerprint that never failed has no history that matters (its failure would
        be new, its pass or error resolves nothing). The states of those that did are
        held in memory, read once per scan and again whenever another scan has closed
        (the state changes only then): a dictionary lookup per finding instead of a
        B-tree probe. Past PRIOR_CACHE of them, only their hashes are held and the
        states are looked up by key, a chunk at a time.
        """
        known = self._failing_states(scan_id)
        if isinstance(known, dict):
            return known
        wanted = [fp for fp in prints if hash(fp) in known]
        priors: dict[str, Prior] = {}
        cursor = self.conn.cursor()
        cursor.row_factory = None
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for fp, status, first_seen in cursor.execute(
                "SELECT fingerprint, last_status, first_seen FROM finding_state "  # noqa: S608
                f"WHERE fingerprint IN ({marks}) AND ever_failed = 1 AND last_scan_id < ?",
                (*chunk, scan_id),
            ):
                priors[fp] = Prior(status, first_seen)
        return priors

    def _failing_states(self, scan_id: int) -> dict[str, Prior] | frozenset[int]:
        """The earlier states of every fingerprint that ever failed, or past PRIOR_CACHE
        of them, their hashes (a collision only costs one lookup more)."""
        mark = (
            scan_id,
            *self.conn.execute(
                "SELECT COUNT(*), TOTAL(id) FROM scans WHERE status != 'running'"
            ).fetchone(),
        )
        if mark == self._failed_mark:
            return self._failed
        where = "FROM finding_state WHERE ever_failed = 1 AND last_scan_id < ?"
        count = self.conn.execute(f"SELECT COUNT(*) {where}", (scan_id,)).fetchone()[0]
        cursor = self.conn.cursor()
        cursor.row_factory = None
        with collector_paused():
            if count <= PRIOR_CACHE:
                rows = cursor.execute(
                    f"SELECT fingerprint, last_status, first_seen {where}",
                    (scan_id,),
                )
                self._failed = {fp: Prior(status, seen) for fp, status, seen in rows}
            else:
                rows = cursor.execute(f"SELECT fingerprint {where}", (scan_id,))
                self._failed = frozenset(hash(row[0]) for row in rows)
        self._failed_mark = mark
        return self._failed

    def _close_findings(self, scan_id: int) -> None:
        """Fold a closed scan's findings into the per-fingerprint state, in key order.

        Done once when the scan closes (finished, failed, or found interrupted), not per
        target: fingerprints are hashes, so per-target upserts dirtied pages all over the
        state's B-tree and every commit rewrote most of it (5.6 KB of WAL per finding).
        Priors only ever come from earlier scans, so nothing reads this state before.
        A later scan that closed first keeps its newer state.

        A fingerprint recorded twice in one scan (one resource reached through two
        targets, two policies sharing a rule id) keeps its last record, as the key the
        findings table no longer has would have kept it.
        """
        if self._recorded.pop(scan_id, None) is None:  # a repeat, or written elsewhere
            self._drop_duplicates(scan_id)
        self.conn.execute(
            "INSERT INTO finding_state (fingerprint, last_scan_id, last_status, ever_failed, "
            "first_seen, target, last_row) SELECT fingerprint, scan_id, status, "
            "status = 'fail', first_seen, target, rowid FROM findings WHERE scan_id = ? "
            "ORDER BY fingerprint "
            "ON CONFLICT(fingerprint) DO UPDATE SET last_scan_id = excluded.last_scan_id, "
            "last_status = excluded.last_status, "
            "ever_failed = MAX(finding_state.ever_failed, excluded.ever_failed), "
            "first_seen = excluded.first_seen, target = excluded.target, "
            "last_row = excluded.last_row "
            "WHERE excluded.last_scan_id >= finding_state.last_scan_id",
            (scan_id,),
        )

    def _drop_duplicates(self, scan_id: int) -> None:
        """Keep the last record of each fingerprint of a scan (a sort of the whole scan:
        run only when this process saw a repeat, or did not write the scan itself)."""
        self.conn.execute(
            "DELETE FROM findings WHERE rowid IN (SELECT rowid FROM (SELECT rowid, "
            "ROW_NUMBER() OVER (PARTITION BY fingerprint ORDER BY rowid DESC) AS n "
            "FROM findings WHERE scan_id = ?) WHERE n > 1)",
            (scan_id,),
        )

    def _note_recorded(self, scan_id: int, prints: Sequence[str]) -> None:
        """Remember which fingerprints this scan has written, to spot a repeat.

        Their hashes, not the strings: about 60 bytes a finding. A collision only costs
        an exact check when the scan closes.
        """
        seen = self._recorded.setdefault(scan_id, set())
        if seen is None:
            return
        before = len(seen)
        seen.update(map(hash, prints))
        if len(seen) - before != len(prints):
            self._recorded[scan_id] = None

    def finish_scan(self, scan_id: int, status: str) -> ScanSummary:
        """Close the scan row with its final status and counts."""
        with self._write():
            self.conn.execute(
                "UPDATE scans SET status = ?, finished_at = ? WHERE id = ?",
                (status, now_iso(), scan_id),
            )
            self._close_findings(scan_id)
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
        counts = self._counts(scan_id)
        self.conn.execute("UPDATE scans SET counts = ? WHERE id = ?", (json.dumps(counts), scan_id))

    def _counts(self, scan_id: int) -> dict[str, int]:
        """A scan's counts, from its findings (stored when the scan closes)."""
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
        return counts

    # --- reading ---------------------------------------------------------------------

    def scan(self, scan_id: int) -> ScanSummary:
        """One scan row; StoreError when it does not exist."""
        row = self.conn.execute("SELECT * FROM scans WHERE id = ?", (scan_id,)).fetchone()
        if row is None:
            raise OptionError(f"{self.path}: no scan with id {scan_id}")
        return self._summary(row)

    def scans(self, statuses: Iterable[str] | None = None) -> list[ScanSummary]:
        """Every scan, oldest first (optionally only with the given statuses)."""
        rows = self.conn.execute("SELECT * FROM scans ORDER BY id").fetchall()
        wanted = set(statuses) if statuses is not None else None
        summaries = [self._summary(r) for r in rows]
        return [s for s in summaries if wanted is None or s.status in wanted]

    def _summary(self, row: sqlite3.Row) -> ScanSummary:
        """A scan row; read-only, a running scan whose process is gone reads as the
        interrupted scan a writer would make it (with its counts), the file unchanged."""
        summary = _summary(row)
        if not self.readonly or summary.status != "running":
            return summary
        if scan_process_alive(row["host"], row["pid"]):
            return summary
        return replace(summary, status="interrupted", counts=self._counts(summary.id))

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
        rows = cursor.execute(sql, args)
        texts = self._texts()
        with collector_paused():
            return [_overlaid(row, texts, live, on) for row in rows]

    def compare(self, old: int, new: int) -> dict[str, list[Finding]]:
        """Failing findings that are new, resolved, still open or no longer evaluated.

        The two scans' (fingerprint, status) pairs are matched in memory, then only the
        rows that belong to a group are read whole: findings carry no fingerprint index
        (see migration 2), and 200,000 narrow rows read in order cost less than SQLite
        building one for the join. A fingerprint written twice in a running scan counts
        by its last record, as closing the scan will keep it.
        """
        on = self.scan(new).started_at
        failing = self._statuses(old, ("fail",))
        evaluated = self._statuses(new, ("fail", "pass"))
        picked: dict[int, str] = {}
        for fp, (status, rowid) in evaluated.items():
            if status == "fail":
                picked[rowid] = "still_open" if fp in failing else "new"
            elif fp in failing:
                picked[rowid] = "resolved"
        for fp, (_, rowid) in failing.items():
            if fp not in evaluated:
                picked[rowid] = "not_evaluated"
        groups: dict[str, list[Finding]] = {name: [] for name in _COMPARISONS}
        for rowid, finding in self._rows(picked, on):
            groups[picked[rowid]].append(finding)
        for items in groups.values():
            items.sort(key=_listing_order)
        return groups

    def _stored_status(self, scan_id: int) -> str:
        """A scan's status as the file holds it (``running`` until a writer closes it)."""
        row = self.conn.execute("SELECT status FROM scans WHERE id = ?", (scan_id,)).fetchone()
        return str(row[0]) if row is not None else self.scan(scan_id).status

    def _statuses(self, scan_id: int, statuses: Sequence[str]) -> dict[str, tuple[str, int]]:
        """The fingerprints of a scan with one of ``statuses``, each with its status and
        row. A running scan may hold a fingerprint twice: its rows are read in write
        order, so the last record counts, as closing the scan will keep it."""
        in_order = " ORDER BY rowid" if self._stored_status(scan_id) == "running" else ""
        cursor = self.conn.cursor()
        cursor.row_factory = None
        rows = cursor.execute(
            "SELECT fingerprint, status, rowid FROM findings WHERE scan_id = ? "  # noqa: S608
            f"AND status IN ({','.join('?' * len(statuses))}){in_order}",
            (scan_id, *statuses),
        )
        with collector_paused():
            return {fp: (status, rowid) for fp, status, rowid in rows}

    def _rows(self, rowids: Iterable[int], on: str) -> Iterator[tuple[int, Finding]]:
        """Whole findings by row id, acceptances applied, a chunk of ids at a time."""
        live = self._acceptances_by_fingerprint()
        texts = self._texts()
        cursor = self.conn.cursor()
        cursor.row_factory = None
        wanted = sorted(rowids)
        for start in range(0, len(wanted), _CHUNK):
            chunk = wanted[start : start + _CHUNK]
            rows = cursor.execute(
                f"SELECT {_FINDING_COLUMNS}, rowid FROM findings "  # noqa: S608
                f"WHERE rowid IN ({','.join('?' * len(chunk))})",
                chunk,
            ).fetchall()
            with collector_paused():
                for row in rows:
                    yield row[-1], _overlaid(row, texts, live, on)

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
            "JOIN findings f ON f.rowid = s.last_row "
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
    """A checked connection (see :mod:`audit.storefile`), tuned for the store's work."""
    conn = storefile.connect(path, MIGRATIONS, readonly=readonly)
    with storefile.sqlite_errors(path, "open"):
        try:
            if not readonly:
                conn.execute("PRAGMA journal_mode = WAL")
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA cache_size = -65536")  # 64 MiB: random inserts stay in memory
            conn.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            conn.close()
            raise
    return conn


def open_for_reading(path: str | Path) -> Store:
    """A store for a command that only reads, opened read-only.

    Nothing in the file runs or changes: scans left running are not marked interrupted
    (they are shown so), and a full or read-only disk still serves it. The one
    exception is a store of an older schema, which this code cannot read: it is
    migrated once (after the same checks), without touching its scans.
    """
    store = Store(path, readonly=True)
    if store.is_current:
        return store
    store.close()
    Store(path, recover=False).close()
    return Store(path, readonly=True)


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
        if prior is None:
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


def _overlaid(
    row: Sequence[Any],
    texts: Mapping[int, RuleTexts],
    live: Mapping[str, Sequence[Acceptance]],
    on: str,
) -> Finding:
    """The finding of a row (columns: _FINDING_COLUMNS first), acceptances applied."""
    finding = _finding(row, texts)
    accepted = live.get(row[1])
    return _overlay(finding, accepted, on) if accepted else finding


def _overlay(finding: Finding, acceptances: Sequence[Acceptance], on: str) -> Finding:
    """Apply acceptances: a live one makes a failure ``accepted``, a lapsed one ``expired``."""

    if finding.status is not Status.FAIL or not acceptances:
        return finding
    if any(a.is_live(on) for a in acceptances):
        return finding.evolve(lifecycle=Lifecycle.ACCEPTED)
    return finding.evolve(lifecycle=Lifecycle.EXPIRED)


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


def _finding_row(scan_id: int, f: Finding, texts: int) -> tuple[Any, ...]:
    return (
        scan_id,
        f.fingerprint,
        f.rule_id,
        texts,
        f.resource_type,
        f.resource_key,
        f.target,
        f.system,
        f.status._value_,
        f.severity._value_,
        f.message,
        _dumps(f.evidence),
        f.reason._value_ if f.reason else None,
        f.lifecycle._value_ if f.lifecycle else None,
        f.first_seen,
    )


_FINDING_COLUMNS = (
    "scan_id, fingerprint, rule_id, texts, resource_type, resource_key, target, system, "
    "status, severity, message, evidence, reason, history, first_seen"
)
_FINDING_WIDTH = _FINDING_COLUMNS.count(",") + 1
_COMPARISONS = ("new", "resolved", "still_open", "not_evaluated")


def _listing_order(f: Finding) -> tuple[str, str, str]:
    """The order every listing of findings uses (as ``findings``' ORDER BY)."""
    return (f.system, f.rule_id, f.resource_key)


_STATUS = {s.value: s for s in Status}
_SEVERITY = {s.value: s for s in Severity}
_REASON = {r.value: r for r in Reason}
_LIFECYCLE = {lc.value: lc for lc in Lifecycle}


def _controls(text: str) -> Mapping[str, tuple[str, ...]]:
    """A control map back from its column (read once per rule version)."""
    return MappingProxyType({k: tuple(v) for k, v in json.loads(text).items()})


class RuleTexts(NamedTuple):
    """What every finding of one version of a rule shares (a row of ``rule_texts``)."""

    policy: str
    title: str
    controls: Mapping[str, tuple[str, ...]]
    remediation: str
    title_fr: str
    remediation_fr: str


class _TextIds:
    """The ``rule_texts`` ids of one ``record`` call.

    Ids found or created inside the transaction reach the store's cache only by
    :meth:`keep`, after the commit: a rolled-back row must not be referred to later.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.known = store._text_ids
        self.new: dict[tuple[str, ...], int] = {}

    def id_of(self, f: Finding) -> int:
        key = (
            f.policy,
            f.title,
            _controls_json(f.controls),
            f.remediation,
            f.title_fr,
            f.remediation_fr,
        )
        found = self.known.get(key)
        if found is None:
            found = self.new.get(key)
            if found is None:
                found = self.new[key] = self.store._text_id(key)
        return found

    def keep(self) -> None:
        self.known.update(self.new)


def _finding(row: Sequence[Any], texts: Mapping[int, RuleTexts]) -> Finding:
    """A finding from a row of _FINDING_COLUMNS (tuples: this is the hot path).

    Built like :meth:`Finding.evolve`, without the frozen dataclass's per-field
    ``object.__setattr__``: every value here comes typed from our own columns. The
    rule's texts are shared objects, one per distinct rule version.
    """
    rule = texts[row[3]]
    finding = object.__new__(Finding)
    finding.__dict__.update(
        rule_id=row[2],
        policy=rule.policy,
        title=rule.title,
        resource_type=row[4],
        resource_key=row[5],
        target=row[6],
        system=row[7],
        status=_STATUS[row[8]],
        severity=_SEVERITY[row[9]],
        message=row[10],
        evidence=_loads(row[11]) if row[11] else None,
        controls=rule.controls,
        remediation=rule.remediation,
        reason=_REASON[row[12]] if row[12] else None,
        lifecycle=_LIFECYCLE[row[13]] if row[13] else None,
        first_seen=row[14],
        scan_id=row[0],
        title_fr=rule.title_fr,
        remediation_fr=rule.remediation_fr,
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
