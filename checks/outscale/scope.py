"""Admit an ``outscale://`` target before anything is sent: the family's scope hook.

The inventory's ``scope: {outscale: {accounts: [...]}}`` lists the account ids that may be
read. When the scan is planned, a declared scope that lists none is refused, and the
OAPI endpoint of every region the target reads (``https://api.<region>.outscale.com``, or
the profile's ``endpoints.api``) goes to the scope guard like a network target: the
first request is signed with the access key. The account id is known only from
``ReadAccounts``; the collector refuses an undeclared one before any other call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit.errors import ScopeError
from audit.models import Target
from audit.plugins import Reach, Scope
from checks.outscale.config import base_url, load


def admit(target: Target, scope: Scope, options: Mapping[str, Any]) -> tuple[Reach, ...]:
    """The :data:`audit.plugins.AdmitFn` of the outscale family."""
    if scope.is_declared and not scope.block("outscale").get("accounts"):
        raise ScopeError(
            f"{target.uri}: the declared scope lists no Outscale account "
            "(scope.outscale.accounts), so no account may be read"
        )
    try:
        spec = load(target)
    except ValueError as exc:
        raise ScopeError(f"{target.uri}: {exc}; nothing can be admitted") from None
    urls = dict.fromkeys(base_url(spec.api_url(r)) for r in spec.regions(target))
    return tuple(Reach(url, target.from_command_line) for url in urls)


def validate_scope(block: Any) -> dict[str, tuple[str, ...]]:
    """``{accounts: [12-digit Outscale account ids]}`` (kept as text: leading zeros)."""
    if not isinstance(block, Mapping) or set(block) - {"accounts"}:
        raise ValueError("expected {accounts: [12-digit Outscale account ids]}")
    values = block.get("accounts") or []
    if not isinstance(values, list):
        raise ValueError("accounts: expected a list of 12-digit account ids")
    for value in values:
        if not (isinstance(value, str | int) and str(value).isdigit() and len(str(value)) == 12):
            raise ValueError(f"accounts: {value!r} is not a 12-digit Outscale account id")
    return {"accounts": tuple(str(v) for v in values)}
