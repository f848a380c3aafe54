"""Observe one AWS account: identity and scope first, then every collector concurrently.

Order of a scan: build the session (profile, then assume-role), ask STS who we are, refuse
an account outside the declared scope before anything else is read, settle the regions
(given, or every region enabled for the account), run the phase-one collectors over a
bounded pool (services x regions), then phase two, then settle the facts that combine
several services (a bucket's effective exposure, a trail bucket's logging, per-region
guard rails).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from audit.models import Observation, Problem, Reason, Target
from audit.plugins import CheckContext
from checks.aws.collectors import PHASE_ONE, PHASE_TWO, cloudtrail, s3
from checks.aws.collectors.base import Collector, Harvest, Scan
from checks.aws.errors import problem_from
from checks.aws.scope import declared_accounts
from checks.aws.session import Api, is_region_label, not_offered, settings_for
from checks.clouddata import CallFailed, Draft

log = logging.getLogger(__name__)
ACCOUNT = "aws.account"
REGIONAL_FACTS: dict[str, Callable[[Any], bool]] = {
    "ebs_encryption_by_default": bool,
    "access_analyzer": bool,
    "security_hub": bool,
    "config_recorder": lambda v: bool(v["is_recording"] and v["records_all_supported"]),
}


def collect(target: Target, ctx: CheckContext) -> Observation:
    """The :data:`audit.plugins.CollectFn` of the aws family."""
    started = time.monotonic()
    try:
        settings = settings_for(target, ctx.family_options("aws"))
    except ValueError as exc:
        return Observation(target, problems=(Problem(Reason.BUG, f"invalid aws settings: {exc}"),))
    api = Api(settings, ctx.timeout)
    try:
        resources, problems = observe(target, ctx, api)
    except CallFailed as failed:
        resources, problems = (), (failed.problem,)
    except Exception as exc:
        problems = (problem_from(exc, "sts:AssumeRole" if settings.role_arn else "session"),)
        resources = ()
    return Observation(target, resources, problems, time.monotonic() - started)


def observe(
    target: Target, ctx: CheckContext, api: Api
) -> tuple[tuple[Any, ...], tuple[Problem, ...]]:
    """Identity, scope, regions, collectors; returns resources and problems."""
    api.session()  # credentials and assume-role first: their failure is the target's
    account_id, partition, caller_arn = identify(api)
    refusal = scope_refusal(ctx, account_id)
    if refusal is not None:
        return (), (refusal,)
    harvest = Harvest(_account_draft(account_id, partition, caller_arn))
    regions = _regions(api, harvest)
    with ThreadPoolExecutor(api.settings.max_workers, thread_name_prefix="aws-fan") as fan:
        scan = Scan(api, target, account_id, partition, regions, harvest, _fan_out(fan))
        if account_id is None:
            harvest.problem(_no_identity())
        run_phase(scan, PHASE_ONE)
        run_phase(scan, PHASE_TWO)
        settle(scan)
    log.debug("aws scan of %s: %d calls", target.uri, sum(api.calls.values()))
    drafts = ([harvest.account] if harvest.account else []) + harvest.drafts()
    return tuple(d.resource(target) for d in drafts), tuple(harvest.problems)


def identify(api: Api) -> tuple[str | None, str, str | None]:
    """Account id, partition and the caller's ARN from STS (None when the provider offers
    no STS). The ARN names the identity the audit used (a user, or an assumed role and its
    session), so the report can say who looked; it is a name, never a credential."""
    if not api.settings.offers("sts"):
        return None, "aws", None
    answer = api.call("sts", api.default_region(), "GetCallerIdentity") or {}
    arn = str(answer.get("Arn", "arn:aws:"))
    caller = str(answer["Arn"]) if answer.get("Arn") else None
    return str(answer.get("Account")), arn.split(":")[1] or "aws", caller


def scope_refusal(ctx: CheckContext, account_id: str | None) -> Problem | None:
    """With a declared scope, only listed accounts are read; an unknown identity is refused."""
    if not ctx.scope.is_declared:
        return None
    allowed = declared_accounts(ctx.scope)
    if account_id is not None and account_id in allowed:
        return None
    listed = ", ".join(allowed) or "none"
    who = f"account {account_id}" if account_id else "an account whose id STS cannot tell"
    return Problem(
        Reason.REFUSED,
        f"{who} is outside the declared scope (scope.aws.accounts: {listed}); "
        "nothing was collected",
    )


def _no_identity() -> Problem:
    return Problem(
        Reason.NOT_IMPLEMENTED,
        "the provider does not offer STS, so the account cannot be identified; "
        "account-level rules do not apply",
        resource_type=ACCOUNT,
    )


def _account_draft(account_id: str | None, partition: str, caller_arn: str | None) -> Draft | None:
    if account_id is None:
        return None
    key = f"arn:{partition}:iam::{account_id}:root"
    facts = {"account_id": account_id, "partition": partition, "caller_arn": caller_arn}
    return Draft(ACCOUNT, key, facts)


def _regions(api: Api, harvest: Harvest) -> tuple[str, ...]:
    """The regions asked for, else the regions enabled for the account."""
    regions = api.settings.regions
    if not regions and api.settings.offers("ec2"):
        try:
            answer = api.call("ec2", api.default_region(), "DescribeRegions") or {}
            regions = _enabled_regions(answer, harvest)
        except CallFailed as failed:
            harvest.account_unknown(
                replace(
                    failed.problem,
                    message=failed.problem.message + f"; only {api.default_region()} was read",
                ),
                "regions",
            )
    regions = regions or (api.default_region(),)
    harvest.account_facts(regions=list(regions))
    return regions


def _enabled_regions(answer: dict[str, Any], harvest: Harvest) -> tuple[str, ...]:
    """The enabled regions of a DescribeRegions answer, each one DNS label.

    A name that is not is dropped and reported: put in a ``{region}`` endpoint, it would
    move the call to a host the scope guard never admitted.
    """
    names = sorted(
        str(r.get("RegionName"))
        for r in answer.get("Regions", [])
        if r.get("OptInStatus") != "not-opted-in"
    )
    kept = tuple(n for n in names if is_region_label(n))
    if len(kept) < len(names):
        bad = next(n for n in names if n not in kept)
        message = f"DescribeRegions answered {bad!r}, not a region name; it was not scanned"
        harvest.problem(Problem(Reason.REFUSED, message, ACCOUNT, facts=("regions",)))
    return kept


def _fan_out(pool: ThreadPoolExecutor) -> Callable[[Callable[[Any], None], list[Any]], None]:
    """Run one function over many items on the per-resource pool; re-raise the first error."""

    def fan_out(fn: Callable[[Any], None], items: list[Any]) -> None:
        futures = [pool.submit(fn, item) for item in items]
        errors = [f.exception() for f in futures]
        first = next((e for e in errors if e is not None), None)
        if first is not None:
            raise first

    return fan_out


def run_phase(scan: Scan, collectors: tuple[Collector, ...]) -> None:
    """Every (collector, region) job of a phase on a bounded pool."""
    jobs: list[tuple[Collector, str]] = []
    for collector in collectors:
        if not _offered(scan, collector):
            continue
        regions = scan.regions if collector.regional else (scan.api.default_region(),)
        jobs += [(collector, region) for region in regions]
    with ThreadPoolExecutor(scan.api.settings.max_workers, thread_name_prefix="aws") as pool:
        list(pool.map(lambda job: run_job(scan, *job), jobs))


def _offered(scan: Scan, collector: Collector) -> bool:
    """A service the provider does not offer: its rules do not apply (not a failure)."""
    missing = [s for s in collector.all_services() if not scan.api.settings.offers(s)]
    if not missing:
        return scan.account_id is not None or bool(collector.resource_types)
    for problem in not_offered(scan.api.settings, missing[0], collector.resource_types):
        scan.harvest.problem(problem)
    if collector.account_facts:
        message = not_offered(scan.api.settings, missing[0], ["-"])[0].message
        scan.harvest.account_unknown(
            Problem(Reason.NOT_IMPLEMENTED, message), *_fact_names(collector)
        )
    return False


def _fact_names(collector: Collector) -> tuple[str, ...]:
    names = list(collector.account_facts)
    names += [f"regions_without_{n}" for n in collector.account_facts if n in REGIONAL_FACTS]
    return tuple(names)


def run_job(scan: Scan, collector: Collector, region: str) -> None:
    """One collector in one region; whatever happens becomes data."""
    try:
        collector.run(scan, region)
    except CallFailed as failed:
        _record(
            scan, collector, replace(failed.problem, message=f"{region}: {failed.problem.message}")
        )
    except Exception as exc:
        log.debug("aws collector %s failed in %s", collector.name, region, exc_info=True)
        message = f"{collector.name} collector failed in {region}: {type(exc).__name__}: {exc}"
        _record(scan, collector, Problem(Reason.BUG, message))


def _record(scan: Scan, collector: Collector, problem: Problem) -> None:
    for type_ in collector.resource_types:
        scan.harvest.problem(replace(problem, resource_type=type_))
    if collector.account_facts and not collector.regional:
        scan.harvest.account_unknown(problem, *_fact_names(collector))


def settle(scan: Scan) -> None:
    """Facts that combine services, computed once every collector is done."""
    _settle_regional(scan)
    if scan.api.settings.offers("cloudtrail"):
        cloudtrail.settle_account(scan)
    _settle_buckets(scan)
    _settle_trail_buckets(scan)


def _settle_regional(scan: Scan) -> None:
    """Per-region guard rails → the map, and the regions lacking them."""
    for fact, values in scan.harvest.regional_values().items():
        judge = REGIONAL_FACTS.get(fact)
        if judge is None:
            continue
        failed = next((v for v in values.values() if isinstance(v, Problem)), None)
        names = (fact, f"regions_without_{fact}")
        if failed is not None:
            scan.harvest.account_unknown(failed, *names)
            continue
        missing = sorted(r for r, v in values.items() if not judge(v))
        scan.harvest.account_facts(**{names[0]: dict(sorted(values.items())), names[1]: missing})


def _settle_buckets(scan: Scan) -> None:
    account = scan.harvest.account
    block: dict[str, bool] | None = None
    why: Problem | None = None
    if account is not None:
        block = account.facts.get("s3_public_access_block")
        why = account.unknown.get("s3_public_access_block")
    for bucket in scan.harvest.drafts(s3.TYPE):
        s3.settle_public(bucket, block, why)


def _settle_trail_buckets(scan: Scan) -> None:
    """Access logging of each trail's bucket (CIS 3.4), read from the bucket already seen."""
    buckets = {d.facts.get("name"): d for d in scan.harvest.drafts(s3.TYPE)}
    for trail in scan.harvest.drafts(cloudtrail.TYPE):
        name = trail.facts.get("s3_bucket")
        bucket = buckets.get(name)
        if bucket is None:
            trail.mark_unknown(
                Problem(
                    Reason.NOT_FOUND, f"trail bucket {name!r} is not among this account's buckets"
                ),
                "s3_bucket_access_logging",
            )
        elif "is_access_logging_enabled" in bucket.unknown:
            trail.mark_unknown(
                bucket.unknown["is_access_logging_enabled"], "s3_bucket_access_logging"
            )
        else:
            trail.facts["s3_bucket_access_logging"] = bucket.facts["is_access_logging_enabled"]
