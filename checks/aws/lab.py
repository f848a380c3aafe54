"""A disposable AWS lab: a moto server on loopback seeded with flawed and clean resources.

Used by the tests and by ``rempart demo``: :class:`Lab` starts a ``ThreadedMotoServer`` on
127.0.0.1 (port chosen by the system), :meth:`Lab.seed` plants a realistic account (a
public bucket, SSH and RDP open to the world, an unencrypted volume, a console user
without MFA, no CloudTrail, ... next to clean counterparts), and :meth:`Lab.fix` remediates
the main flaws so a second scan shows findings resolved. Nothing here is imported by a
scan; moto is only needed when a lab is started.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audit.labkit import DemoContext, DemoPart

ACCOUNT_ID = "123456789012"
REGION = "eu-west-3"
LAB_ACCESS_KEY = "testing"
LAB_SECRET_KEY = "testing-secret-0f1e2d3c"  # noqa: S105 - fake credential for a loopback lab
ADMIN_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
}
READ_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}


@dataclass
class Planted:
    """Names and ids of what :meth:`Lab.seed` created, for tests and the demo."""

    public_bucket: str = "lab-public-data"
    private_bucket: str = "lab-private-data"
    log_bucket: str = "lab-access-logs"
    open_admin_group: str = ""
    web_group: str = ""
    unencrypted_volume: str = ""
    encrypted_volume: str = ""
    console_user: str = "lab-console-nomfa"
    clean_user: str = "lab-service-clean"
    admin_policy: str = "lab-admin-star"
    clean_policy: str = "lab-read-objects"
    imdsv1_instance: str = ""
    imdsv2_instance: str = ""
    server_certificate: str = "lab-legacy-tls"
    extra: dict[str, str] = field(default_factory=dict)


class Lab:
    """A moto server on loopback and the fake account it serves."""

    def __init__(self, region: str = REGION):
        self.region = region
        self.planted = Planted()
        self._server: Any = None
        self.url = ""

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Lab:
        """Start the server on 127.0.0.1 and a free port."""
        os.environ.setdefault("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.url = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Lab:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """The environment a scan of the lab needs (fake credentials, lab region)."""
        return {
            "AWS_ACCESS_KEY_ID": LAB_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": LAB_SECRET_KEY,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def target(self) -> str:
        """The aws:// URI that scans the lab."""
        return f"aws://?endpoint={self.url}&regions={self.region}"

    def client(self, service: str) -> Any:
        """A boto3 client on the lab (explicit fake credentials, never the environment's)."""
        import boto3

        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=LAB_ACCESS_KEY,
            aws_secret_access_key=LAB_SECRET_KEY,
        )

    # -- seeding --------------------------------------------------------------------------

    def seed(self) -> Planted:
        """Plant the flawed account and its clean counterparts."""
        self._buckets()
        self._network()
        self._compute()
        self._identities()
        self._keys_and_databases()
        return self.planted

    def _buckets(self) -> None:
        s3 = self.client("s3")
        where = {"LocationConstraint": self.region}
        p = self.planted
        for name in (p.public_bucket, p.private_bucket, p.log_bucket):
            s3.create_bucket(Bucket=name, CreateBucketConfiguration=where)
        s3.put_bucket_acl(Bucket=p.log_bucket, ACL="log-delivery-write")
        s3.put_bucket_acl(Bucket=p.public_bucket, ACL="public-read")
        s3.put_bucket_policy(
            Bucket=p.public_bucket,
            Policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": "*",
                            "Action": "s3:GetObject",
                            "Resource": f"arn:aws:s3:::{p.public_bucket}/*",
                        }
                    ],
                }
            ),
        )
        self._harden_bucket(s3, p.private_bucket)

    def _harden_bucket(self, s3: Any, name: str) -> None:
        """Everything the benchmark asks of a bucket."""
        block = {
            k: True
            for k in (
                "BlockPublicAcls",
                "IgnorePublicAcls",
                "BlockPublicPolicy",
                "RestrictPublicBuckets",
            )
        }
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
        s3.put_bucket_policy(
            Bucket=name,
            Policy=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Sid": "TlsOnly",
                            "Effect": "Deny",
                            "Principal": "*",
                            "Action": "s3:*",
                            "Resource": [f"arn:aws:s3:::{name}", f"arn:aws:s3:::{name}/*"],
                            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                        }
                    ],
                }
            ),
        )
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}}]
            },
        )
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_logging(
            Bucket=name,
            BucketLoggingStatus={
                "LoggingEnabled": {
                    "TargetBucket": self.planted.log_bucket,
                    "TargetPrefix": f"{name}/",
                }
            },
        )

    def _network(self) -> None:
        ec2 = self.client("ec2")
        vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0][
            "VpcId"
        ]
        p = self.planted
        p.open_admin_group = ec2.create_security_group(
            GroupName="lab-open-admin", Description="admin ports open", VpcId=vpc
        )["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=p.open_admin_group,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                },
                {
                    "IpProtocol": "tcp",
                    "FromPort": 3389,
                    "ToPort": 3389,
                    "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
                },
            ],
        )
        p.web_group = ec2.create_security_group(
            GroupName="lab-web", Description="https only", VpcId=vpc
        )["GroupId"]
        ec2.authorize_security_group_ingress(
            GroupId=p.web_group,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 443,
                    "ToPort": 443,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                },
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "10.0.0.0/8"}],
                },
            ],
        )
        p.extra["vpc"] = vpc

    def _compute(self) -> None:
        ec2 = self.client("ec2")
        p = self.planted
        zone = f"{self.region}a"
        p.unencrypted_volume = ec2.create_volume(AvailabilityZone=zone, Size=8)["VolumeId"]
        p.encrypted_volume = ec2.create_volume(AvailabilityZone=zone, Size=8, Encrypted=True)[
            "VolumeId"
        ]
        common = {
            "ImageId": "ami-12c6146b",
            "MinCount": 1,
            "MaxCount": 1,
            "InstanceType": "t3.micro",
        }
        p.imdsv1_instance = ec2.run_instances(
            **common, SecurityGroupIds=[p.web_group], MetadataOptions={"HttpTokens": "optional"}
        )["Instances"][0]["InstanceId"]
        p.imdsv2_instance = ec2.run_instances(
            **common, SecurityGroupIds=[p.web_group], MetadataOptions={"HttpTokens": "required"}
        )["Instances"][0]["InstanceId"]

    def _identities(self) -> None:
        iam = self.client("iam")
        p = self.planted
        iam.create_user(UserName=p.console_user)
        iam.create_login_profile(UserName=p.console_user, Password="Lab-Passw0rd-Not-Secret!")  # noqa: S106
        iam.put_user_policy(
            UserName=p.console_user,
            PolicyName="inline-admin",
            PolicyDocument=json.dumps(ADMIN_POLICY),
        )
        iam.create_group(GroupName="lab-readers")
        iam.create_user(UserName=p.clean_user)
        iam.add_user_to_group(GroupName="lab-readers", UserName=p.clean_user)
        admin = iam.create_policy(
            PolicyName=p.admin_policy, PolicyDocument=json.dumps(ADMIN_POLICY)
        )
        iam.create_group(GroupName="lab-admins")
        iam.attach_group_policy(GroupName="lab-admins", PolicyArn=admin["Policy"]["Arn"])
        arn = iam.create_policy(PolicyName=p.clean_policy, PolicyDocument=json.dumps(READ_POLICY))[
            "Policy"
        ]["Arn"]
        iam.attach_group_policy(GroupName="lab-readers", PolicyArn=arn)
        iam.upload_server_certificate(
            ServerCertificateName=p.server_certificate, **_self_signed_pem("lab-legacy.example")
        )

    def _keys_and_databases(self) -> None:
        kms = self.client("kms")
        p = self.planted
        p.extra["key_no_rotation"] = kms.create_key(Description="lab key")["KeyMetadata"]["KeyId"]
        rotated = kms.create_key(Description="lab rotated key")["KeyMetadata"]["KeyId"]
        kms.enable_key_rotation(KeyId=rotated)
        p.extra["key_rotation"] = rotated
        rds = self.client("rds")
        base = {
            "DBInstanceClass": "db.t3.micro",
            "Engine": "postgres",
            "AllocatedStorage": 20,
            "MasterUsername": "labadmin",
            "MasterUserPassword": "Lab-Db-Passw0rd",
        }
        rds.create_db_instance(
            DBInstanceIdentifier="lab-db-exposed",
            PubliclyAccessible=True,
            StorageEncrypted=False,
            **base,
        )
        rds.create_db_instance(
            DBInstanceIdentifier="lab-db-private",
            PubliclyAccessible=False,
            StorageEncrypted=True,
            BackupRetentionPeriod=7,
            **base,
        )
        efs = self.client("efs")
        efs.create_file_system(CreationToken="lab-efs-plain", Encrypted=False)
        efs.create_file_system(CreationToken="lab-efs-encrypted", Encrypted=True)

    # -- remediation ----------------------------------------------------------------------

    def fix(self) -> None:
        """Remediate the main flaws: bucket exposure, admin ports, password policy,
        CloudTrail, EBS default encryption, flow logs and root-level guard rails."""
        p = self.planted
        s3 = self.client("s3")
        s3.delete_bucket_policy(Bucket=p.public_bucket)
        s3.put_bucket_acl(Bucket=p.public_bucket, ACL="private")
        self._harden_bucket(s3, p.public_bucket)
        ec2 = self.client("ec2")
        ec2.revoke_security_group_ingress(
            GroupId=p.open_admin_group,
            IpPermissions=[
                {
                    "IpProtocol": "tcp",
                    "FromPort": 22,
                    "ToPort": 22,
                    "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                },
                {
                    "IpProtocol": "tcp",
                    "FromPort": 3389,
                    "ToPort": 3389,
                    "Ipv6Ranges": [{"CidrIpv6": "::/0"}],
                },
            ],
        )
        ec2.enable_ebs_encryption_by_default()
        ec2.create_flow_logs(
            ResourceIds=[p.extra["vpc"]],
            ResourceType="VPC",
            TrafficType="ALL",
            LogDestinationType="s3",
            LogDestination=f"arn:aws:s3:::{p.log_bucket}",
        )
        self.client("iam").update_account_password_policy(
            MinimumPasswordLength=14,
            PasswordReusePrevention=24,
            RequireSymbols=True,
            RequireNumbers=True,
            RequireUppercaseCharacters=True,
            RequireLowercaseCharacters=True,
        )
        self._trail()

    def _trail(self) -> None:
        key = self.client("kms").create_key(Description="trail key")["KeyMetadata"]["Arn"]
        ct = self.client("cloudtrail")
        ct.create_trail(
            Name="lab-trail",
            S3BucketName=self.planted.log_bucket,
            IsMultiRegionTrail=True,
            EnableLogFileValidation=True,
            KmsKeyId=key,
        )
        ct.put_event_selectors(
            TrailName="lab-trail",
            EventSelectors=[
                {
                    "ReadWriteType": "All",
                    "IncludeManagementEvents": True,
                    "DataResources": [{"Type": "AWS::S3::Object", "Values": ["arn:aws:s3"]}],
                }
            ],
        )
        ct.start_logging(Name="lab-trail")


def _self_signed_pem(name: str) -> dict[str, str]:
    """A throwaway certificate and key for IAM's server-certificate store (CIS 1.19);
    the service answers with its own expiry date, long past, as a forgotten one has."""
    from audit.labkit import key_pem, pem, self_signed

    cert, key = self_signed((name,), days_valid=(-400, -30))
    return {"CertificateBody": pem(cert).decode(), "PrivateKey": key_pem(key).decode()}


def demo_part(ctx: DemoContext) -> DemoPart:
    """The cloud part of ``rempart demo``: the seeded account, and :meth:`Lab.fix`
    between the two scans (needs moto, the ``demo`` extra)."""
    from audit.labkit import DemoPart
    from audit.labkit.demo import BACKOFFICE

    part = DemoPart(
        order=30,
        policies=("aws-baseline", "cis-aws-foundations"),
        scope={"aws": {"accounts": [ACCOUNT_ID]}},
    )
    try:
        import moto.server  # noqa: F401
    except ImportError:
        part.notes.append(
            "moto is not installed: the cloud part was skipped (pip install 'rempart[demo]')"
        )
        return part
    lab = ctx.stack.enter_context(Lab())
    lab.seed()
    part.environment = lab.environment()
    part.add(BACKOFFICE, lab.target())
    part.fix = lab.fix
    return part
