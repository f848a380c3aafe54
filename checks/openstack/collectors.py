"""One collector per OpenStack service; each declares the calls it makes.

Facts are computed here, from the answers' documented fields (see :mod:`checks.openstack.
docs`). Two OpenStack meanings are easy to get wrong and are made explicit:

- a Neutron ingress rule with neither ``remote_ip_prefix`` nor ``remote_group_id`` admits
  every address of its ethertype, so it is open to ``0.0.0.0/0`` (IPv4) or ``::/0`` (IPv6);
- a Swift referrer ACL (``.r:example.org``) trusts a header any client sets, so only
  ``.r:*`` is "public" but every ``.r:`` grant is reported.

Server metadata values are never copied (they may be the very secrets a rule looks for):
only the keys are.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from checks.clouddata import CallFailed, Draft
from checks.netports import ADMIN_PORTS, DATA_PORTS, WATCHED_PORTS, WORLD
from checks.openstack.harvest import Call, Collector, Scan

SG = "openstack.network.security_group"
SERVER = "openstack.compute.server"
VOLUME = "openstack.blockstorage.volume"
CONTAINER = "openstack.objectstorage.container"
IMAGE = "openstack.image"
USER = "openstack.identity.user"
APP_CREDENTIAL = "openstack.identity.application_credential"
LISTENER = "openstack.loadbalancer.listener"

SECRET_KEY = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[_-]?key|private[_-]?key|credential|"
    r"access[_-]?key|auth",
    re.IGNORECASE,
)
"""Metadata keys that name a secret (the values themselves are never read into facts)."""
LEGACY_TLS = frozenset({"SSLv3", "TLSv1", "TLSv1.1"})
CLEAR_PROTOCOLS = frozenset({"HTTP", "TCP", "UDP", "SCTP"})
_PORT_PROTOCOLS = ("all", "tcp", "udp")


# --- network ---------------------------------------------------------------------------

LIST_SGS = Call("network", "GET", "/v2.0/security-groups", "get_security_group")
LIST_PORTS = Call("network", "GET", "/v2.0/ports", "get_port")


def run_network(scan: Scan) -> None:
    groups = scan.pages(LIST_SGS, "security_groups")
    drafts = [scan.harvest.add(_security_group(scan, g)) for g in groups]
    try:
        ports = scan.pages(LIST_PORTS, "ports", fields=["id", "security_groups"])
    except CallFailed as failed:
        for draft in drafts:
            draft.mark_unknown(failed.problem, "is_attached", "attached_ports")
        return
    used: dict[str, int] = {}
    for port in ports:
        for group in port.get("security_groups") or []:
            used[str(group)] = used.get(str(group), 0) + 1
    for draft in drafts:
        count = used.get(str(draft.facts["id"]), 0)
        draft.facts.update(is_attached=count > 0, attached_ports=count)


def _security_group(scan: Scan, group: dict[str, Any]) -> Draft:
    rules = [rule_entry(r) for r in group.get("security_group_rules") or []]
    ingress = [r for r in rules if r["direction"] == "ingress"]
    return Draft(
        SG,
        scan.key("security_group", str(group.get("id"))),
        {
            "id": str(group.get("id")),
            "name": str(group.get("name") or ""),
            "region": scan.region,
            "project_id": str(group.get("project_id") or group.get("tenant_id") or ""),
            "is_default": group.get("name") == "default",
            "is_stateful": bool(group.get("stateful", True)),
            "rules": rules,
            "world_open_admin_ports": world_open_ports(ingress, ADMIN_PORTS),
            "world_open_ports": world_open_ports(ingress, DATA_PORTS),
            "allows_all_ingress_from_world": any(
                r["is_world_open"] and r["is_all_ports"] for r in ingress
            ),
        },
    )


def rule_entry(rule: dict[str, Any]) -> dict[str, Any]:
    """One Neutron rule, normalised: protocol, port range, source and what it opens."""
    protocol = _protocol(rule.get("protocol"))
    low, high = _ports(protocol, rule.get("port_range_min"), rule.get("port_range_max"))
    ethertype = str(rule.get("ethertype") or "IPv4")
    if rule.get("remote_group_id"):
        source, kind = str(rule["remote_group_id"]), "security_group"
    elif rule.get("remote_address_group_id"):
        source, kind = str(rule["remote_address_group_id"]), "address_group"
    else:  # no remote at all: every address of the ethertype
        default = "::/0" if ethertype == "IPv6" else "0.0.0.0/0"
        source = _cidr(rule.get("remote_ip_prefix") or default)
        kind = "ipv6" if ":" in source else "ipv4"
    covered = (
        [p for p in WATCHED_PORTS if low is not None and high is not None and low <= p <= high]
        if protocol in _PORT_PROTOCOLS
        else []
    )
    return {
        "direction": str(rule.get("direction") or "ingress"),
        "ethertype": ethertype,
        "protocol": protocol,
        "from_port": low,
        "to_port": high,
        "source": source,
        "source_kind": kind,
        "is_world_open": source in WORLD,
        "is_all_ports": protocol == "all" or (low == 0 and high == 65535),
        "ports_covered": covered,
    }


def _protocol(value: Any) -> str:
    text = "all" if value in (None, "", "any") else str(value).lower()
    return {"6": "tcp", "17": "udp", "1": "icmp", "58": "ipv6-icmp"}.get(text, text)


def _ports(protocol: str, low: Any, high: Any) -> tuple[int | None, int | None]:
    if protocol == "all":
        return 0, 65535
    if protocol not in ("tcp", "udp"):
        return None, None
    if low is None:
        return 0, 65535
    return int(low), int(high if high is not None else low)


def _cidr(value: str) -> str:
    """A prefix as Neutron may write it (``0.0.0.0/0``, ``::0/0``), made canonical."""
    try:
        return str(ipaddress.ip_network(value, strict=False))
    except ValueError:
        return value


def world_open_ports(entries: list[dict[str, Any]], ports: tuple[int, ...]) -> list[int]:
    """Which of ``ports`` (TCP or UDP) an Internet-wide source reaches."""
    return sorted(
        {p for e in entries if e["is_world_open"] for p in e["ports_covered"] if p in ports}
    )


# --- compute ---------------------------------------------------------------------------

LIST_SERVERS = Call("compute", "GET", "/servers/detail", "os_compute_api:servers:detail")


def run_compute(scan: Scan) -> None:
    for server in scan.pages(LIST_SERVERS, "servers"):
        scan.harvest.add(_server(scan, server))


def _server(scan: Scan, server: dict[str, Any]) -> Draft:
    addresses = [
        a
        for network in (server.get("addresses") or {}).values()
        if isinstance(network, list)
        for a in network
        if isinstance(a, dict)
    ]
    public = sorted(
        {
            str(a.get("addr"))
            for a in addresses
            if a.get("OS-EXT-IPS:type") == "floating" or _is_global(a.get("addr"))
        }
    )
    keys = sorted(str(k) for k in (server.get("metadata") or {}))
    return Draft(
        SERVER,
        scan.key("server", str(server.get("id"))),
        {
            "id": str(server.get("id")),
            "name": str(server.get("name") or ""),
            "region": scan.region,
            "status": str(server.get("status") or ""),
            "key_name": server.get("key_name"),
            "has_key_pair": bool(server.get("key_name")),
            "public_addresses": public,
            "has_public_address": bool(public),
            "metadata_keys": keys,
            "secret_metadata_keys": [k for k in keys if SECRET_KEY.search(k)],
            "has_config_drive": str(server.get("config_drive") or "").lower() in ("true", "1"),
            "security_groups": sorted(
                {str(g.get("name")) for g in server.get("security_groups") or []}
            ),
            "is_locked": bool(server.get("locked", False)),
        },
    )


def _is_global(address: Any) -> bool:
    try:
        return ipaddress.ip_address(str(address)).is_global
    except ValueError:
        return False


# --- block storage ---------------------------------------------------------------------

LIST_VOLUMES = Call("block-storage", "GET", "/volumes/detail", "volume:get_all")


def run_volumes(scan: Scan) -> None:
    for volume in scan.pages(LIST_VOLUMES, "volumes"):
        attachments = [a for a in volume.get("attachments") or [] if isinstance(a, dict)]
        scan.harvest.add(
            Draft(
                VOLUME,
                scan.key("volume", str(volume.get("id"))),
                {
                    "id": str(volume.get("id")),
                    "name": str(volume.get("name") or ""),
                    "region": scan.region,
                    "volume_type": volume.get("volume_type"),
                    "is_encrypted": bool(volume.get("encrypted")),
                    "is_bootable": str(volume.get("bootable")).lower() == "true",
                    "is_attached": bool(attachments),
                    "attached_to": sorted({str(a.get("server_id")) for a in attachments}),
                    "status": str(volume.get("status") or ""),
                    "size_gb": int(volume.get("size") or 0),
                },
            )
        )


# --- image -----------------------------------------------------------------------------

LIST_IMAGES = Call("image", "GET", "/v2/images", "get_images")


def run_images(scan: Scan) -> None:
    for image in scan.pages(LIST_IMAGES, "images"):
        visibility = str(image.get("visibility") or "private")
        scan.harvest.add(
            Draft(
                IMAGE,
                scan.key("image", str(image.get("id"))),
                {
                    "id": str(image.get("id")),
                    "name": str(image.get("name") or ""),
                    "region": scan.region,
                    "visibility": visibility,
                    "is_public": visibility == "public",
                    "is_shared": visibility in ("shared", "community"),
                    "is_protected": bool(image.get("protected")),
                    "owner": str(image.get("owner") or ""),
                    "is_owned": image.get("owner") == scan.project_id,
                },
            )
        )


# --- object storage --------------------------------------------------------------------

LIST_CONTAINERS = Call(
    "object-store", "GET", "/", "swift operator or project reader role (keystoneauth)"
)
HEAD_CONTAINER = Call(
    "object-store", "HEAD", "/{container}", "swift operator or project reader role"
)


def run_containers(scan: Scan) -> None:
    listing = scan.get(LIST_CONTAINERS, "", format="json")
    if not isinstance(listing, list):
        listing = []
    drafts = []
    for item in listing:
        if not isinstance(item, dict) or not item.get("name"):
            continue
        name = str(item["name"])
        draft = Draft(
            CONTAINER,
            scan.key("container", name),
            {"name": name, "region": scan.region, "object_count": int(item.get("count") or 0)},
        )
        drafts.append(scan.harvest.add(draft))
    for draft in drafts:
        with draft.observing(*_ACL_FACTS):
            headers = scan.head(HEAD_CONTAINER, "/" + quote(str(draft.facts["name"]), safe=""))
            draft.facts.update(container_acl_facts(headers))


_ACL_FACTS = (
    "read_acl",
    "write_acl",
    "is_public_read",
    "is_public_listing",
    "has_referrer_acl",
    "is_world_writable",
    "is_versioned",
)


def container_acl_facts(headers: dict[str, str]) -> dict[str, Any]:
    """Read and write ACLs and versioning from a container's HEAD headers."""
    lower = {k.lower(): v for k, v in headers.items()}
    read = [p.strip() for p in lower.get("x-container-read", "").split(",") if p.strip()]
    write = [p.strip() for p in lower.get("x-container-write", "").split(",") if p.strip()]
    public = ".r:*" in read
    versioned = lower.get("x-versions-enabled", "").lower() == "true" or bool(
        lower.get("x-versions-location") or lower.get("x-history-location")
    )
    return {
        "read_acl": read,
        "write_acl": write,
        "is_public_read": public,
        "is_public_listing": public and ".rlistings" in read,
        "has_referrer_acl": any(p.startswith(".r:") and p != ".r:*" for p in read),
        "is_world_writable": any(p in ("*:*", "*") for p in write),
        "is_versioned": versioned,
    }


# --- load balancer ---------------------------------------------------------------------

LIST_LBS = Call(
    "load-balancer", "GET", "/v2/lbaas/loadbalancers", "os_load-balancer_api:loadbalancer:get_all"
)
LIST_LISTENERS = Call(
    "load-balancer", "GET", "/v2/lbaas/listeners", "os_load-balancer_api:listener:get_all"
)


def run_listeners(scan: Scan) -> None:
    listeners = scan.pages(LIST_LISTENERS, "listeners")
    drafts = [scan.harvest.add(_listener(scan, item)) for item in listeners]
    try:
        balancers = scan.pages(LIST_LBS, "loadbalancers")
    except CallFailed as failed:
        for draft in drafts:
            draft.mark_unknown(failed.problem, "vip_addresses", "is_exposed")
        return
    vips = {str(b.get("id")): str(b.get("vip_address") or "") for b in balancers}
    for draft in drafts:
        addresses = sorted({vips[i] for i in draft.facts["loadbalancer_ids"] if vips.get(i)})
        draft.facts.update(
            vip_addresses=addresses, is_exposed=any(_is_global(a) for a in addresses)
        )


def _listener(scan: Scan, item: dict[str, Any]) -> Draft:
    protocol = str(item.get("protocol") or "")
    versions = [str(v) for v in item.get("tls_versions") or []]
    return Draft(
        LISTENER,
        scan.key("listener", str(item.get("id"))),
        {
            "id": str(item.get("id")),
            "name": str(item.get("name") or ""),
            "region": scan.region,
            "protocol": protocol,
            "port": item.get("protocol_port"),
            "is_clear_text": protocol in CLEAR_PROTOCOLS,
            "is_clear_http": protocol == "HTTP",
            "is_tls_terminated": protocol == "TERMINATED_HTTPS",
            "tls_versions": versions,
            "allows_legacy_tls": bool(LEGACY_TLS & set(versions)),
            "client_authentication": str(item.get("client_authentication") or "NONE"),
            "loadbalancer_ids": sorted(
                {str(lb.get("id")) for lb in item.get("loadbalancers") or [] if lb.get("id")}
            ),
        },
    )


# --- identity --------------------------------------------------------------------------

LIST_USERS = Call("identity", "GET", "/v3/users", "identity:list_users")
LIST_APP_CREDENTIALS = Call(
    "identity",
    "GET",
    "/v3/users/{user_id}/application_credentials",
    "identity:list_application_credentials",
)


def run_identity(scan: Scan) -> None:
    """Users (when Keystone lets the role list them) and their application credentials.

    A role that may not list users still sees its own application credentials, so the
    credentials rules judge at least the identity the scan runs as.
    """
    try:
        users = scan.pages(LIST_USERS, "users")
    except CallFailed as failed:
        scan.harvest.problem(_for_type(failed, USER))
        users = [{"id": scan.user_id}]
    else:
        for user in users:
            scan.harvest.add(_user(scan, user))
    for user in users:
        user_id = str(user.get("id"))
        path = "/v3/users/" + quote(user_id, safe="") + "/application_credentials"
        try:
            answer = scan.get(LIST_APP_CREDENTIALS, path)
        except CallFailed as failed:
            scan.harvest.problem(_for_type(failed, APP_CREDENTIAL))
            continue
        for item in (answer or {}).get("application_credentials") or []:
            scan.harvest.add(_app_credential(scan, user_id, item))


def _for_type(failed: CallFailed, type_: str) -> Any:
    from dataclasses import replace

    return replace(failed.problem, resource_type=type_)


def _user(scan: Scan, user: dict[str, Any]) -> Draft:
    options = user.get("options") or {}
    rules = options.get("multi_factor_auth_rules") or []
    expires = user.get("password_expires_at")
    return Draft(
        USER,
        f"openstack:identity:{scan.project_id}:user/{user.get('id')}",
        {
            "id": str(user.get("id")),
            "name": str(user.get("name") or ""),
            "domain_id": str(user.get("domain_id") or ""),
            "is_enabled": bool(user.get("enabled", True)),
            "is_mfa_enabled": bool(options.get("multi_factor_auth_enabled")),
            "mfa_rules": [[str(m) for m in rule] for rule in rules if isinstance(rule, list)],
            "password_expires_at": expires,
            "has_password_expiry": bool(expires),
            "ignores_password_expiry": bool(options.get("ignore_password_expiry")),
            "ignores_lockout": bool(options.get("ignore_lockout_failure_attempts")),
        },
    )


def _app_credential(scan: Scan, user_id: str, item: dict[str, Any]) -> Draft:
    expires = item.get("expires_at")
    days = _days_until(expires)
    return Draft(
        APP_CREDENTIAL,
        f"openstack:identity:{scan.project_id}:application_credential/{item.get('id')}",
        {
            "id": str(item.get("id")),
            "name": str(item.get("name") or ""),
            "user_id": user_id,
            "project_id": str(item.get("project_id") or ""),
            "expires_at": expires,
            "has_expiry": bool(expires),
            "days_to_expiry": days,
            "is_unrestricted": bool(item.get("unrestricted")),
            "roles": sorted(str(r.get("name")) for r in item.get("roles") or []),
            "has_access_rules": bool(item.get("access_rules")),
        },
    )


def _days_until(value: Any) -> int | None:
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).days


ALL: tuple[Collector, ...] = (
    Collector("network", "network", (SG,), (LIST_SGS, LIST_PORTS), run_network),
    Collector("compute", "compute", (SERVER,), (LIST_SERVERS,), run_compute),
    Collector("volumes", "block-storage", (VOLUME,), (LIST_VOLUMES,), run_volumes),
    Collector("images", "image", (IMAGE,), (LIST_IMAGES,), run_images),
    Collector(
        "containers",
        "object-store",
        (CONTAINER,),
        (LIST_CONTAINERS, HEAD_CONTAINER),
        run_containers,
    ),
    Collector("listeners", "load-balancer", (LISTENER,), (LIST_LISTENERS, LIST_LBS), run_listeners),
    Collector(
        "identity",
        "identity",
        (USER, APP_CREDENTIAL),
        (LIST_USERS, LIST_APP_CREDENTIALS),
        run_identity,
        regional=False,
    ),
)
