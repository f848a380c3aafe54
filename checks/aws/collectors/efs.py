"""EFS file systems of one region: encryption at rest (CIS 2.4.1), from one listing."""

from __future__ import annotations

from checks.aws.collectors.base import Collector, Scan
from checks.clouddata import Draft

TYPE = "aws.efs.file_system"


def run(scan: Scan, region: str) -> None:
    """One resource per file system."""
    for fs in (scan.pages("efs", region, "DescribeFileSystems") or {}).get("FileSystems", []):
        fs_id = str(fs["FileSystemId"])
        key = str(
            fs.get("FileSystemArn") or scan.arn("elasticfilesystem", region, f"file-system/{fs_id}")
        )
        facts = {
            "file_system_id": fs_id,
            "region": region,
            "name": fs.get("Name"),
            "is_encrypted": bool(fs.get("Encrypted")),
            "kms_key_id": fs.get("KmsKeyId"),
        }
        scan.harvest.add(Draft(TYPE, key, facts))


COLLECTOR = Collector(
    name="efs",
    service="efs",
    resource_types=(TYPE,),
    operations=(("efs", "DescribeFileSystems"),),
    run=run,
)
