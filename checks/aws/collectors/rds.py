"""RDS instances of one region: encryption, exposure, upgrades and backups (CIS 2.3).

DescribeDBInstances returns every fact the benchmark needs: one paginated call.
"""

from __future__ import annotations

from typing import Any

from checks.aws.collectors.base import Collector, Scan
from checks.clouddata import Draft

TYPE = "aws.rds.instance"


def run(scan: Scan, region: str) -> None:
    """One resource per database instance."""
    for db in (scan.pages("rds", region, "DescribeDBInstances") or {}).get("DBInstances", []):
        key = str(
            db.get("DBInstanceArn") or scan.arn("rds", region, f"db:{db['DBInstanceIdentifier']}")
        )
        scan.harvest.add(Draft(TYPE, key, facts(db, region)))


def facts(db: dict[str, Any], region: str) -> dict[str, Any]:
    """The facts of one instance description."""
    return {
        "db_instance_id": db.get("DBInstanceIdentifier"),
        "region": region,
        "engine": db.get("Engine"),
        "engine_version": db.get("EngineVersion"),
        "is_encrypted": bool(db.get("StorageEncrypted")),
        "kms_key_id": db.get("KmsKeyId"),
        "is_public": bool(db.get("PubliclyAccessible")),
        "auto_minor_version_upgrade": bool(db.get("AutoMinorVersionUpgrade")),
        "backup_retention_days": int(db.get("BackupRetentionPeriod") or 0),
        "is_multi_az": bool(db.get("MultiAZ")),
        "deletion_protection": bool(db.get("DeletionProtection")),
    }


COLLECTOR = Collector(
    name="rds",
    service="rds",
    resource_types=(TYPE,),
    operations=(("rds", "DescribeDBInstances"),),
    run=run,
)
