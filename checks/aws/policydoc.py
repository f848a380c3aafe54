"""Read IAM and bucket policy documents: who is allowed what, under which conditions.

Only what the benchmark needs: a statement that grants ``*`` on ``*``, a statement open to
any principal without a condition that narrows it, and a deny of plain-HTTP requests.
"""

from __future__ import annotations

import json
from typing import Any

# Condition keys that tie a public-looking statement to a known caller or network.
_NARROWING_KEYS = frozenset(
    k.lower()
    for k in (
        "aws:SourceIp",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceAccount",
        "aws:SourceArn",
        "aws:SourceOwner",
        "aws:PrincipalOrgID",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:userid",
    )
)


def load(document: Any) -> dict[str, Any]:
    """A policy document from a string or an already-decoded mapping ({} when unreadable)."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError:
            return {}
    return document if isinstance(document, dict) else {}


def statements(document: Any) -> list[dict[str, Any]]:
    """The statements of a document, always as a list of mappings."""
    found = load(document).get("Statement", [])
    found = [found] if isinstance(found, dict) else found
    return [s for s in found if isinstance(s, dict)]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def is_admin_statement(statement: dict[str, Any]) -> bool:
    """Allow ``*`` (or ``*:*``) on resource ``*``: full administrative rights."""
    if statement.get("Effect") != "Allow" or "NotAction" in statement:
        return False
    actions = {str(a) for a in _as_list(statement.get("Action", []))}
    resources = {str(r) for r in _as_list(statement.get("Resource", []))}
    return bool(actions & {"*", "*:*"}) and "*" in resources


def grants_full_admin(document: Any) -> bool:
    """True when any statement of the document grants ``*:*``."""
    return any(is_admin_statement(s) for s in statements(document))


def is_any_principal(statement: dict[str, Any]) -> bool:
    """Principal ``*`` or ``{"AWS": "*"}``."""
    principal = statement.get("Principal")
    if principal == "*":
        return True
    if isinstance(principal, dict):
        return "*" in {str(p) for p in _as_list(principal.get("AWS", []))}
    return False


def _is_narrowed(statement: dict[str, Any]) -> bool:
    conditions = statement.get("Condition") or {}
    keys = {
        str(k).lower() for block in conditions.values() if isinstance(block, dict) for k in block
    }
    return bool(keys & _NARROWING_KEYS)


def allows_public(document: Any) -> bool:
    """An Allow to any principal that no source or principal condition narrows."""
    return any(
        s.get("Effect") == "Allow" and is_any_principal(s) and not _is_narrowed(s)
        for s in statements(document)
    )


def denies_insecure_transport(document: Any) -> bool:
    """A Deny to everyone when ``aws:SecureTransport`` is false (CIS 2.1.1)."""
    for statement in statements(document):
        if statement.get("Effect") != "Deny" or not is_any_principal(statement):
            continue
        actions = {str(a) for a in _as_list(statement.get("Action", []))}
        if not actions & {"*", "s3:*"}:
            continue
        condition = statement.get("Condition") or {}
        for operator, block in condition.items():
            if not str(operator).startswith("Bool") or not isinstance(block, dict):
                continue
            for key, value in block.items():
                if key.lower() == "aws:securetransport" and "false" in {
                    str(v).lower() for v in _as_list(value)
                }:
                    return True
    return False
