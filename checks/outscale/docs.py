"""The resource types of the outscale family and their facts: part of the public contract."""

from __future__ import annotations

from audit.plugins import FactDoc, ResourceTypeDoc

_B, _I, _S, _L = "boolean", "integer", "string", "list"


def _type(name: str, description: str, *facts: tuple[str, str, str]) -> ResourceTypeDoc:
    return ResourceTypeDoc(name, description, tuple(FactDoc(*f) for f in facts))


_REGION = ("region", _S, "the region the resource was listed in")
RESOURCE_TYPES: tuple[ResourceTypeDoc, ...] = (
    _type(
        "outscale.account",
        "The account and its API access policy (key outscale:account:<id>).",
        ("account_id", _S, "the account id ReadAccounts answered"),
        (
            "max_access_key_expiration_seconds",
            _I,
            "MaxAccessKeyExpirationSeconds: the longest lifetime allowed to access keys (0: none)",
        ),
        ("has_key_expiry_limit", _B, "access keys must expire (the maximum is above 0)"),
        ("require_trusted_env", _B, "RequireTrustedEnv: a trusted environment is required"),
    ),
    _type(
        "outscale.api_access_rule",
        "An API access rule: the source networks and client CAs that may call the API.",
        ("id", _S, "rule id"),
        ("description", _S, "its description"),
        ("ip_ranges", _L, "source IP ranges (CIDR)"),
        ("ca_ids", _L, "client certificate authorities the rule requires"),
        ("cns", _L, "client certificate common names"),
        ("requires_client_certificate", _B, "a client certificate from a listed CA is required"),
        ("is_world_open", _B, "0.0.0.0/0 is allowed without a client certificate"),
    ),
    _type(
        "outscale.access_key",
        "An access key of the account.",
        ("id", _S, "access key id (never the secret)"),
        ("state", _S, "ACTIVE or INACTIVE"),
        ("is_active", _B, "ACTIVE"),
        ("expiration_date", _S, "when it expires (null: never)"),
        ("has_expiry", _B, "it expires"),
        ("days_to_expiry", _I, "days left (negative: expired; null: never)"),
    ),
    _type(
        "outscale.volume",
        "A BSU volume (the OAPI does not expose encryption at rest for volumes).",
        ("id", _S, "volume id"),
        _REGION,
        ("state", _S, "creating, available, in-use..."),
        ("volume_type", _S, "standard, gp2, io1"),
        ("size_gib", _I, "size in GiB"),
        ("is_attached", _B, "linked to a VM"),
        ("attached_to", _L, "VM ids"),
    ),
    _type(
        "outscale.snapshot",
        "A snapshot the account owns, and who may create volumes from it.",
        ("id", _S, "snapshot id"),
        _REGION,
        ("volume_id", _S, "source volume"),
        ("is_public", _B, "GlobalPermission: every account may copy it"),
        ("shared_with_accounts", _L, "accounts it is shared with"),
    ),
    _type(
        "outscale.public_ip",
        "A public IP of the account.",
        ("id", _S, "public IP id"),
        _REGION,
        ("public_ip", _S, "the address"),
        ("vm_id", _S, "the VM it is linked to (null: none)"),
        ("is_attached", _B, "linked to a VM or a NIC"),
    ),
    _type(
        "outscale.security_group",
        "A security group as the OAPI shows it (the aws family judges them through FCU; "
        "these facts serve the cross-check, and no outscale-baseline rule repeats them).",
        ("id", _S, "group id"),
        ("name", _S, "group name"),
        _REGION,
        ("world_open_admin_ports", _L, "administration ports (shared list) open to 0.0.0.0/0"),
        ("world_open_ports", _L, "other watched ports open to 0.0.0.0/0"),
    ),
)
