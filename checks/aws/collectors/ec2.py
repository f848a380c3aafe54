"""EC2 in one region: security groups, network ACLs, instances, volumes, VPCs, EBS default.

Each family of resources comes from one paginated list call; attachments of security
groups come from one listing of network interfaces, flow logs from one listing, so the
number of calls does not grow with the number of resources.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from checks.aws import netrules
from checks.aws.collectors.base import Collector, Scan
from checks.clouddata import CallFailed, Draft

SG, NACL, INSTANCE, VOLUME, VPC = (
    "aws.ec2.security_group",
    "aws.ec2.network_acl",
    "aws.ec2.instance",
    "aws.ec2.volume",
    "aws.ec2.vpc",
)


def run(scan: Scan, region: str) -> None:
    """Every EC2 resource type of one region; one failing listing spares the others."""
    for observe, type_ in (
        (_security_groups, SG),
        (_network_acls, NACL),
        (_instances, INSTANCE),
        (_volumes, VOLUME),
        (_vpcs, VPC),
    ):
        try:
            observe(scan, region)
        except CallFailed as failed:
            scan.harvest.problem(_narrow(failed, type_, region))
    _ebs_default(scan, region)


def _narrow(failed: CallFailed, type_: str, region: str) -> Any:
    from dataclasses import replace

    return replace(
        failed.problem, resource_type=type_, message=f"{region}: {failed.problem.message}"
    )


def _security_groups(scan: Scan, region: str) -> None:
    groups = (scan.pages("ec2", region, "DescribeSecurityGroups") or {}).get("SecurityGroups", [])
    attached, why = _attachments(scan, region)
    for group in groups:
        draft = scan.harvest.add(Draft(SG, _sg_arn(scan, region, group), _sg_facts(group, region)))
        if why is None:
            count = attached.get(group["GroupId"], 0)
            draft.facts.update(attachment_count=count, is_attached=count > 0)
        else:
            draft.mark_unknown(why, "attachment_count", "is_attached")


def _sg_arn(scan: Scan, region: str, group: dict[str, Any]) -> str:
    return str(
        group.get("SecurityGroupArn")
        or scan.arn("ec2", region, f"security-group/{group['GroupId']}")
    )


def _sg_facts(group: dict[str, Any], region: str) -> dict[str, Any]:
    ingress = netrules.sg_entries(group.get("IpPermissions", []))
    egress = netrules.sg_entries(group.get("IpPermissionsEgress", []))
    admin = netrules.ADMIN_PORTS
    return {
        "group_id": group["GroupId"],
        "name": group.get("GroupName"),
        "region": region,
        "vpc_id": group.get("VpcId"),
        "is_default": group.get("GroupName") == "default",
        "ingress": ingress,
        "egress": egress,
        "rule_count": len(ingress) + len(egress),
        "world_open_admin_ports": netrules.world_open_ports(ingress, admin),
        "world_open_admin_ports_ipv4": netrules.world_open_ports(ingress, admin, "ipv4"),
        "world_open_admin_ports_ipv6": netrules.world_open_ports(ingress, admin, "ipv6"),
        "world_open_ports": netrules.world_open_ports(ingress, netrules.DATA_PORTS),
        "is_world_open_all_ports": any(e["is_world_open"] and e["is_all_ports"] for e in ingress),
    }


def _attachments(scan: Scan, region: str) -> tuple[Counter[str], Any]:
    """How many network interfaces use each group (or the problem that hid it)."""
    try:
        answer = scan.pages("ec2", region, "DescribeNetworkInterfaces") or {}
    except CallFailed as failed:
        return Counter(), failed.problem
    used = Counter(
        g["GroupId"] for eni in answer.get("NetworkInterfaces", []) for g in eni.get("Groups", [])
    )
    return used, None


def _network_acls(scan: Scan, region: str) -> None:
    acls = (scan.pages("ec2", region, "DescribeNetworkAcls") or {}).get("NetworkAcls", [])
    for acl in acls:
        ingress = netrules.nacl_entries(acl.get("Entries", []), egress=False)
        facts = {
            "network_acl_id": acl["NetworkAclId"],
            "region": region,
            "vpc_id": acl.get("VpcId"),
            "is_default": bool(acl.get("IsDefault")),
            "ingress": ingress,
            "world_open_admin_ports": netrules.nacl_world_open(ingress, netrules.ADMIN_PORTS),
            "subnet_ids": sorted(
                a["SubnetId"] for a in acl.get("Associations", []) if a.get("SubnetId")
            ),
        }
        key = scan.arn("ec2", region, f"network-acl/{acl['NetworkAclId']}")
        scan.harvest.add(Draft(NACL, key, facts))


def _instances(scan: Scan, region: str) -> None:
    answer = scan.pages("ec2", region, "DescribeInstances") or {}
    for reservation in answer.get("Reservations", []):
        for instance in reservation.get("Instances", []):
            if instance.get("State", {}).get("Name") == "terminated":
                continue
            key = scan.arn("ec2", region, f"instance/{instance['InstanceId']}")
            scan.harvest.add(Draft(INSTANCE, key, _instance_facts(instance, region)))


def _instance_facts(instance: dict[str, Any], region: str) -> dict[str, Any]:
    metadata = instance.get("MetadataOptions", {})
    tokens = metadata.get("HttpTokens", "optional")
    endpoint = metadata.get("HttpEndpoint", "enabled")
    public_ip = instance.get("PublicIpAddress")
    profile = instance.get("IamInstanceProfile", {}).get("Arn")
    return {
        "instance_id": instance["InstanceId"],
        "region": region,
        "state": instance.get("State", {}).get("Name"),
        "imds_http_tokens": tokens,
        "imds_endpoint": endpoint,
        "is_imdsv2_required": tokens == "required" or endpoint == "disabled",
        "public_ip": public_ip,
        "has_public_ip": bool(public_ip),
        "security_group_ids": sorted(g["GroupId"] for g in instance.get("SecurityGroups", [])),
        "vpc_id": instance.get("VpcId"),
        "subnet_id": instance.get("SubnetId"),
        "instance_profile_arn": profile,
        "has_instance_profile": bool(profile),
    }


def _volumes(scan: Scan, region: str) -> None:
    for volume in (scan.pages("ec2", region, "DescribeVolumes") or {}).get("Volumes", []):
        facts = {
            "volume_id": volume["VolumeId"],
            "region": region,
            "is_encrypted": bool(volume.get("Encrypted")),
            "kms_key_id": volume.get("KmsKeyId"),
            "state": volume.get("State"),
            "size_gib": volume.get("Size"),
            "attached_instance_ids": sorted(a["InstanceId"] for a in volume.get("Attachments", [])),
        }
        scan.harvest.add(
            Draft(VOLUME, scan.arn("ec2", region, f"volume/{volume['VolumeId']}"), facts)
        )


def _vpcs(scan: Scan, region: str) -> None:
    vpcs = (scan.pages("ec2", region, "DescribeVpcs") or {}).get("Vpcs", [])
    logs, why = _flow_logs(scan, region)
    for vpc in vpcs:
        facts = {
            "vpc_id": vpc["VpcId"],
            "region": region,
            "is_default": bool(vpc.get("IsDefault")),
            "cidr_block": vpc.get("CidrBlock"),
        }
        draft = scan.harvest.add(Draft(VPC, scan.arn("ec2", region, f"vpc/{vpc['VpcId']}"), facts))
        if why is not None:
            draft.mark_unknown(why, "flow_logs", "has_flow_logs")
            continue
        mine = logs.get(vpc["VpcId"], [])
        draft.facts.update(flow_logs=mine, has_flow_logs=any(f["is_active"] for f in mine))


def _flow_logs(scan: Scan, region: str) -> tuple[dict[str, list[dict[str, Any]]], Any]:
    try:
        answer = scan.pages("ec2", region, "DescribeFlowLogs") or {}
    except CallFailed as failed:
        return {}, failed.problem
    found: dict[str, list[dict[str, Any]]] = {}
    for log in answer.get("FlowLogs", []):
        found.setdefault(str(log.get("ResourceId")), []).append(
            {
                "flow_log_id": log.get("FlowLogId"),
                "traffic_type": log.get("TrafficType"),
                "is_active": log.get("FlowLogStatus", "ACTIVE") == "ACTIVE",
            }
        )
    return found, None


def _ebs_default(scan: Scan, region: str) -> None:
    try:
        answer = scan.call("ec2", region, "GetEbsEncryptionByDefault") or {}
        scan.harvest.regional(
            "ebs_encryption_by_default", region, bool(answer.get("EbsEncryptionByDefault"))
        )
    except CallFailed as failed:
        scan.harvest.regional("ebs_encryption_by_default", region, failed.problem)


COLLECTOR = Collector(
    name="ec2",
    service="ec2",
    resource_types=(SG, NACL, INSTANCE, VOLUME, VPC),
    operations=tuple(
        ("ec2", op)
        for op in (
            "DescribeSecurityGroups",
            "DescribeNetworkInterfaces",
            "DescribeNetworkAcls",
            "DescribeInstances",
            "DescribeVolumes",
            "DescribeVpcs",
            "DescribeFlowLogs",
            "GetEbsEncryptionByDefault",
        )
    ),
    run=run,
    account_facts=("ebs_encryption_by_default",),
)
