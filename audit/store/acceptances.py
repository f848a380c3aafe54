"""Risk acceptances: a failure accepted by a named owner, for a reason, until a date.

The rules are the store's, not the command line's: an expiry is mandatory, never in the
past and at most three years out (a risk must be reviewed at least that often), and an
acceptance names its owner and its reason. Breaking one raises
:class:`~audit.errors.AcceptanceError`, which says which field was wrong and leaves the
wording of options to the caller. Acceptances are never deleted: revoking one marks it,
and both leave an event in the trail.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

from audit.errors import AcceptanceError
from audit.models import Acceptance, Finding, Lifecycle, Status
from audit.store import rows, trail
from audit.store.schema import Transaction

MAX_ACCEPTANCE_DAYS = 3 * 366


def check_rules(owner: str, reason: str, until: date, today: date | None = None) -> None:
    """Refuse an acceptance the rules do not allow (see the module doc)."""
    today = today or datetime.now(UTC).date()
    if until < today:
        raise AcceptanceError(f"expiry {until.isoformat()} is in the past", field="until")
    if until > today + timedelta(days=MAX_ACCEPTANCE_DAYS):
        raise AcceptanceError(
            f"expiry {until.isoformat()} is more than 3 years away; "
            "a risk acceptance must be reviewed at least every 3 years",
            field="until",
        )
    if not owner.strip() or not reason.strip():
        raise AcceptanceError("an acceptance needs a named owner and a reason", field="owner")


class Acceptances:
    """The ``acceptances`` table, and the trail entries that go with it."""

    def __init__(self, conn: sqlite3.Connection, transaction: Transaction) -> None:
        self.conn = conn
        self.transaction = transaction

    def add(self, acceptance: Acceptance, at: str, twin_of: str = "") -> int:
        """Record a checked acceptance (its id and revocation are ignored); its id.

        ``twin_of`` names the rule whose acceptance this one follows (``same_as``): the
        trail then says the risk was accepted as that rule's twin, not decided apart.
        """
        a = acceptance
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO acceptances (fingerprint, rule_id, resource_key, owner, reason, "
                "compensating, decided_by, until, created_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (a.fingerprint, a.rule_id, a.resource_key, a.owner, a.reason,
                 a.compensating, a.decided_by, a.until, at),
            )  # fmt: skip
            detail = {"owner": a.owner, "until": a.until, "reason": a.reason}
            if twin_of:
                detail["twin_of"] = twin_of
            trail.append(self.conn, at, a.fingerprint, "accepted", detail)
        return int(cursor.lastrowid or 0)

    def revoke(self, acceptance_id: int, at: str) -> None:
        """Mark an acceptance revoked (it stays in the record)."""
        current = self.get(acceptance_id)
        with self.transaction():
            self.conn.execute(
                "UPDATE acceptances SET revoked_at = ? WHERE id = ?", (at, acceptance_id)
            )
            trail.append(self.conn, at, current.fingerprint, "unaccepted", {"id": acceptance_id})

    def get(self, acceptance_id: int) -> Acceptance:
        """One acceptance by id."""
        row = self.conn.execute(
            "SELECT * FROM acceptances WHERE id = ?", (acceptance_id,)
        ).fetchone()
        if row is None:
            raise AcceptanceError(f"no acceptance with id {acceptance_id}", field="id")
        return rows.acceptance(row)

    def all(self, *, include_revoked: bool = True) -> list[Acceptance]:
        """Every acceptance, newest first."""
        found = self.conn.execute("SELECT * FROM acceptances ORDER BY id DESC").fetchall()
        items = [rows.acceptance(r) for r in found]
        return [a for a in items if include_revoked or a.revoked_at is None]

    def live_by_fingerprint(self) -> dict[str, tuple[Acceptance, ...]]:
        """The acceptances not revoked, by fingerprint (what reads overlay)."""
        grouped: dict[str, list[Acceptance]] = {}
        for acceptance in self.all(include_revoked=False):
            grouped.setdefault(acceptance.fingerprint, []).append(acceptance)
        return {fp: tuple(items) for fp, items in grouped.items()}


def overlay(finding: Finding, acceptances: Sequence[Acceptance], on: str) -> Finding:
    """Apply acceptances: a live one makes a failure ``accepted``, a lapsed one ``expired``."""
    if finding.status is not Status.FAIL or not acceptances:
        return finding
    if any(a.is_live(on) for a in acceptances):
        return finding.evolve(lifecycle=Lifecycle.ACCEPTED)
    return finding.evolve(lifecycle=Lifecycle.EXPIRED)
