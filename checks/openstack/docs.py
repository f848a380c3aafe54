"""The resource types of the openstack family and their facts: part of the public contract."""

from __future__ import annotations

from audit.plugins import FactDoc, ResourceTypeDoc

_B, _I, _S, _L, _M = "boolean", "integer", "string", "list", "object"


def _type(name: str, description: str, *facts: tuple[str, str, str]) -> ResourceTypeDoc:
    return ResourceTypeDoc(name, description, tuple(FactDoc(*f) for f in facts))


_REGION = ("region", _S, "the region the resource was listed in")
RESOURCE_TYPES: tuple[ResourceTypeDoc, ...] = (
    _type(
        "openstack.project",
        "The project the token is scoped to (key openstack:project:<id>).",
        ("project_id", _S, "the project id Keystone scoped the token to"),
        ("project_name", _S, "its name"),
        ("cloud", _S, "the clouds.yaml entry scanned"),
        ("auth_url", _S, "the Keystone URL authenticated against"),
        ("regions", _L, "regions read (given, the cloud's region_name, or every region)"),
        ("services", _L, "service types the catalogue lists"),
        ("uses_application_credential", _B, "the scan authenticated with one"),
        (
            "is_identity_visible",
            _B,
            "Keystone let the audit role list users (public clouds often do not)",
        ),
    ),
    _type(
        "openstack.network.security_group",
        "A Neutron security group, its rules normalised, and whether a port uses it.",
        ("id", _S, "group id"),
        ("name", _S, "group name"),
        _REGION,
        ("project_id", _S, "owning project"),
        ("is_default", _B, "the project's default group"),
        ("is_stateful", _B, "stateful (the default) or stateless"),
        (
            "rules",
            _L,
            "one entry per rule: direction, ethertype, protocol (all, tcp, udp, icmp...), "
            "from_port, to_port, source (CIDR or group id; no remote = the whole ethertype), "
            "source_kind (ipv4, ipv6, security_group, address_group), is_world_open, "
            "is_all_ports, ports_covered (watched ports)",
        ),
        (
            "world_open_admin_ports",
            _L,
            "administration ports (22, 3389; the list shared with the AWS family) open to "
            "0.0.0.0/0 or ::/0 by an ingress rule",
        ),
        ("world_open_ports", _L, "other watched (database, file, cache...) ports open to all"),
        ("allows_all_ingress_from_world", _B, "an ingress rule opens every port to all"),
        ("is_attached", _B, "at least one port uses the group"),
        ("attached_ports", _I, "how many ports use it"),
    ),
    _type(
        "openstack.compute.server",
        "A Nova server: exposure, key pair, metadata keys (never values), config drive.",
        ("id", _S, "server id"),
        ("name", _S, "server name"),
        _REGION,
        ("status", _S, "ACTIVE, SHUTOFF..."),
        ("key_name", _S, "the key pair injected at boot (null: none)"),
        ("has_key_pair", _B, "a key pair was injected"),
        ("public_addresses", _L, "floating IPs and globally routable fixed addresses"),
        ("has_public_address", _B, "at least one public address"),
        ("metadata_keys", _L, "metadata keys (values are never read into facts)"),
        (
            "secret_metadata_keys",
            _L,
            "keys naming a secret (password, secret, token, api_key, private_key, credential, "
            "access_key, auth)",
        ),
        ("has_config_drive", _B, "metadata is served from a config drive"),
        ("security_groups", _L, "names of the groups attached"),
        ("is_locked", _B, "the server is locked against changes"),
    ),
    _type(
        "openstack.blockstorage.volume",
        "A Cinder volume: encryption (its volume type has an encryption spec), boot, use.",
        ("id", _S, "volume id"),
        ("name", _S, "volume name"),
        _REGION,
        ("volume_type", _S, "its volume type"),
        ("is_encrypted", _B, "Cinder's encrypted flag: the type has an encryption spec"),
        ("is_bootable", _B, "bootable"),
        ("is_attached", _B, "attached to a server"),
        ("attached_to", _L, "server ids"),
        ("status", _S, "available, in-use..."),
        ("size_gb", _I, "size in GiB"),
    ),
    _type(
        "openstack.objectstorage.container",
        "A Swift container: ACLs and versioning (key ...:container/<name>).",
        ("name", _S, "container name"),
        _REGION,
        ("object_count", _I, "objects it holds"),
        ("read_acl", _L, "X-Container-Read elements"),
        ("write_acl", _L, "X-Container-Write elements"),
        ("is_public_read", _B, "the read ACL holds .r:* (anyone may read objects)"),
        ("is_public_listing", _B, "public read and .rlistings (anyone may list)"),
        ("has_referrer_acl", _B, "a .r:<referrer> grant (trusts a header any client sets)"),
        ("is_world_writable", _B, "the write ACL holds *:* (any user of any project may write)"),
        ("is_versioned", _B, "object versioning on (X-Versions-Enabled or a versions location)"),
    ),
    _type(
        "openstack.image",
        "A Glance image visible to the project.",
        ("id", _S, "image id"),
        ("name", _S, "image name"),
        _REGION,
        ("visibility", _S, "public, community, shared or private"),
        ("is_public", _B, "visibility public"),
        ("is_shared", _B, "visibility shared or community"),
        ("is_protected", _B, "protected against deletion"),
        ("owner", _S, "owning project"),
        ("is_owned", _B, "the scanned project owns it (not the provider's catalogue)"),
    ),
    _type(
        "openstack.identity.user",
        "A Keystone user, when the audit role may list users.",
        ("id", _S, "user id"),
        ("name", _S, "user name"),
        ("domain_id", _S, "its domain"),
        ("is_enabled", _B, "enabled"),
        ("is_mfa_enabled", _B, "the multi_factor_auth_enabled option is set"),
        ("mfa_rules", _L, "multi_factor_auth_rules: lists of auth methods"),
        ("password_expires_at", _S, "when the password expires (null: never)"),
        ("has_password_expiry", _B, "the password expires"),
        ("ignores_password_expiry", _B, "exempt from password expiry (ignore_password_expiry)"),
        ("ignores_lockout", _B, "exempt from lockout (ignore_lockout_failure_attempts)"),
    ),
    _type(
        "openstack.identity.application_credential",
        "An application credential (of every listed user, else of the scanning user).",
        ("id", _S, "credential id"),
        ("name", _S, "credential name"),
        ("user_id", _S, "owner"),
        ("project_id", _S, "project it is bound to"),
        ("expires_at", _S, "expiry (null: never)"),
        ("has_expiry", _B, "it expires"),
        ("days_to_expiry", _I, "days left (negative: expired; null: never)"),
        ("is_unrestricted", _B, "may create further credentials and trusts"),
        ("roles", _L, "role names it carries"),
        ("has_access_rules", _B, "limited by access rules"),
    ),
    _type(
        "openstack.loadbalancer.listener",
        "An Octavia listener: clear or TLS, TLS versions, and whether its VIP is public.",
        ("id", _S, "listener id"),
        ("name", _S, "listener name"),
        _REGION,
        ("protocol", _S, "HTTP, HTTPS, TERMINATED_HTTPS, TCP, UDP, SCTP..."),
        ("port", _I, "protocol port"),
        ("is_clear_text", _B, "HTTP, TCP, UDP or SCTP (no TLS at the balancer)"),
        ("is_clear_http", _B, "protocol HTTP"),
        ("is_tls_terminated", _B, "TERMINATED_HTTPS"),
        ("tls_versions", _L, "TLS versions offered (Octavia API 2.17 and later)"),
        ("allows_legacy_tls", _B, "SSLv3, TLSv1 or TLSv1.1 offered"),
        ("client_authentication", _S, "NONE, OPTIONAL or MANDATORY"),
        ("loadbalancer_ids", _L, "balancers it belongs to"),
        ("vip_addresses", _L, "their VIP addresses"),
        ("is_exposed", _B, "a VIP address is globally routable"),
    ),
)
