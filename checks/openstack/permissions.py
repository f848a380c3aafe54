"""The read-only role an audit identity needs: exactly the calls the collectors declare."""

from __future__ import annotations

from typing import Any


def calls() -> list[dict[str, str]]:
    """Every declared call (plus the token request), sorted by service and path."""
    from checks.openstack.collectors import ALL

    found = {(c.service, c.method, c.path, c.policy) for collector in ALL for c in collector.calls}
    found.add(("identity", "POST", "/v3/auth/tokens", "(authentication)"))
    return [{"service": s, "method": m, "path": p, "policy": r} for s, m, p, r in sorted(found)]


def document() -> dict[str, Any]:
    """The role to grant and the calls it must allow (JSON-able)."""
    return {
        "role": "reader",
        "scope": "project",
        "calls": calls(),
    }
