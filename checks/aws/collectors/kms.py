"""KMS keys of one region: who manages them and whether rotation is on (CIS 3.6).

ListKeys gives only ids, so each key costs one DescribeKey, and each enabled symmetric
customer-managed key one GetKeyRotationStatus (rotation does not apply to the others).
"""

from __future__ import annotations

from typing import Any

from checks.aws.collectors.base import Collector, Scan
from checks.clouddata import Draft

TYPE = "aws.kms.key"


def run(scan: Scan, region: str) -> None:
    """List keys, then describe each one concurrently."""
    keys = (scan.pages("kms", region, "ListKeys") or {}).get("Keys", [])
    scan.fan_out(lambda key: _key(scan, region, key), keys)


def _key(scan: Scan, region: str, key: dict[str, Any]) -> None:
    draft = scan.harvest.add(
        Draft(
            TYPE, str(key.get("KeyArn") or key["KeyId"]), {"key_id": key["KeyId"], "region": region}
        )
    )
    meta: dict[str, Any] = {}
    with draft.observing(
        "is_customer_managed", "state", "spec", "is_rotation_applicable", "is_rotation_enabled"
    ):
        meta = (scan.call("kms", region, "DescribeKey", KeyId=key["KeyId"]) or {}).get(
            "KeyMetadata", {}
        )
        spec = meta.get("KeySpec") or meta.get("CustomerMasterKeySpec")
        applicable = (
            meta.get("KeyManager") == "CUSTOMER"
            and meta.get("KeyState") == "Enabled"
            and spec == "SYMMETRIC_DEFAULT"
            and meta.get("Origin", "AWS_KMS") == "AWS_KMS"
        )
        draft.facts.update(
            is_customer_managed=meta.get("KeyManager") == "CUSTOMER",
            state=meta.get("KeyState"),
            spec=spec,
            is_rotation_applicable=applicable,
        )
    if draft.facts.get("is_rotation_applicable"):
        with draft.observing("is_rotation_enabled"):
            status = scan.call("kms", region, "GetKeyRotationStatus", KeyId=key["KeyId"]) or {}
            draft.facts["is_rotation_enabled"] = bool(status.get("KeyRotationEnabled"))
    elif "is_rotation_applicable" in draft.facts:
        draft.facts["is_rotation_enabled"] = None


COLLECTOR = Collector(
    name="kms",
    service="kms",
    resource_types=(TYPE,),
    operations=(("kms", "ListKeys"), ("kms", "DescribeKey"), ("kms", "GetKeyRotationStatus")),
    run=run,
)
