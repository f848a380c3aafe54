"""The findings store: one SQLite file, written by one process, read by anyone.

:class:`Store` is the façade every other module uses; the parts behind it are

- :mod:`~audit.store.file`: the file and its schema checked before any use;
- :mod:`~audit.store.schema`: the migrations, keyed by ``PRAGMA user_version``;
- :mod:`~audit.store.write`: scans and each target's results, lifecycle stamped;
- :mod:`~audit.store.read`: scans, findings, diffs, resources, reports;
- :mod:`~audit.store.rows`: the one row codec they share;
- :mod:`~audit.store.acceptances` and :mod:`~audit.store.trail`: accepted risks and
  the append-only audit trail;
- :mod:`~audit.store.prune`: retention of old scans.

The file is in WAL mode with a busy timeout. Findings are written as each target
completes, one short transaction per target, so a scan killed halfway keeps everything
it finished and nothing is half-written; the scan row goes ``running`` → ``complete`` /
``interrupted`` / ``failed``, and a scan whose process died is shown ``interrupted``
by the next command that opens the store. Secrets never enter the store: checks do not
put them in facts, and nothing else here receives them.
"""

from __future__ import annotations

import dataclasses
import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from audit.errors import AcceptanceError, StoreError
from audit.models import Acceptance, Finding, Resource, ScanSummary, SystemInfo, fingerprint
from audit.reporting import ReportData
from audit.store import file, schema, trail
from audit.store.acceptances import MAX_ACCEPTANCE_DAYS, Acceptances, check_rules
from audit.store.file import sqlite_errors
from audit.store.prune import PruneResult, prune_old_scans
from audit.store.read import Reader, ScanRecord, scan_process_alive
from audit.store.rows import TextCache
from audit.store.schema import MIGRATIONS, SCHEMA_VERSION
from audit.store.trail import MERGED as MERGED_EVENT
from audit.store.write import Observed, Writer

__all__ = [
    "MAX_ACCEPTANCE_DAYS",
    "MERGED_EVENT",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Observed",
    "PruneResult",
    "ScanRecord",
    "Store",
    "default_db_path",
    "fingerprint_for",
    "now_iso",
    "open_for_reading",
    "scan_process_alive",
    "sqlite_errors",
]


def now_iso() -> str:
    """Current UTC time, ISO 8601 with seconds (what every timestamp column holds)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def default_db_path() -> str:
    """``$REMPART_DB`` or ``./rempart.db``."""
    return os.environ.get("REMPART_DB") or "rempart.db"


@file.guard_public_methods
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
        try:
            self.version = schema.version_of(self.conn, self.path)
        except StoreError:
            self.conn.close()
            raise
        texts = self._texts = TextCache(self.conn)
        self._batched = False
        self._acceptances = Acceptances(self.conn, self.transaction)
        self._reader = Reader(
            self.conn, self.path, readonly, texts, self._acceptances.live_by_fingerprint
        )
        self._writer = Writer(self.conn, self.transaction, texts)
        if not readonly and self.version < schema.SCHEMA_VERSION:
            self.version = schema.migrate(self.conn, self.version, self.transaction)
            file.expected_schema(schema.MIGRATIONS)  # cached: the next open checks at once
        if recover and not readonly:
            self.recover_interrupted()

    # --- opening and transactions ------------------------------------------------------

    @property
    def is_current(self) -> bool:
        """Whether the store is at the schema this code reads and writes."""
        return self.version == SCHEMA_VERSION

    def recover_interrupted(self) -> None:
        """Mark as interrupted the running scans whose process is gone."""
        found = self.conn.execute(
            "SELECT id, pid, host FROM scans WHERE status = 'running'"
        ).fetchall()
        for scan_id, pid, host in found:
            if not scan_process_alive(host, pid):
                self._writer.interrupt(scan_id, now_iso())

    def close(self) -> None:
        """Close the connection (checkpointing the WAL when possible)."""
        self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One short IMMEDIATE transaction: the writer lock is taken up front, so two
        writers wait for each other (busy timeout) instead of failing halfway.

        Inside :meth:`batch`, a savepoint: the write is whole or undone on its own, and
        the batch's transaction makes it durable with the others.
        """
        if self._batched:
            self.conn.execute("SAVEPOINT one")
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK TO one")
                self.conn.execute("RELEASE one")
                raise
            self.conn.execute("RELEASE one")
            return
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

    @contextmanager
    def batch(self) -> Iterator[None]:
        """The writes of several targets that finished together, in one transaction.

        Why: a commit costs more than a small target's rows (the WAL frames of every page
        touched, the lock taken and given back); a thousand DNS domains finishing within
        a second are a few commits instead of a thousand. Each target's write stays
        whole on its own (a savepoint); a scan killed in the middle of a batch loses that
        batch's targets (a fraction of a second of work) and leaves the store whole.
        """
        if self._batched:
            yield
            return
        try:
            with self.transaction():
                self._batched = True
                try:
                    yield
                finally:
                    self._batched = False
        except BaseException:
            # rule texts written in the batch are gone: their ids must not be reused
            self._texts.by_id.clear()
            self._writer.text_ids.clear()
            raise

    # --- writing a scan ----------------------------------------------------------------

    def begin_scan(
        self,
        *,
        policies: Sequence[str],
        inventory: str | None,
        scope_declared: bool,
        targets: Sequence[str],
        systems: Sequence[SystemInfo],
        tool_version: str,
        command: str | None = None,
    ) -> int:
        """Create the scan row (status ``running``) and return its id."""
        return self._writer.begin_scan(
            now_iso(), policies, inventory, scope_declared, targets, systems, tool_version,
            command,
        )  # fmt: skip

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
        return self._writer.record(scan_id, resources, findings, observed, now_iso())

    def record_many(
        self,
        scan_id: int,
        records: Sequence[tuple[Sequence[Resource], Sequence[Finding], Observed | None]],
    ) -> list[list[Finding]]:
        """Write several targets' records (as :meth:`record` each), the statements they
        have in common run once; each one's stamped findings, in order. A bad record
        fails alone: the others are written whole, as by :meth:`record` one at a time."""
        return self._writer.record_many(scan_id, records, now_iso())

    def finish_scan(self, scan_id: int, status: str) -> ScanSummary:
        """Close the scan row with its final status and counts."""
        self._writer.finish_scan(scan_id, status, now_iso())
        return self.scan(scan_id)

    def set_scores(self, scan_id: int, scores: Mapping[str, Any]) -> None:
        """Store the score snapshot of a scan (trends read it back cheaply); the scan's
        findings, just read for it, stay kept for its reports."""
        with self._reader.findings_kept():
            self._writer.set_scores(scan_id, scores)

    def set_scan_times(
        self, scan_id: int, *, started: str | None = None, finished: str | None = None
    ) -> None:
        """Set when a scan started or finished (a merged scan ran when its shards did)."""
        self._writer.set_times(scan_id, started, finished)

    def prune(self, keep: int, *, vacuum: bool = True) -> PruneResult:
        """Drop the scans older than the ``keep`` latest (see :mod:`audit.store.prune`);
        acceptances, the audit trail and the history of every fingerprint stay."""
        if keep < 1:
            raise ValueError("keep at least one scan")
        return prune_old_scans(self.conn, self.transaction, self.path, keep, vacuum)

    # --- reading -----------------------------------------------------------------------

    def scan(self, scan_id: int) -> ScanSummary:
        """One scan row; OptionError when it does not exist."""
        return self._reader.scan(scan_id)

    def scans(self, statuses: Iterable[str] | None = None) -> list[ScanSummary]:
        """Every scan, oldest first (optionally only with the given statuses)."""
        return self._reader.scans(statuses)

    def scan_record(self, scan_id: int) -> ScanRecord:
        """A scan with the columns that identify its run (targets, host, pid, …)."""
        return self._reader.record_of(scan_id)

    def latest_scan_id(self, complete_only: bool = False) -> int:
        """The newest scan id (complete ones only when asked); OptionError when empty."""
        return self._reader.latest_scan_id(complete_only)

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
        filters = (
            ("status", status),
            ("severity", severity),
            ("system", system),
            ("rule_id", rule),
            ("target", target),
            ("status", tuple(statuses) if statuses is not None else None),
        )
        return self._reader.findings(scan_id, filters)

    def stored_findings(self, scan_id: int) -> Iterator[Finding]:
        """A scan's findings as stored, without acceptances (what ``db merge`` copies)."""
        return self._reader.stored_findings(scan_id)

    def compare(self, old: int, new: int) -> dict[str, list[Finding]]:
        """Failing findings that are new, resolved, still open or no longer evaluated."""
        return self._reader.compare(old, new)

    def resources(self, scan_id: int) -> list[Resource]:
        """Resources observed by a scan."""
        return self._reader.resources(scan_id)

    def systems(self, scan_id: int) -> tuple[SystemInfo, ...]:
        """The systems of the inventory the scan ran with."""
        return self._reader.systems(scan_id)

    def scores(self, scan_id: int) -> dict[str, Any] | None:
        """The stored score snapshot of a scan, if any."""
        return self._reader.scores(scan_id)

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

    # --- acceptances and the trail -----------------------------------------------------

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
        twins: Iterable[str] = (),
    ) -> Acceptance:
        """Record a risk acceptance; AcceptanceError when the rules refuse it (expiry
        mandatory, not past, at most three years out; a named owner and a reason).

        ``twins`` are the rules declared the same requirement (``same_as``): the risk is
        one, so each gets its own acceptance on the same resource, with the same owner,
        reason and expiry, and its trail event names the rule it was accepted as a twin of.
        """
        check_rules(owner, reason, until, today)
        at = now_iso()
        draft = Acceptance(
            id=0, fingerprint=fingerprint_, rule_id=rule_id, resource_key=resource_key,
            owner=owner, reason=reason, until=until.isoformat(), created_at=at,
            decided_by=decided_by, compensating=compensating,
        )  # fmt: skip
        accepted = self.acceptance(self._acceptances.add(draft, at))
        for twin in sorted(set(twins) - {rule_id}):
            twin_fp = fingerprint_for(twin, resource_key)
            copy = dataclasses.replace(draft, fingerprint=twin_fp, rule_id=twin)
            self._acceptances.add(copy, at, twin_of=rule_id)
        return accepted

    def twin_acceptances(self, acceptance: Acceptance) -> list[Acceptance]:
        """The acceptances recorded with ``acceptance`` for its twins (same resource,
        owner, reason, expiry and time), so a caller can say what else it covers."""
        return [
            a
            for a in self.acceptances(include_revoked=False)
            if a.id != acceptance.id
            and (a.resource_key, a.owner, a.reason, a.until, a.created_at)
            == (acceptance.resource_key, acceptance.owner, acceptance.reason,
                acceptance.until, acceptance.created_at)
        ]  # fmt: skip

    def unaccept(self, acceptance_id: int) -> Acceptance:
        """Revoke an acceptance (it stays in the record, marked revoked)."""
        self._acceptances.revoke(acceptance_id, now_iso())
        return self.acceptance(acceptance_id)

    def acceptance(self, acceptance_id: int) -> Acceptance:
        """One acceptance by id; AcceptanceError when there is none."""
        return self._acceptances.get(acceptance_id)

    def acceptances(self, *, include_revoked: bool = True) -> list[Acceptance]:
        """Every acceptance, newest first."""
        return self._acceptances.all(include_revoked=include_revoked)

    def find_fingerprint(self, token: str) -> tuple[str, str, str]:
        """Resolve a (possibly shortened) fingerprint to (fingerprint, rule, resource)."""
        try:
            found = self._reader.find_fingerprint(token)
        except ValueError:
            raise AcceptanceError(
                f"fingerprint prefix {token!r} is ambiguous; give more of it", field="fingerprint"
            ) from None
        if found is None:
            raise AcceptanceError(
                f"no finding with fingerprint {token!r} in {self.path}", field="fingerprint"
            )
        return found

    def events(self, fingerprint_: str | None = None) -> list[dict[str, Any]]:
        """The audit trail, oldest first."""
        return trail.events(self.conn, fingerprint_)

    def add_event(
        self, scan_id: int | None, fingerprint_: str, event: str, detail: dict[str, Any]
    ) -> None:
        """Append one event to the trail, in its own transaction."""
        with self.transaction():
            trail.append(self.conn, now_iso(), fingerprint_, event, detail, scan_id)

    def merges(self) -> list[tuple[int, dict[str, Any]]]:
        """Each ``merged`` event of the trail: the scan a merge made, and its detail."""
        return list(trail.merges(self.conn))


def _connect(path: str, readonly: bool) -> sqlite3.Connection:
    """A checked connection (see :mod:`audit.store.file`), tuned for the store's work."""
    conn = file.connect(path, MIGRATIONS, readonly=readonly)
    with file.sqlite_errors(path, "open"):
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


def fingerprint_for(rule_id: str, resource_key: str) -> str:
    """Public helper: the fingerprint ``accept RULE RESOURCE`` refers to."""
    return fingerprint(rule_id, resource_key)
