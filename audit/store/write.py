"""The write path: scans opened and closed, each target's results in one transaction.

Lifecycle derives from history: ``new`` / ``open`` / ``reopened`` / ``resolved`` are
stamped when a finding is written, from the earlier state of its fingerprint; a scan's
findings are folded into ``finding_state`` once, when the scan closes. The writer keeps
two caches of the past, both safe to lose: the ``rule_texts`` ids it has seen, and the
earlier states of the fingerprints that ever failed (see :meth:`Writer.priors`).
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from audit.heap import collector_paused
from audit.jsontext import dumps as _dumps
from audit.models import Finding, Lifecycle, Resource, Status, SystemInfo
from audit.store import read, rows, trail
from audit.store.schema import Transaction

PRIOR_CACHE = 250_000
"""Fingerprints that ever failed whose states a writer keeps in memory (about 200 bytes
each); past that, it keeps their hashes and looks the states up."""
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


class Writer:
    """Everything that writes scans, resources and findings (one per store)."""

    def __init__(
        self, conn: sqlite3.Connection, transaction: Transaction, texts: rows.TextCache
    ) -> None:
        self.conn = conn
        self.transaction = transaction
        self.texts = texts
        self.text_ids: dict[tuple[str, ...], int] = {}
        self.failed: dict[str, Prior] | frozenset[int] = {}
        self.failed_mark: tuple[Any, ...] = ()
        # scans this process writes: the hashes of their fingerprints so far, or None
        # once one repeated
        self.recorded: dict[int, set[int] | None] = {}

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
    ) -> int:
        """Create the scan row (status ``running``) and return its id."""
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO scans (started_at, status, policies, inventory, scope_declared, "
                "targets, systems, pid, host, tool_version) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (at, "running", json.dumps(list(policies)), inventory, int(scope_declared),
                 json.dumps(list(targets)), json.dumps([rows.system_json(s) for s in systems]),
                 os.getpid(), socket.gethostname(), tool_version),
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
        texts = _TextIds(self)
        with self.transaction(), collector_paused():
            if observed is not None:
                gone = read.vanished(
                    self.conn, scan_id, observed.target, observed.rule_ids,
                    {r.key for r in resources} | {f.resource_key for f in findings},
                    self.texts.current(),
                )  # fmt: skip
                findings = [*findings, *gone]
            prints = [f.fingerprint for f in findings]
            priors = self.priors(scan_id, prints)
            stamped = [
                stamp(f, priors.get(fp), at, scan_id)
                for f, fp in zip(findings, prints, strict=True)
            ]
            self.note_recorded(scan_id, prints)
            self.insert_resources(scan_id, resources)
            self.conn.executemany(
                f"INSERT INTO findings ({rows.FINDING_COLUMNS}) "  # noqa: S608
                f"VALUES ({','.join('?' * rows.FINDING_WIDTH)})",
                [rows.finding_row(scan_id, f, texts.id_of(f)) for f in stamped],
            )
            trail.append_many(self.conn, _events(stamped, scan_id, at))
        texts.keep()
        return stamped

    def insert_resources(self, scan_id: int, resources: Sequence[Resource]) -> None:
        self.conn.executemany(
            "INSERT OR REPLACE INTO resources VALUES (?,?,?,?,?,?,?)",
            [(scan_id, *rows.resource_row(r)) for r in resources],
        )

    def text_id(self, key: tuple[str, ...]) -> int:
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

    # --- history -----------------------------------------------------------------------

    def priors(self, scan_id: int, prints: Sequence[str]) -> Mapping[str, Prior]:
        """The latest earlier state of each fingerprint that ever failed.

        A fingerprint that never failed has no history that matters (its failure would
        be new, its pass or error resolves nothing). The states of those that did are
        held in memory, read once per scan and again whenever another scan has closed
        (the state changes only then): a dictionary lookup per finding instead of a
        B-tree probe. Past PRIOR_CACHE of them, only their hashes are held and the
        states are looked up by key, a chunk at a time.
        """
        known = self.failing_states(scan_id)
        if isinstance(known, dict):
            return known
        wanted = [fp for fp in prints if hash(fp) in known]
        priors: dict[str, Prior] = {}
        cursor = self.conn.cursor()
        cursor.row_factory = None
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            marks = ",".join("?" * len(chunk))
            for fp, status, first_seen in cursor.execute(
                "SELECT fingerprint, last_status, first_seen FROM finding_state "  # noqa: S608
                f"WHERE fingerprint IN ({marks}) AND ever_failed = 1 AND last_scan_id < ?",
                (*chunk, scan_id),
            ):
                priors[fp] = Prior(status, first_seen)
        return priors

    def failing_states(self, scan_id: int) -> dict[str, Prior] | frozenset[int]:
        """The earlier states of every fingerprint that ever failed, or past PRIOR_CACHE
        of them, their hashes (a collision only costs one lookup more)."""
        mark = (
            scan_id,
            *self.conn.execute(
                "SELECT COUNT(*), TOTAL(id) FROM scans WHERE status != 'running'"
            ).fetchone(),
        )
        if mark == self.failed_mark:
            return self.failed
        where = "FROM finding_state WHERE ever_failed = 1 AND last_scan_id < ?"
        count = self.conn.execute(f"SELECT COUNT(*) {where}", (scan_id,)).fetchone()[0]
        cursor = self.conn.cursor()
        cursor.row_factory = None
        with collector_paused():
            if count <= PRIOR_CACHE:
                found = cursor.execute(
                    f"SELECT fingerprint, last_status, first_seen {where}", (scan_id,)
                )
                self.failed = {fp: Prior(status, seen) for fp, status, seen in found}
            else:
                found = cursor.execute(f"SELECT fingerprint {where}", (scan_id,))
                self.failed = frozenset(hash(row[0]) for row in found)
        self.failed_mark = mark
        return self.failed

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
        if self.recorded.pop(scan_id, None) is None:  # a repeat, or written elsewhere
            self.drop_duplicates(scan_id)
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

    def drop_duplicates(self, scan_id: int) -> None:
        """Keep the last record of each fingerprint of a scan (a sort of the whole scan:
        run only when this process saw a repeat, or did not write the scan itself)."""
        self.conn.execute(
            "DELETE FROM findings WHERE rowid IN (SELECT rowid FROM (SELECT rowid, "
            "ROW_NUMBER() OVER (PARTITION BY fingerprint ORDER BY rowid DESC) AS n "
            "FROM findings WHERE scan_id = ?) WHERE n > 1)",
            (scan_id,),
        )

    def note_recorded(self, scan_id: int, prints: Sequence[str]) -> None:
        """Remember which fingerprints this scan has written, to spot a repeat.

        Their hashes, not the strings: about 60 bytes a finding. A collision only costs
        an exact check when the scan closes.
        """
        seen = self.recorded.setdefault(scan_id, set())
        if seen is None:
            return
        before = len(seen)
        seen.update(map(hash, prints))
        if len(seen) - before != len(prints):
            self.recorded[scan_id] = None


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
