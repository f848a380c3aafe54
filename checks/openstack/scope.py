"""Admit an ``openstack://`` target before anything is sent: the family's scope hook.

The inventory's ``scope: {openstack: {auth_urls: [...], projects: [...]}}`` lists the
Keystone endpoints and the projects that may be read. When the scan is planned, the
cloud's entry of ``clouds.yaml`` is read (no request): a declared scope whose block lists
no project, an auth URL it does not list, or a project it does not hold is refused, and
the auth URL goes to the scope guard like a network target (plain http to loopback
only): the first request carries the password or the application credential secret.

What only Keystone can tell is checked by the collector once the token is issued and
before any other call: the project an application credential is bound to, and every
endpoint of the service catalogue, each admitted by :meth:`ScopeGuard.admit_derived`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from audit.errors import ScopeError
from audit.models import Target
from audit.plugins import Reach, Scope
from checks.openstack.config import CloudSpec, base_url, load, validate_auth_url
from checks.openstack.targets import validate_project


def admit(target: Target, scope: Scope, options: Mapping[str, Any]) -> tuple[Reach, ...]:
    """The :data:`audit.plugins.AdmitFn` of the openstack family."""
    if scope.is_declared and not scope.block("openstack").get("projects"):
        raise ScopeError(
            f"{target.uri}: the declared scope lists no OpenStack project "
            "(scope.openstack.projects), so no project may be read"
        )
    try:
        spec = load(target)
    except ValueError as exc:
        raise ScopeError(f"{target.uri}: {exc}; nothing can be admitted") from None
    check_declared(target, scope, spec)
    return (Reach(base_url(spec.auth_url), target.from_command_line),)


def check_declared(target: Target, scope: Scope, spec: CloudSpec) -> None:
    """With a declared scope: the auth URL and the project must be listed."""
    if not scope.is_declared:
        return
    block = scope.block("openstack")
    projects = block.get("projects", ())
    auth_urls = block.get("auth_urls", ())
    if spec.auth_url not in auth_urls:
        raise ScopeError(
            f"{target.uri}: auth URL {spec.auth_url} is not declared "
            f"(scope.openstack.auth_urls: {', '.join(auth_urls) or 'none'})"
        )
    if spec.project is not None and spec.project not in projects:
        raise ScopeError(
            f"{target.uri}: project {spec.project!r} is outside the declared scope "
            f"(scope.openstack.projects: {', '.join(projects)})"
        )


def project_refusal(scope: Scope, project_id: str, project_name: str) -> str | None:
    """After the token: the project Keystone scoped it to must be declared (by id or name)."""
    if not scope.is_declared:
        return None
    projects = scope.block("openstack").get("projects", ())
    if project_id in projects or project_name in projects:
        return None
    return (
        f"project {project_name!r} ({project_id}) is outside the declared scope "
        f"(scope.openstack.projects: {', '.join(projects) or 'none'}); nothing was collected"
    )


def validate_scope(block: Any) -> dict[str, tuple[str, ...]]:
    """The family's scope block: ``{auth_urls: [URLs], projects: [names or ids]}``."""
    if not isinstance(block, Mapping) or set(block) - {"auth_urls", "projects"}:
        raise ValueError("expected {auth_urls: [Keystone URLs], projects: [names or ids]}")
    urls = _strings(block, "auth_urls")
    projects = _strings(block, "projects")
    for project in projects:
        validate_project(project)
    return {
        "auth_urls": tuple(validate_auth_url(u) for u in urls),
        "projects": projects,
    }


def _strings(block: Mapping[str, Any], key: str) -> tuple[str, ...]:
    values = block.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise ValueError(f"{key}: expected a list of strings")
    return tuple(values)
