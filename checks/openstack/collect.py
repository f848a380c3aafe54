"""Observe one OpenStack project: token and scope first, then every collector concurrently.

Order of a scan: read the cloud from clouds.yaml, ask Keystone for a token (the only
request before the project is known, to the auth URL the scope guard admitted when the
scan was planned), refuse a project outside the declared scope, settle the regions
(given, else the cloud's ``region_name``, else every region of the catalogue), then for
each (collector, region): a service absent from the catalogue is ``not_implemented``, an
endpoint the scope guard refuses is ``refused`` (nothing is sent to it), and the rest run
on a bounded pool. Whatever fails becomes data.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from audit.models import Observation, Problem, Reason, Resource, Target
from audit.plugins import CheckContext
from checks.clouddata import CallFailed, Draft
from checks.openstack.collectors import ALL, USER
from checks.openstack.config import load
from checks.openstack.harvest import Collector, Harvest, Scan
from checks.openstack.scope import project_refusal
from checks.openstack.session import SERVICE_TYPES, Api, parse_options

log = logging.getLogger(__name__)
PROJECT = "openstack.project"
MAX_WORKERS = 8


def collect(target: Target, ctx: CheckContext) -> Observation:
    """The :data:`audit.plugins.CollectFn` of the openstack family."""
    started = time.monotonic()
    try:
        settings = parse_options(ctx.family_options("openstack"))
        spec = load(target, ctx.timeout)
    except ValueError as exc:
        problem = Problem(Reason.NOT_FOUND, f"cannot read the cloud: {exc}")
        return Observation(target, problems=(problem,))
    api = Api(spec, target, ctx, settings)
    try:
        resources, problems = observe(target, ctx, api)
    except CallFailed as failed:
        resources, problems = (), (failed.problem,)
    return Observation(target, resources, problems, time.monotonic() - started)


def observe(
    target: Target, ctx: CheckContext, api: Api
) -> tuple[tuple[Resource, ...], tuple[Problem, ...]]:
    """Token, scope, regions, collectors; returns resources and problems."""
    access = api.authenticate()
    project_id, project_name = str(access.project_id or ""), str(access.project_name or "")
    refusal = _refusal(target, ctx, project_id, project_name)
    if refusal is not None:
        return (), (Problem(Reason.REFUSED, refusal),)
    catalogue = api.catalogue()
    regions = _regions(target, api, catalogue)
    harvest = Harvest(_project_draft(api, project_id, project_name, regions, catalogue))
    jobs = _jobs(api, harvest, catalogue, regions, project_id, project_name, str(access.user_id))
    with ThreadPoolExecutor(MAX_WORKERS, thread_name_prefix="openstack") as pool:
        list(pool.map(lambda job: _run(*job), jobs))
    harvest.project.facts["is_identity_visible"] = not any(
        p.resource_type == USER for p in harvest.problems
    ) and any(c.service == "identity" for c, _ in jobs)
    log.debug("openstack scan of %s: %d calls", target.uri, sum(api.calls.values()))
    drafts = [harvest.project, *harvest.drafts()]
    return tuple(d.resource(target) for d in drafts), tuple(harvest.problems)


def _refusal(target: Target, ctx: CheckContext, project_id: str, name: str) -> str | None:
    if not project_id:
        return "the token is not scoped to a project; nothing was collected"
    wanted = target.param("project")
    if wanted is not None and wanted not in (project_id, name):
        return f"Keystone scoped the token to {name!r} ({project_id}), not to {wanted!r}"
    return project_refusal(ctx.scope, project_id, name)


def _regions(target: Target, api: Api, catalogue: dict[str, list[dict[str, Any]]]) -> list[str]:
    given = target.param("regions")
    if given:
        return given.split(",")
    if api.spec.region:
        return [api.spec.region]
    found = {_region_of(e) for endpoints in catalogue.values() for e in endpoints}
    return sorted(r for r in found if r)


def _region_of(endpoint: dict[str, Any]) -> str:
    return str(endpoint.get("region_id") or endpoint.get("region") or "")


def _project_draft(
    api: Api,
    project_id: str,
    name: str,
    regions: list[str],
    catalogue: dict[str, list[dict[str, Any]]],
) -> Draft:
    return Draft(
        PROJECT,
        f"openstack:project:{project_id}",
        {
            "project_id": project_id,
            "project_name": name,
            "cloud": api.spec.name,
            "auth_url": api.spec.auth_url,
            "regions": regions,
            "services": sorted(catalogue),
            "uses_application_credential": api.spec.uses_application_credential,
        },
    )


def endpoint_for(
    catalogue: dict[str, list[dict[str, Any]]], service: str, region: str | None
) -> str | None:
    """The public endpoint of a service (any alias) in a region (None: any region)."""
    for alias in SERVICE_TYPES[service]:
        for endpoint in catalogue.get(alias, []):
            if region is None or _region_of(endpoint) == region:
                url = str(endpoint.get("url") or "").rstrip("/")
                if service == "identity" and url.endswith("/v3"):
                    url = url[: -len("/v3")]  # the calls name their version
                return url or None
    return None


def _jobs(
    api: Api,
    harvest: Harvest,
    catalogue: dict[str, list[dict[str, Any]]],
    regions: list[str],
    project_id: str,
    project_name: str,
    user_id: str,
) -> list[tuple[Collector, Scan]]:
    """Every (collector, region) whose endpoint exists and passes the scope guard."""
    jobs = []
    for collector in ALL:
        for region in regions if collector.regional else [None]:
            where = region or "any region"
            url = endpoint_for(catalogue, collector.service, region)
            if url is None:
                message = f"{where}: {collector.service} is not in the service catalogue"
                _record(harvest, collector, Problem(Reason.NOT_IMPLEMENTED, message))
                continue
            try:
                api.admit_endpoint(url, collector.service)
            except CallFailed as failed:
                _record(harvest, collector, failed.problem)
                continue
            scan = Scan(api, project_id, project_name, user_id, region or "-", url, harvest)
            jobs.append((collector, scan))
    return jobs


def _run(collector: Collector, scan: Scan) -> None:
    """One collector in one region; whatever happens becomes data."""
    try:
        collector.run(scan)
    except CallFailed as failed:
        message = f"{scan.region}: {failed.problem.message}"
        _record(scan.harvest, collector, replace(failed.problem, message=message))
    except Exception as exc:
        log.debug("openstack collector %s failed", collector.name, exc_info=True)
        message = f"{collector.name} collector failed in {scan.region}: {type(exc).__name__}"
        _record(scan.harvest, collector, Problem(Reason.BUG, message))


def _record(harvest: Harvest, collector: Collector, problem: Problem) -> None:
    for type_ in collector.resource_types:
        harvest.problem(replace(problem, resource_type=type_))
