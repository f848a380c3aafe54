"""Admit an ``aws://`` target before anything is sent: the family's scope guard hook.

The account id is only known once STS answers, so the collector checks it then; but
everything the scope can decide without a call is decided here, when the scan is
planned: a declared scope that lists no account, a role that belongs to an account
outside it, AWS itself reached from an inventory that declares no scope. The endpoints
the scan will call (``endpoint``, per-service ``endpoints``) are returned to the scope
guard, which admits them as it admits network targets (networks, domains, loopback when
no scope is declared, plain http to loopback only): the first request carries signed
headers and a session token, so it must never leave for a host the scope does not hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit.errors import ScopeError
from audit.models import Target
from audit.plugins import Reach, Scope
from checks.aws.session import Settings, settings_for


def admit(target: Target, scope: Scope, options: Mapping[str, Any]) -> tuple[Reach, ...]:
    """The :data:`audit.plugins.AdmitFn` of the aws family."""
    try:
        settings = settings_for(target, options)
    except ValueError as exc:
        raise ScopeError(
            f"{target.uri}: invalid aws settings, nothing can be admitted: {exc}"
        ) from None
    _check_accounts(target, scope, settings)
    if calls_aws(settings):
        _check_aws_itself(target, scope)
    return endpoints(target, settings)


def calls_aws(settings: Settings) -> bool:
    """True when some call goes to AWS's own endpoints (no endpoint replaces them).

    Per-service endpoints alone limit the scan to those services, but an assume-role
    without an ``sts`` entry still goes to AWS's STS.
    """
    if settings.endpoint:
        return False
    return not settings.endpoints or bool(settings.role_arn and "sts" not in settings.endpoints)


def endpoints(target: Target, settings: Settings) -> tuple[Reach, ...]:
    """Every endpoint URL the scan may call; only the target's own one was typed by a user."""
    typed = target.from_command_line and target.param("endpoint") is not None
    reaches = [Reach(settings.endpoint, typed)] if settings.endpoint else []
    for url in dict.fromkeys(settings.endpoints.values()):
        reaches.append(Reach(url))
    return tuple(reaches)


def _check_accounts(target: Target, scope: Scope, settings: Settings) -> None:
    """A declared scope must list the account; a role's ARN names it before any call."""
    if not scope.is_declared:
        return
    accounts = declared_accounts(scope)
    if not accounts:
        raise ScopeError(
            f"{target.uri}: the declared scope lists no AWS account (scope.aws.accounts), "
            "so no account may be read"
        )
    account = role_account(settings.role_arn)
    if account is not None and account not in accounts:
        raise ScopeError(
            f"{target.uri}: role {settings.role_arn} belongs to account {account}, outside "
            f"the declared scope (scope.aws.accounts: {', '.join(accounts)})"
        )


def declared_accounts(scope: Scope) -> tuple[str, ...]:
    """The AWS accounts the inventory's ``scope: {aws: {accounts}}`` lists."""
    return tuple(scope.block("aws").get("accounts", ()))


def validate_scope(block: Any) -> dict[str, tuple[str, ...]]:
    """The family's scope block: ``{accounts: [12-digit ids]}`` (the :data:`CheckFamily.
    validate_scope` hook); ids are kept as text, so leading zeros survive."""
    if not isinstance(block, Mapping) or set(block) - {"accounts"}:
        raise ValueError("expected {accounts: [12-digit AWS account ids]}")
    values = block.get("accounts") or []
    if not isinstance(values, list):
        raise ValueError("accounts: expected a list of 12-digit AWS account ids")
    for value in values:
        if not (isinstance(value, str | int) and str(value).isdigit() and len(str(value)) == 12):
            raise ValueError(
                f"accounts: {value!r} is not a 12-digit AWS account id "
                "(quote it so YAML keeps leading zeros)"
            )
    return {"accounts": tuple(str(v) for v in values)}


def _check_aws_itself(target: Target, scope: Scope) -> None:
    """With no scope declared, AWS (remote by nature) is reached only from the command line."""
    if scope.is_declared or target.from_command_line:
        return
    raise ScopeError(
        f"{target.uri}: no scope declared, and this target calls AWS itself, which is not "
        "loopback; declare scope.aws.accounts, or give a loopback endpoint"
    )


def role_account(role_arn: str | None) -> str | None:
    """The account id in an IAM role ARN (``arn:aws:iam::123456789012:role/x``)."""
    if not role_arn:
        return None
    return role_arn.split(":")[4]
