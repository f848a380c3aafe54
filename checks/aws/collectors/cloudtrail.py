"""CloudTrail trails, and the CloudWatch metric filters and alarms that watch them.

Trails are listed in each region without shadow copies, so each trail appears once, in
its home region, with its status and event selectors. A second pass (after every trail
is known) reads what CIS section 4 asks for: the metric filters on the log group of a
multi-region trail that is logging all management events, the alarms on their metrics,
and whether an alarm's SNS topic has a confirmed subscriber (an alarm nobody receives
monitors nothing). A log group owned by another account (an organisation trail's) is read
in that account: what only it could cover stays unknown here.
"""

from __future__ import annotations

from typing import Any

from audit.models import Problem, Reason
from checks.aws import monitoring
from checks.aws.collectors.base import Collector, Scan
from checks.clouddata import CallFailed, Draft

TYPE = "aws.cloudtrail.trail"
LISTED = "cloudtrail_listed"


def run(scan: Scan, region: str) -> None:
    """The trails whose home is this region."""
    try:
        answer = scan.call("cloudtrail", region, "DescribeTrails", includeShadowTrails=False) or {}
    except CallFailed as failed:
        scan.harvest.regional(LISTED, region, failed.problem)
        raise
    scan.harvest.regional(LISTED, region, True)
    for trail in answer.get("trailList", []):
        if trail.get("HomeRegion", region) == region:
            _trail(scan, region, trail)


def _trail(scan: Scan, region: str, trail: dict[str, Any]) -> None:
    arn = str(trail["TrailARN"])
    draft = scan.harvest.add(Draft(TYPE, arn, trail_facts(trail, region)))
    with draft.observing("is_logging"):
        status = scan.call("cloudtrail", region, "GetTrailStatus", Name=arn) or {}
        draft.facts["is_logging"] = bool(status.get("IsLogging"))
    with draft.observing("management_events", "s3_data_events"):
        selectors = scan.call("cloudtrail", region, "GetEventSelectors", TrailName=arn) or {}
        draft.facts.update(selector_facts(selectors))


def trail_facts(trail: dict[str, Any], region: str) -> dict[str, Any]:
    """What DescribeTrails tells about one trail."""
    return {
        "name": trail.get("Name"),
        "home_region": trail.get("HomeRegion", region),
        "is_multi_region": bool(trail.get("IsMultiRegionTrail")),
        "is_organization_trail": bool(trail.get("IsOrganizationTrail")),
        "has_log_file_validation": bool(trail.get("LogFileValidationEnabled")),
        "kms_key_id": trail.get("KmsKeyId"),
        "is_kms_encrypted": bool(trail.get("KmsKeyId")),
        "s3_bucket": trail.get("S3BucketName"),
        "cloudwatch_log_group_arn": trail.get("CloudWatchLogsLogGroupArn"),
        "has_cloudwatch_logs": bool(trail.get("CloudWatchLogsLogGroupArn")),
    }


def selector_facts(answer: dict[str, Any]) -> dict[str, Any]:
    """Management events recorded, and S3 object-level events for every bucket (CIS 3.8/3.9)."""
    read = write = False
    management = "None"
    for selector in answer.get("EventSelectors", []):
        kind = selector.get("ReadWriteType", "All")
        if selector.get("IncludeManagementEvents", True):
            management = kind if management in ("None", kind) else "All"
        for resource in selector.get("DataResources", []):
            if resource.get("Type") == "AWS::S3::Object" and _all_buckets(
                resource.get("Values", [])
            ):
                read = read or kind in ("All", "ReadOnly")
                write = write or kind in ("All", "WriteOnly")
    for selector in answer.get("AdvancedEventSelectors", []):
        fields = {f.get("Field"): f for f in selector.get("FieldSelectors", [])}
        if fields.get("eventCategory", {}).get("Equals") == ["Management"]:
            management = "All"
        if fields.get("resources.type", {}).get("Equals") == ["AWS::S3::Object"]:
            only = fields.get("readOnly", {}).get("Equals")
            read = read or only in (None, ["true"])
            write = write or only in (None, ["false"])
    return {"management_events": management, "s3_data_events": {"read": read, "write": write}}


def _all_buckets(values: list[str]) -> bool:
    return any(
        v.rstrip("/") in ("arn:aws:s3", "arn:aws:s3:::") or v == "arn:aws:s3:::" for v in values
    )


def watch(scan: Scan, region: str) -> None:
    """Second pass: metric filters, alarms and subscribers for the qualifying trails.

    Only a multi-region trail that is logging all management events counts (CIS 4.x
    audit step 1). A trail whose status or selectors stayed unknown might count: when
    it alone would cover an item, the monitoring facts are unknown, never a guess.
    """
    listed = scan.harvest.regional_values().get(LISTED, {})
    failed = next((v for v in listed.values() if isinstance(v, Problem)), None)
    if failed is not None:
        scan.harvest.account_unknown(failed, "monitoring", "unmonitored_events")
        return
    trails = [d for d in scan.harvest.drafts(TYPE) if d.facts.get("cloudwatch_log_group_arn")]
    here = [t for t in trails if _group_account(t) in ("", scan.account_id)]
    sure = [t for t in here if _is_full_trail(t) is True]
    maybe = [t for t in here if _is_full_trail(t) is None]
    elsewhere = [t for t in trails if t not in here and _is_full_trail(t) is not False]
    watcher = _Watcher(scan)
    try:
        covered = watcher.coverage(sure)
        uncertain = watcher.coverage(maybe) - covered
    except CallFailed as denied:
        scan.harvest.account_unknown(denied.problem, "monitoring", "unmonitored_events")
        return
    if uncertain or (elsewhere and covered != set(monitoring.ITEMS)):
        why = _first_unknown(maybe) if uncertain else _elsewhere(elsewhere[0])
        scan.harvest.account_unknown(why, "monitoring", "unmonitored_events")
        return
    status = {name: name in covered for name in monitoring.ITEMS}
    scan.harvest.account_facts(
        monitoring=status,
        unmonitored_events=sorted(name for name, ok in status.items() if not ok),
        metric_filters=watcher.filters[:100],
    )


class _Watcher:
    """Reads each log group, alarm list and SNS topic once, however many trails share it."""

    def __init__(self, scan: Scan):
        self.scan = scan
        self.filters: list[dict[str, Any]] = []
        self._alarmed: dict[str, set[tuple[str, str]]] = {}
        self._groups: dict[tuple[str, str], set[str]] = {}
        self._subscribed: dict[str, bool] = {}

    def coverage(self, trails: list[Draft]) -> set[str]:
        """The monitoring items covered by a filter with a notifying alarm on these trails."""
        covered: set[str] = set()
        for trail in trails:
            covered |= self._group(*_log_group(str(trail.facts["cloudwatch_log_group_arn"])))
        return covered

    def _group(self, region: str, group: str) -> set[str]:
        if (region, group) not in self._groups:
            alarmed = self._alarmed_metrics(region)
            covered: set[str] = set()
            for item in _filters(self.scan, region, group):
                item["alarmed"] = (item["namespace"], item["metric"]) in alarmed
                self.filters.append(item)
                if item["alarmed"]:
                    covered |= monitoring.covered_items(item["pattern"])
            self._groups[(region, group)] = covered
        return self._groups[(region, group)]

    def _alarmed_metrics(self, region: str) -> set[tuple[str, str]]:
        """Metrics with an alarm whose actions reach an SNS topic with a subscriber."""
        if region not in self._alarmed:
            answer = self.scan.pages("cloudwatch", region, "DescribeAlarms") or {}
            self._alarmed[region] = {
                (str(a.get("Namespace")), str(a.get("MetricName")))
                for a in answer.get("MetricAlarms", [])
                if any(self._notifies(action) for action in a.get("AlarmActions", []))
            }
        return self._alarmed[region]

    def _notifies(self, action: str) -> bool:
        """An SNS topic action with at least one confirmed subscription (CIS 4.x step 5)."""
        parts = action.split(":")
        if len(parts) < 6 or parts[2] != "sns":
            return False
        if action not in self._subscribed:
            answer = self.scan.pages(
                "sns", parts[3], "ListSubscriptionsByTopic", missing=("NotFound",), TopicArn=action
            )
            self._subscribed[action] = has_confirmed_subscription(answer)
        return self._subscribed[action]


def has_confirmed_subscription(answer: dict[str, Any] | None) -> bool:
    """Pending or deleted subscriptions have no ARN yet (``PendingConfirmation``)."""
    return any(
        str(s.get("SubscriptionArn", "")).startswith("arn:")
        for s in (answer or {}).get("Subscriptions", [])
    )


def _group_account(trail: Draft) -> str:
    """The account that owns a trail's log group (an organisation trail's may not be ours)."""
    parts = str(trail.facts["cloudwatch_log_group_arn"]).split(":")
    return parts[4] if len(parts) > 4 else ""


def _elsewhere(trail: Draft) -> Problem:
    return Problem(
        Reason.NOT_FOUND,
        f"trail {trail.facts.get('name')!r} sends its logs to a log group of account "
        f"{_group_account(trail)}: its metric filters and alarms are read in that account",
    )


def _log_group(arn: str) -> tuple[str, str]:
    """``arn:aws:logs:REGION:ACCOUNT:log-group:NAME:*`` → (region, name)."""
    parts = arn.split(":")
    return parts[3], parts[6] if len(parts) > 6 else ""


def _filters(scan: Scan, region: str, group: str) -> list[dict[str, Any]]:
    answer = scan.pages("logs", region, "DescribeMetricFilters", logGroupName=group) or {}
    return [
        {
            "pattern": str(f.get("filterPattern", "")),
            "namespace": str(t.get("metricNamespace")),
            "metric": str(t.get("metricName")),
            "log_group": group,
        }
        for f in answer.get("metricFilters", [])
        for t in f.get("metricTransformations", [])
    ]


def settle_account(scan: Scan) -> None:
    """Account facts drawn from every trail: one multi-region trail logging (CIS 3.1) and
    S3 object-level events (CIS 3.8/3.9). Unknown when a region or a trail stayed unknown."""
    listed = scan.harvest.regional_values().get(LISTED, {})
    failed = next((v for v in listed.values() if isinstance(v, Problem)), None)
    trails = scan.harvest.drafts(TYPE)
    names = ("has_multi_region_trail", "has_s3_read_data_events", "has_s3_write_data_events")
    values = {
        names[0]: _any(trails, _is_full_trail),
        names[1]: _any(trails, lambda t: _s3_events(t, "read")),
        names[2]: _any(trails, lambda t: _s3_events(t, "write")),
    }
    for name, value in values.items():
        if value is True:
            scan.harvest.account_facts(**{name: True})
        elif failed is not None or value is None:
            scan.harvest.account_unknown(failed or _first_unknown(trails), name)
        else:
            scan.harvest.account_facts(**{name: False})
    scan.harvest.account_facts(trail_count=len(trails))


def _is_full_trail(trail: Draft) -> bool | None:
    """Multi-region, logging, all management events; None when only an unknown decides."""
    facts = trail.facts
    if (
        not facts.get("is_multi_region")
        or facts.get("is_logging") is False
        or facts.get("management_events", "All") != "All"
    ):
        return False
    if "is_logging" not in facts or "management_events" not in facts:
        return None
    return True


def _s3_events(trail: Draft, kind: str) -> bool | None:
    if "s3_data_events" not in trail.facts or "is_logging" not in trail.facts:
        return None
    return bool(trail.facts["is_logging"] and trail.facts["s3_data_events"][kind])


def _any(trails: list[Draft], test: Any) -> bool | None:
    results = [test(t) for t in trails]
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def _first_unknown(trails: list[Draft]) -> Problem:
    return next(p for t in trails for p in t.unknown.values())


COLLECTOR = Collector(
    name="cloudtrail",
    service="cloudtrail",
    resource_types=(TYPE,),
    operations=(
        ("cloudtrail", "DescribeTrails"),
        ("cloudtrail", "GetTrailStatus"),
        ("cloudtrail", "GetEventSelectors"),
    ),
    run=run,
    account_facts=("has_multi_region_trail", "has_s3_read_data_events", "has_s3_write_data_events"),
)
WATCH = Collector(
    name="cloudwatch-monitoring",
    service="logs",
    resource_types=(),
    operations=(
        ("logs", "DescribeMetricFilters"),
        ("cloudwatch", "DescribeAlarms"),
        ("sns", "ListSubscriptionsByTopic"),
    ),
    run=watch,
    regional=False,
    account_facts=("monitoring", "unmonitored_events"),
    services=("cloudwatch", "sns"),
)
