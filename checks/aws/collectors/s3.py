"""S3 buckets: public exposure, TLS-only policy, encryption, versioning, logging, lock.

ListBuckets gives names (and each bucket's region on AWS); each bucket then needs one call
per attribute group, spread over the shared fan-out pool. A missing configuration (no
policy, no public access block) is an answer, not an error. Two calls are spared only
where the answer is certain: the region when a listing already placed the bucket
(:func:`bucket_regions`), and the Object Lock configuration of a bucket whose versioning
is not enabled (Object Lock requires versioning and forbids suspending it).
"""

from __future__ import annotations

from typing import Any

from checks.aws import policydoc
from checks.aws.collectors.base import Collector, Scan
from checks.clouddata import CallFailed, Draft

TYPE = "aws.s3.bucket"
_PUBLIC_GROUPS = {
    "http://acs.amazonaws.com/groups/global/AllUsers": "AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers": "AuthenticatedUsers",
}
_PAB_FIELDS = {
    "BlockPublicAcls": "block_public_acls",
    "IgnorePublicAcls": "ignore_public_acls",
    "BlockPublicPolicy": "block_public_policy",
    "RestrictPublicBuckets": "restrict_public_buckets",
}
AWS_DEFAULT_SSE = (
    "no default encryption configuration was returned: AWS applies SSE-S3 (AES256) "
    "to every new object by default"
)


_PROBE_REGIONS = ("us-east-1", "eu-west-1")


def run(scan: Scan, region: str) -> None:
    """List buckets, place them in their regions, then observe each one concurrently."""
    listing = scan.pages("s3", region, "ListBuckets") or {}
    buckets = [b for b in listing.get("Buckets", []) if b.get("Name")]
    regions = {str(b["Name"]): str(b["BucketRegion"]) for b in buckets if b.get("BucketRegion")}
    unplaced = [str(b["Name"]) for b in buckets if str(b["Name"]) not in regions]
    regions.update(bucket_regions(scan, region, unplaced))
    scan.fan_out(lambda bucket: observe_bucket(scan, region, bucket, regions), buckets)


def observe_bucket(scan: Scan, home: str, bucket: dict[str, Any], regions: dict[str, str]) -> None:
    """Every attribute group of one bucket, each failing on its own."""
    name = str(bucket["Name"])
    draft = scan.harvest.add(Draft(TYPE, f"arn:{scan.partition}:s3:::{name}", {"name": name}))
    region = regions.get(name) or _location(scan, home, name, draft)
    draft.facts["region"] = region
    where = region or home
    for observe in (_public_access_block, _acl, _policy, _encryption, _versioning, _logging, _lock):
        observe(scan, where, name, draft)


def bucket_regions(scan: Scan, home: str, names: list[str]) -> dict[str, str]:
    """Place many buckets with one filtered listing per region instead of one call each.

    AWS names each bucket's region in ListBuckets (``BucketRegion``) and this is then
    skipped. Other providers may still honour ListBuckets' ``BucketRegion`` filter, but
    one that ignores it would return every bucket for every region, so the filter is
    trusted only once seen to work: the location of one bucket is asked, and a listing
    filtered on another region must leave that bucket out, no bucket may appear under
    two regions, and the asked bucket must appear under its own region when that region
    is listed. Otherwise nothing is placed and each bucket's location is asked.
    """
    if len(names) <= len(scan.regions) + 2:
        return {}
    try:
        probe = names[0]
        probe_region = _constraint_region(
            scan.call("s3", home, "GetBucketLocation", Bucket=probe) or {}
        )
        listed = {r: _listed_in(scan, home, r) for r in _filter_regions(scan, probe_region)}
    except CallFailed:
        return {}
    placed: dict[str, str] = {}
    for region, found in listed.items():
        for name in found:
            if placed.setdefault(name, region) != region:
                return {probe: probe_region}
    if placed.get(probe, probe_region) != probe_region or (
        probe_region in listed and probe not in placed
    ):
        return {probe: probe_region}
    wanted = set(names)
    return {n: r for n, r in placed.items() if n in wanted} | {probe: probe_region}


def _filter_regions(scan: Scan, probe_region: str) -> tuple[str, ...]:
    """The scanned regions, plus one other region when they are only the probe's own."""
    regions = tuple(scan.regions)
    if all(r == probe_region for r in regions):
        regions += (next(r for r in _PROBE_REGIONS if r != probe_region),)
    return regions


def _listed_in(scan: Scan, home: str, region: str) -> set[str]:
    answer = scan.pages("s3", home, "ListBuckets", BucketRegion=region) or {}
    return {str(b["Name"]) for b in answer.get("Buckets", []) if b.get("Name")}


def _constraint_region(answer: dict[str, Any]) -> str:
    """GetBucketLocation's answer as a region name (null is us-east-1, EU is eu-west-1)."""
    constraint = answer.get("LocationConstraint") or "us-east-1"
    return "eu-west-1" if constraint == "EU" else str(constraint)


def _location(scan: Scan, home: str, name: str, draft: Draft) -> str | None:
    with draft.observing("region"):
        return _constraint_region(scan.call("s3", home, "GetBucketLocation", Bucket=name) or {})
    return None


def _public_access_block(scan: Scan, region: str, name: str, draft: Draft) -> None:
    facts = ("public_access_block", "is_public_access_blocked")
    with draft.observing(*facts):
        answer = (
            scan.call(
                "s3",
                region,
                "GetPublicAccessBlock",
                missing=("NoSuchPublicAccessBlockConfiguration",),
                Bucket=name,
            )
            or {}
        )
        config = answer.get("PublicAccessBlockConfiguration", {})
        block = {fact: bool(config.get(field)) for field, fact in _PAB_FIELDS.items()}
        draft.facts.update(public_access_block=block, is_public_access_blocked=all(block.values()))


def _acl(scan: Scan, region: str, name: str, draft: Draft) -> None:
    with draft.observing("public_acl_grants"):
        answer = scan.call("s3", region, "GetBucketAcl", Bucket=name) or {}
        grants = sorted(
            {
                f"{_PUBLIC_GROUPS[uri]}:{grant.get('Permission')}"
                for grant in answer.get("Grants", [])
                if (uri := grant.get("Grantee", {}).get("URI")) in _PUBLIC_GROUPS
            }
        )
        draft.facts["public_acl_grants"] = grants


def _policy(scan: Scan, region: str, name: str, draft: Draft) -> None:
    facts = ("has_policy", "policy_allows_public", "denies_insecure_transport")
    with draft.observing(*facts):
        answer = scan.call(
            "s3", region, "GetBucketPolicy", missing=("NoSuchBucketPolicy",), Bucket=name
        )
        document = policydoc.load((answer or {}).get("Policy", "{}"))
        draft.facts.update(
            has_policy=answer is not None,
            policy_allows_public=policydoc.allows_public(document),
            denies_insecure_transport=policydoc.denies_insecure_transport(document),
        )


def _encryption(scan: Scan, region: str, name: str, draft: Draft) -> None:
    with draft.observing("encryption", "is_encrypted"):
        answer = scan.call(
            "s3",
            region,
            "GetBucketEncryption",
            missing=("ServerSideEncryptionConfigurationNotFoundError",),
            Bucket=name,
        )
        draft.facts.update(encryption=_encryption_facts(answer), is_encrypted=True)


def _encryption_facts(answer: dict[str, Any] | None) -> dict[str, Any]:
    """The default encryption, saying so when it is AWS's implicit SSE-S3."""
    if answer is None:
        return {
            "algorithm": "AES256",
            "kms_key_id": None,
            "source": "aws-default",
            "note": AWS_DEFAULT_SSE,
        }
    rules = answer.get("ServerSideEncryptionConfiguration", {}).get("Rules", [])
    default = rules[0].get("ApplyServerSideEncryptionByDefault", {}) if rules else {}
    return {
        "algorithm": default.get("SSEAlgorithm", "AES256"),
        "kms_key_id": default.get("KMSMasterKeyID"),
        "source": "configured",
        "note": "",
    }


def _versioning(scan: Scan, region: str, name: str, draft: Draft) -> None:
    facts = ("versioning", "is_versioning_enabled", "is_mfa_delete_enabled")
    with draft.observing(*facts):
        answer = scan.call("s3", region, "GetBucketVersioning", Bucket=name) or {}
        status = str(answer.get("Status") or "Disabled")
        draft.facts.update(
            versioning=status,
            is_versioning_enabled=status == "Enabled",
            is_mfa_delete_enabled=answer.get("MFADelete") == "Enabled",
        )


def _logging(scan: Scan, region: str, name: str, draft: Draft) -> None:
    with draft.observing("is_access_logging_enabled", "access_log_target"):
        answer = scan.call("s3", region, "GetBucketLogging", Bucket=name) or {}
        target = answer.get("LoggingEnabled", {}).get("TargetBucket")
        draft.facts.update(is_access_logging_enabled=bool(target), access_log_target=target)


def _lock(scan: Scan, region: str, name: str, draft: Draft) -> None:
    """Object Lock needs versioning enabled, and a locked bucket cannot suspend it: with
    versioning known and not ``Enabled``, the lock is known to be off without a call."""
    if draft.facts.get("versioning", "Enabled") != "Enabled":
        draft.facts["is_object_lock_enabled"] = False
        return
    with draft.observing("is_object_lock_enabled"):
        answer = (
            scan.call(
                "s3",
                region,
                "GetObjectLockConfiguration",
                missing=("ObjectLockConfigurationNotFoundError",),
                Bucket=name,
            )
            or {}
        )
        enabled = answer.get("ObjectLockConfiguration", {}).get("ObjectLockEnabled") == "Enabled"
        draft.facts["is_object_lock_enabled"] = enabled


def settle_public(bucket: Draft, account_block: dict[str, bool] | None, why: Any) -> None:
    """``is_public``: public by ACL or policy, and no bucket or account block stops it.

    ``account_block`` None means the account-level block is unknown (``why`` is its
    problem): a bucket that would be public then stays unknown, never a guess.
    """
    facts = bucket.facts
    needed = ("public_acl_grants", "policy_allows_public", "public_access_block")
    missing = [n for n in needed if n in bucket.unknown]
    if missing:
        bucket.mark_unknown(bucket.unknown[missing[0]], "is_public")
        return
    blocks = dict(facts["public_access_block"])
    if account_block is not None:
        blocks = {k: v or account_block.get(k, False) for k, v in blocks.items()}
    by_acl = bool(facts["public_acl_grants"]) and not blocks["ignore_public_acls"]
    by_policy = facts["policy_allows_public"] and not blocks["restrict_public_buckets"]
    if (by_acl or by_policy) and account_block is None and why is not None:
        bucket.mark_unknown(why, "is_public")
        return
    facts["is_public"] = bool(by_acl or by_policy)


COLLECTOR = Collector(
    name="s3",
    service="s3",
    resource_types=(TYPE,),
    operations=tuple(
        ("s3", op)
        for op in (
            "ListBuckets",
            "GetBucketLocation",
            "GetPublicAccessBlock",
            "GetBucketAcl",
            "GetBucketPolicy",
            "GetBucketEncryption",
            "GetBucketVersioning",
            "GetBucketLogging",
            "GetObjectLockConfiguration",
        )
    ),
    run=run,
    regional=False,
)
