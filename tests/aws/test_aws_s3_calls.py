"""S3 calls spared only where the answer is certain: regions placed by filtered listings
that were seen to work, and Object Lock read only where versioning allows it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from audit.models import Observation
from checks.aws.lab import Lab
from checks.aws.session import Api

from .conftest import FaultProxy, context, scan

WEST3 = [f"placed-paris-{i}" for i in range(5)]
WEST1 = [f"placed-dublin-{i}" for i in range(3)]
LOCKED, SUSPENDED = "placed-locked", "placed-suspended"


@pytest.fixture(scope="module")
def buckets(aws_env: dict[str, str]) -> Iterator[Lab]:
    """Buckets in two regions, one with Object Lock, one with versioning suspended."""
    with Lab() as lab:
        s3 = lab.client("s3")
        made = []
        for name, region in [
            *((n, "eu-west-3") for n in WEST3),
            *((n, "eu-west-1") for n in WEST1),
        ]:
            _client(lab, region).create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
            )
            made.append(name)
        s3.create_bucket(
            Bucket=LOCKED,
            CreateBucketConfiguration={"LocationConstraint": "eu-west-3"},
            ObjectLockEnabledForBucket=True,
        )
        s3.create_bucket(
            Bucket=SUSPENDED, CreateBucketConfiguration={"LocationConstraint": "eu-west-3"}
        )
        s3.put_bucket_versioning(Bucket=SUSPENDED, VersioningConfiguration={"Status": "Suspended"})
        made += [LOCKED, SUSPENDED]
        yield lab
        for name in made:  # moto keeps one state per process: leave the shared lab as found
            s3.delete_bucket(Bucket=name)


def s3_scan(url: str, regions: str) -> tuple[Observation, Api]:
    """A provider offering only S3 at ``url``: only buckets are read, which keeps it quick."""
    observation: Observation
    api: Api
    observation, api = scan(f"aws://?regions={regions}", context(endpoints={"s3": url}))
    return observation, api


def _client(lab: Lab, region: str) -> Any:
    """An S3 client of the lab in ``region`` (S3 checks the constraint against it)."""
    dublin = Lab(region)
    dublin.url = lab.url
    return dublin.client("s3")


def _buckets(observation: Any) -> dict[str, Any]:
    return {r.facts["name"]: r for r in observation.resources if r.type == "aws.s3.bucket"}


def _truth(lab: Lab, names: list[str]) -> dict[str, str]:
    s3 = lab.client("s3")
    return {n: s3.get_bucket_location(Bucket=n)["LocationConstraint"] or "us-east-1" for n in names}


def test_filtered_listings_place_buckets_of_scanned_regions(buckets: Lab) -> None:
    observation, api = s3_scan(buckets.url, "eu-west-3,eu-west-1")
    found = _buckets(observation)
    truth = _truth(buckets, sorted(found))
    assert {n: b.facts["region"] for n, b in found.items()} == truth
    assert api.calls[("s3", "GetBucketLocation")] == 1  # the probe that proves the filter
    assert api.calls[("s3", "ListBuckets")] == 3  # everything, then one per scanned region


def test_buckets_outside_the_scanned_regions_are_asked_one_by_one(buckets: Lab) -> None:
    observation, api = s3_scan(buckets.url, "eu-west-3")
    found = _buckets(observation)
    truth = _truth(buckets, sorted(found))
    assert {n: b.facts["region"] for n, b in found.items()} == truth
    elsewhere = sum(1 for r in truth.values() if r != "eu-west-3")
    assert api.calls[("s3", "GetBucketLocation")] in (elsewhere, elsewhere + 1)
    # one listing for eu-west-3 and one for another region, to see the filter exclude
    assert api.calls[("s3", "ListBuckets")] == 3


def _name_regions(operation: str, body: bytes) -> bytes:
    """Answer ListBuckets as AWS does now: each bucket with its region."""
    if operation != "GET /":
        return body
    return re.sub(
        rb"<Name>([^<]+)</Name>",
        lambda m: (
            m.group(0)
            + b"<BucketRegion>"
            + (b"eu-west-1" if b"dublin" in m.group(1) else b"eu-west-3")
            + b"</BucketRegion>"
        ),
        body,
    )


def test_regions_named_by_the_listing_cost_no_call(buckets: Lab) -> None:
    with FaultProxy(buckets.url, set(), set(), rewrite=_name_regions) as proxy:
        observation, api = s3_scan(proxy.url, "eu-west-3")
    found = _buckets(observation)
    assert {n: b.facts["region"] for n, b in found.items()} == _truth(buckets, sorted(found))
    assert api.calls[("s3", "GetBucketLocation")] == 0
    assert api.calls[("s3", "ListBuckets")] == 1


def test_a_provider_ignoring_the_region_filter_gets_one_location_call_per_bucket(
    buckets: Lab,
) -> None:
    with FaultProxy(buckets.url, set(), set(), frozenset({"bucket-region"})) as proxy:
        observation, api = s3_scan(proxy.url, "eu-west-3")
    found = _buckets(observation)
    assert {n: b.facts["region"] for n, b in found.items()} == _truth(buckets, sorted(found))
    assert api.calls[("s3", "GetBucketLocation")] == len(found)  # the probe kept, then each


def test_object_lock_is_read_only_where_versioning_is_enabled(buckets: Lab) -> None:
    observation, api = s3_scan(buckets.url, "eu-west-3")
    found = _buckets(observation)
    assert found[LOCKED].facts["is_object_lock_enabled"] is True
    assert found[LOCKED].facts["versioning"] == "Enabled"
    assert found[SUSPENDED].facts["versioning"] == "Suspended"
    assert found[SUSPENDED].facts["is_object_lock_enabled"] is False
    assert found[WEST3[0]].facts["is_object_lock_enabled"] is False
    versioned = sum(1 for b in found.values() if b.facts["versioning"] == "Enabled")
    assert api.calls[("s3", "GetObjectLockConfiguration")] == versioned


def test_denied_versioning_still_reads_the_lock(buckets: Lab) -> None:
    with FaultProxy(buckets.url, {"GetBucketVersioning"}, set()) as proxy:
        observation, _ = s3_scan(proxy.url, "eu-west-3")
    locked = _buckets(observation)[LOCKED]
    assert "versioning" in locked.unknown
    assert locked.facts["is_object_lock_enabled"] is True
