"""One module per service; each declares the API operations it calls.

``PHASE_ONE`` collectors are independent and run concurrently (per region for regional
services), longest first: S3 (several calls per bucket) starts its fan-out before the
services that cost a few list calls; ``PHASE_TWO`` ones read what phase one found (the
monitoring of trails).
"""

from __future__ import annotations

from checks.aws.collectors import cloudtrail, ec2, efs, governance, iam, kms, rds, s3
from checks.aws.collectors.base import Collector

PHASE_ONE: tuple[Collector, ...] = (
    s3.COLLECTOR,
    iam.COLLECTOR,
    ec2.COLLECTOR,
    cloudtrail.COLLECTOR,
    kms.COLLECTOR,
    rds.COLLECTOR,
    efs.COLLECTOR,
    *governance.COLLECTORS,
)
PHASE_TWO: tuple[Collector, ...] = (cloudtrail.WATCH,)
ALL: tuple[Collector, ...] = PHASE_ONE + PHASE_TWO
