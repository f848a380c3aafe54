"""The write path: scans opened and closed, each target's results in one transaction.

Lifecycle derives from history: ``new`` / ``open`` / ``reopened`` / ``resolved`` are
stamped when a finding is written, from the earlier state of its fingerprint; a scan's
findings are folded into ``finding_state`` once, when the scan closes.

History costs what changes (schema 3): a finding whose row would equal the latest row
of its fingerprint (same status, evidence, message, lifecycle, texts…) is not written
again; the scan refers to that row in ``scan_findings``. Resources likewise, by key.
Both need each fingerprint's earlier state: its status (if it ever failed), its latest
row and that row's digest, read from ``finding_state`` once per scan (see
:meth:`Writer.history`).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any, NamedTuple

from audit.heap import collector_paused
from audit.jsontext import dumps as _dumps
from audit.models import Finding, Lifecycle, Resource, Status, SystemInfo
from audit.store import read, rows, trail
from audit.store.schema import Transaction

STATE_CACHE = 250_000
"""Fingerprints whose states a writer keeps in memory (about 250 bytes each), read in one
pass per scan; past that, it looks them up a chunk at a time (slower: 2.5 µs each)."""
CHUNK = 500
_EVENTFUL = frozenset({Lifecycle.NEW, Lifecycle.RESOLVED, Lifecycle.REOPENED})


@dataclass(frozen=True)
class Observed:
    """A target observed whole in this scan, and the rules the scan evaluates."""

    target: str
    rule_ids: frozenset[str]


class Prior(NamedTuple):
    """What the store knew about a fingerprint that failed before this scan (only those
    have a history that changes a lifecycle)."""

    last_status: str
    first_seen: str | None


Record = tuple[Sequence[Resource], Sequence[Finding], "Observed | None"]
"""One target's record: its resources, its findings, and whether it was observed whole."""

Past = tuple[Prior | None, int | None, int | None]
"""A fingerprint's prior (if it ever failed), its latest row and that row's digest (a
plain tuple: 100,000 of them are built per scan)."""


class Writer:
    """Everything that writes scans, resources and findings (one per store)."""

    def __init__(
        self, conn: sqlite3.Connection, transaction: Transaction, texts: rows.TextCache
    ) -> None:
        self.conn = conn
        self.transaction = transaction
        self.texts = texts
        self.text_ids: dict[tuple[str, ...], int] = {}
        self.states: dict[str, Past] | None = None
        self.states_mark: tuple[Any, ...] = ()
        # scans this process writes: the hashes of their fingerprints so far, and those
        # in which one repeated
        self.recorded: dict[int, set[int]] = {}
        self.repeated: set[int] = set()

    # --- scans -------------------------------------------------------------------------

    def begin_scan(
        self,
        at: str,
        policies: Sequence[str],
        inventory: str | None,
        scope_declared: bool,
        targets: Sequence[str],
        systems: Sequence[SystemInfo],
        tool_version: str,
        command: str | None = None,
    ) -> int:
        """Create the scan row (status ``running``) and return its id."""
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO scans (started_at, status, policies, inventory, scope_declared, "
                "targets, systems, pid, host, tool_version, command) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (at, "running", json.dumps(list(policies)), inventory, int(scope_declared),
                 json.dumps(list(targets)), json.dumps([rows.system_json(s) for s in systems]),
                 os.getpid(), socket.gethostname(), tool_version, command),
            )  # fmt: skip
        return int(cursor.lastrowid or 0)

    def finish_scan(self, scan_id: int, status: str, at: str) -> None:
        """Close the scan row with its final status and counts."""
        with self.transaction():
            self.conn.execute(
                "UPDATE scans SET status = ?, finished_at = ? WHERE id = ?", (status, at, scan_id)
            )
            self.close_findings(scan_id)
            self.set_counts(scan_id)

    def interrupt(self, scan_id: int, at: str) -> None:
        """Mark a running scan interrupted (its process is gone), findings folded."""
        with self.transaction():
            closed = self.conn.execute(
                "UPDATE scans SET status = 'interrupted', finished_at = "
                "COALESCE(finished_at, ?) WHERE id = ? AND status = 'running'",
                (at, scan_id),
            ).rowcount
            if closed:
                self.close_findings(scan_id)
            self.set_counts(scan_id)

    def set_scores(self, scan_id: int, scores: Mapping[str, Any]) -> None:
        """Store the score snapshot of a scan (trends read it back cheaply)."""
        with self.transaction():
            self.conn.execute(
                "UPDATE scans SET scores = ? WHERE id = ?",
                (json.dumps(scores, default=str), scan_id),
            )

    def set_times(self, scan_id: int, started: str | None, finished: str | None) -> None:
        """Set when a scan started or finished (a merged scan ran when its shards did)."""
        with self.transaction():
            self.conn.execute(
                "UPDATE scans SET started_at = COALESCE(?, started_at), "
                "finished_at = COALESCE(?, finished_at) WHERE id = ?",
                (started, finished, scan_id),
            )

    def set_counts(self, scan_id: int) -> None:
        self.conn.execute(
            "UPDATE scans SET counts = ? WHERE id = ?",
            (json.dumps(read.counts(self.conn, scan_id)), scan_id),
        )

    # --- one target's results ----------------------------------------------------------

    def record(
        self,
        scan_id: int,
        resources: Sequence[Resource],
        findings: Sequence[Finding],
        observed: Observed | None,
        at: str,
    ) -> list[Finding]:
        """Write resources and findings in one transaction; the stamped findings.

        With ``observed``, failures on resources gone from that target are resolved
        (see :func:`audit.store.read.vanished`).
        """
        return self._record_together(scan_id, [(resources, findings, observed)], at)[0]

    def record_many(self, scan_id: int, items: Sequence[Record], at: str) -> list[list[Finding]]:
        """Write several targets' records; each one's stamped findings, in order.

        Why: the statements of a record (history mark, row ids, latest resources, five
        inserts) cost about as much as its rows; a thousand small targets are a thousand
        times those statements. Written together, they are run once for the lot. If the
        lot fails, each record is written again on its own (a savepoint each), so a bad
        record fails alone: the others are written whole, then its error is raised.
        """
        if len(items) > 1:
            with suppress(Exception):  # else one at a time below, where a bad one raises
                return self._record_together(scan_id, items, at)
        written, failure = [], None
        for item in items:
            try:
                written.append(self._record_together(scan_id, [item], at)[0])
            except Exception as exc:  # the others are still written, then it is raised
                failure = failure or exc
        if failure is not None:
            raise failure
        return written

    def _record_together(
        self, scan_id: int, items: Sequence[Record], at: str
    ) -> list[list[Finding]]:
        texts = _TextIds(self)
        with self.transaction(), collector_paused():
            current = self.texts.current()
            lots = [self._with_vanished(scan_id, item, current) for item in items]
            prints = [f.fingerprint for _, findings in lots for f in findings]
            past = self.history(scan_id, prints)
            stamped = [
                [stamp(f, _prior(past.get(f.fingerprint)), at, scan_id) for f in findings]
                for _, findings in lots
            ]
            flat = [f for lot in stamped for f in lot]
            again = self.repeats(scan_id, prints)
            self.insert_resources(scan_id, [r for resources, _ in lots for r in resources])
            self.insert_findings(scan_id, flat, prints, past, again, texts)
            trail.append_many(self.conn, _events(flat, scan_id, at))
        texts.keep()
        return stamped

    def _with_vanished(
        self, scan_id: int, item: Record, texts: Mapping[int, rows.RuleTexts]
    ) -> tuple[Sequence[Resource], list[Finding]]:
        """A record's resources, and its findings with the failures it resolved by their
        resource being gone (only for a target observed whole)."""
        resources, findings, observed = item
        if observed is None:
            return resources, list(findings)
        gone = read.vanished(
            self.conn, scan_id, observed.target, observed.rule_ids,
            {r.key for r in resources} | {f.resource_key for f in findings}, texts,
        )  # fmt: skip
        return resources, [*findings, *gone]

    def insert_findings(
        self,
        scan_id: int,
        stamped: Sequence[Finding],
        prints: Sequence[str],
        past: Mapping[str, Past],
        again: set[str],
        texts: _TextIds,
    ) -> None:
        """Write the findings that changed, and the scan's references to every one.

        A fingerprint repeated within the scan always gets a new row, so its last
        record is its highest row (what closing the scan keeps).
        """
        next_row = self.next_rowid("findings")
        fresh, members = [], []
        for f, fp in zip(stamped, prints, strict=True):
            row = rows.finding_row(scan_id, f, texts.id_of(f))
            digest = rows.digest(row[1:])
            known = past.get(fp)
            if known is not None and known[2] == digest and fp not in again:
                members.append((scan_id, known[1]))
                continue
            fresh.append((next_row, *row, digest))
            members.append((scan_id, next_row))
            next_row += 1
        self.conn.executemany(
            f"INSERT INTO findings (rowid, {rows.FINDING_COLUMNS}, digest) "  # noqa: S608
            f"VALUES ({','.join('?' * (rows.FINDING_WIDTH + 2))})",
            fresh,
        )
        self.conn.executemany("INSERT OR IGNORE INTO scan_findings VALUES (?,?)", members)

    def insert_resources(self, scan_id: int, resources: Sequence[Resource]) -> None:
        """Write the resources whose facts changed, and the scan's references to all."""
        if not resources:
            return
        latest = self.latest_resources([r.key for r in resources])
        next_row = self.next_rowid("resources")
        fresh, members = [], []
        for r in resources:
            content = rows.resource_row(r)
            known = latest.get(r.key)
            if known is None or known[1] != content:
                known = latest[r.key] = (next_row, content)
                fresh.append((next_row, scan_id, *content))
                next_row += 1
            members.append((scan_id, known[0]))
        self.conn.executemany(
            f"INSERT INTO resources (rowid, first_scan, {rows.RESOURCE_COLUMNS}) "  # noqa: S608
            "VALUES (?,?,?,?,?,?,?,?)",
            fresh,
        )
        self.conn.executemany("INSERT OR IGNORE INTO scan_resources VALUES (?,?)", members)

    def latest_resources(self, keys: Sequence[str]) -> dict[str, tuple[int, tuple[Any, ...]]]:
        """The latest row of each key, with its RESOURCE_FIELDS (through ``resources_key``)."""
        latest: dict[str, tuple[int, tuple[Any, ...]]] = {}
        cursor = self.conn.cursor()
        cursor.row_factory = None
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            found = cursor.execute(
                f"SELECT rowid, {rows.RESOURCE_COLUMNS} FROM resources "  # noqa: S608
                "WHERE rowid IN (SELECT MAX(rowid) FROM resources "
                f"WHERE key IN ({','.join('?' * len(chunk))}) GROUP BY key)",
                chunk,
            )
            for rowid, *content in found:
                latest[content[0]] = (rowid, tuple(content))
        return latest

    def next_rowid(self, table: str) -> int:
        """The rowid the next row of ``table`` gets (the writer lock is held)."""
        found = self.conn.execute(f"SELECT MAX(rowid) FROM {table}").fetchone()[0]  # noqa: S608
        return int(found or 0) + 1

    def text_id(self, key: tuple[str, ...]) -> int:
        """The id of a rule's texts, inserted when this version of the rule is new."""
        self.conn.execute(
            "INSERT OR IGNORE INTO rule_texts (policy, title, controls, remediation, "
            "translations) VALUES (?,?,?,?,?)",
            key,
        )
        row = self.conn.execute(
            "SELECT id FROM rule_texts WHERE policy = ? AND title = ? AND controls = ? "
            "AND remediation = ? AND translations = ?",
            key,
        ).fetchone()
        return int(row[0])

    # --- history -----------------------------------------------------------------------

    def history(self, scan_id: int, prints: Sequence[str]) -> Mapping[str, Past]:
        """The earlier state of each fingerprint: its prior, its latest row and digest.

        The prior (what a lifecycle derives from) counts only for fingerprints that
        ever failed, in scans before this one: a fingerprint that never failed has no
        history that matters (its failure would be new, its pass or error resolves
        nothing). States change only when a scan closes, so they are read once per
        scan and again whenever another scan has closed: a dictionary lookup per
        finding instead of a B-tree probe. Past STATE_CACHE of them, they are looked
        up a chunk at a time.
        """
        known = self.cached_states(scan_id)
        if known is not None:
            return known
        past: dict[str, Past] = {}
        for start in range(0, len(prints), CHUNK):
            chunk = prints[start : start + CHUNK]
            where = f"WHERE fingerprint IN ({','.join('?' * len(chunk))})"
            past.update(self.read_states(scan_id, where, chunk))
        return past

    def cached_states(self, scan_id: int) -> dict[str, Past] | None:
        """Every fingerprint's state, read in one pass (None past STATE_CACHE)."""
        mark = (
            scan_id,
            *self.conn.execute(
                "SELECT COUNT(*), TOTAL(id) FROM scans WHERE status != 'running'"
            ).fetchone(),
        )
        if mark != self.states_mark:
            count = self.conn.execute("SELECT COUNT(*) FROM finding_state").fetchone()[0]
            self.states = self.read_states(scan_id, "", ()) if count <= STATE_CACHE else None
            self.states_mark = mark
        return self.states

    def read_states(self, scan_id: int, where: str, args: Sequence[str]) -> dict[str, Past]:
        cursor = self.conn.cursor()
        cursor.row_factory = None
        found = cursor.execute(
            "SELECT fingerprint, last_status, first_seen, ever_failed, last_scan_id, "  # noqa: S608
            f"last_row, last_digest FROM finding_state {where}",
            args,
        )
        with collector_paused():
            return {
                fp: (Prior(status, seen) if failed and last < scan_id else None, row, digest)
                for fp, status, seen, failed, last, row, digest in found
            }

    def close_findings(self, scan_id: int) -> None:
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
        written_here = self.recorded.pop(scan_id, None) is not None
        if scan_id in self.repeated or not written_here:
            self.drop_duplicates(scan_id)
        self.repeated.discard(scan_id)
        self.conn.execute(
            "INSERT INTO finding_state (fingerprint, last_scan_id, last_status, ever_failed, "  # noqa: S608
            "first_seen, target, last_row, last_digest) SELECT f.fingerprint, m.scan_id, "
            "f.status, f.status = 'fail', f.first_seen, f.target, m.row, f.digest "
            f"FROM {rows.FINDINGS_JOIN} "
            "WHERE m.scan_id = ? ORDER BY f.fingerprint "
            "ON CONFLICT(fingerprint) DO UPDATE SET last_scan_id = excluded.last_scan_id, "
            "last_status = excluded.last_status, "
            "ever_failed = MAX(finding_state.ever_failed, excluded.ever_failed), "
            "first_seen = excluded.first_seen, target = excluded.target, "
            "last_row = excluded.last_row, last_digest = excluded.last_digest "
            "WHERE excluded.last_scan_id >= finding_state.last_scan_id",
            (scan_id,),
        )

    def drop_duplicates(self, scan_id: int) -> None:
        """Keep the last record of each fingerprint of a scan, its highest row (a sort
        of the whole scan: run only when this process saw a repeat, or did not write
        the scan itself). Rows this scan wrote and no longer refers to go too."""
        stale = self.conn.execute(
            "SELECT row FROM (SELECT m.row, ROW_NUMBER() OVER (PARTITION BY f.fingerprint "  # noqa: S608
            f"ORDER BY m.row DESC) AS n FROM {rows.FINDINGS_JOIN} WHERE m.scan_id = ?) "
            "WHERE n > 1",
            (scan_id,),
        ).fetchall()
        pairs = [(scan_id, row) for (row,) in stale]
        self.conn.executemany("DELETE FROM scan_findings WHERE scan_id = ? AND row = ?", pairs)
        self.conn.executemany("DELETE FROM findings WHERE first_scan = ? AND rowid = ?", pairs)

    def repeats(self, scan_id: int, prints: Sequence[str]) -> set[str]:
        """The fingerprints this scan may have written before (remembered by hash,
        about 60 bytes a finding: a collision only costs a row and an exact check)."""
        seen = self.recorded.setdefault(scan_id, set())
        again = set()
        for fp in prints:
            key = hash(fp)
            if key in seen:
                again.add(fp)
            seen.add(key)
        if again:
            self.repeated.add(scan_id)
        return again


class _TextIds:
    """The ``rule_texts`` ids of one ``record`` call.

    Ids found or created inside the transaction reach the writer's cache only by
    :meth:`keep`, after the commit: a rolled-back row must not be referred to later.
    """

    def __init__(self, writer: Writer) -> None:
        self.writer = writer
        self.known = writer.text_ids
        self.new: dict[tuple[str, ...], int] = {}

    def id_of(self, f: Finding) -> int:
        key = rows.text_key(f)
        found = self.known.get(key)
        if found is None:
            found = self.new.get(key)
            if found is None:
                found = self.new[key] = self.writer.text_id(key)
        return found

    def keep(self) -> None:
        self.known.update(self.new)


def _prior(past: Past | None) -> Prior | None:
    return past[0] if past is not None else None


def stamp(finding: Finding, prior: Prior | None, at: str, scan_id: int) -> Finding:
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


def _events(stamped: Sequence[Finding], scan_id: int, at: str) -> list[tuple[Any, ...]]:
    """The trail rows of a record: one per finding new, resolved or reopened."""
    return [
        (at, scan_id, f.fingerprint, f.lifecycle.value,
         _dumps({"rule_id": f.rule_id, "resource_key": f.resource_key}))
        for f in stamped
        if f.lifecycle in _EVENTFUL
    ]  # fmt: skip
