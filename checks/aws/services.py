"""The botocore services an AWS scan may call, as plain data.

Option parsing (``endpoints: {s3: …}``) needs this list to refuse a typo before a scan,
and the collectors, which declare the calls they make, need the session: keeping the list
here, with a test that it equals what the collectors declare, lets the session module
depend on no collector (no import circle between them).
"""

from __future__ import annotations

CALLED_SERVICES = frozenset(
    {
        "accessanalyzer",
        "account",
        "cloudtrail",
        "cloudwatch",
        "config",
        "ec2",
        "efs",
        "iam",
        "kms",
        "logs",
        "rds",
        "s3",
        "s3control",
        "securityhub",
        "sns",
        "sts",
    }
)
"""STS (the caller's identity), EC2 (the regions) and every service a collector declares."""
