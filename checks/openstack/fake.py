"""A loopback stand-in for Nova, Neutron, Cinder, Glance, Swift and Octavia.

These services need message queues, hypervisors and storage back ends, so they cannot
run here; Keystone can, and the lab runs the real one (:mod:`checks.openstack.lab`). The
answers below keep the field names, types and envelopes of each project's official
api-ref samples, which are the contract openstacksdk and Rempart read:

- Nova: ``doc/api_samples/servers/v2.47/servers-details-resp.json`` (``servers``,
  ``addresses`` with ``OS-EXT-IPS:type``, ``key_name``, ``metadata``, ``config_drive``,
  ``security_groups``, ``locked``, ``servers_links``);
- Neutron (neutron-lib): ``api-ref/source/v2/samples/security-groups/
  security-groups-list-response.json`` (``security_group_rules`` with ``direction``,
  ``ethertype``, ``protocol``, ``port_range_min/max``, ``remote_ip_prefix``,
  ``remote_group_id``, ``stateful``) and ``ports/ports-list-response.json``;
- Cinder: ``api-ref/source/v3/samples/volumes-list-detailed-response.json``
  (``encrypted``, ``bootable`` as the strings "true"/"false", ``attachments``,
  ``volume_type``);
- Glance: ``api-ref/source/v2/samples/images-list-response.json`` (``visibility``,
  ``protected``, ``owner``; pages of 25 with ``next``, Glance's default page size);
- Swift: the account listing (``GET /v1/AUTH_<project>?format=json``: ``name``,
  ``count``, ``bytes``) and container ``HEAD`` headers (``X-Container-Read``,
  ``X-Container-Write``, ``X-Versions-Enabled``) of ``api-ref/source/storage-account-
  services.inc`` and ``storage-container-services.inc``;
- Octavia: ``api-ref/source/v2/examples/listeners-list-response.json`` and
  ``loadbalancers-list-response.json`` (``protocol``, ``protocol_port``,
  ``tls_versions``, ``loadbalancers``, ``vip_address``).

A fault table answers chosen calls with a status (403, 429, 500...) so tests can prove
that errors become data; every request is logged for the declared-calls test. The fake
checks that a token is sent, not that it is valid (Keystone is real, the fake is not).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from audit.labkit import HandlerServer

GLANCE_PAGE = 25
SERVICES: dict[str, str] = {
    "compute": "/compute/v2.1",
    "network": "/network",
    "block-storage": "/volume/v3/{project}",
    "image": "/image",
    "object-store": "/object-store/v1/AUTH_{project}",
    "load-balancer": "/load-balancer",
}
"""Where each service lives on the fake, as the catalogue lists it."""


@dataclass
class CloudData:
    """What the fake serves for one project; tests and the lab fill it."""

    project_id: str
    security_groups: list[dict[str, Any]] = field(default_factory=list)
    ports: list[dict[str, Any]] = field(default_factory=list)
    servers: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    images: list[dict[str, Any]] = field(default_factory=list)
    containers: dict[str, dict[str, str]] = field(default_factory=dict)
    listeners: list[dict[str, Any]] = field(default_factory=list)
    loadbalancers: list[dict[str, Any]] = field(default_factory=list)


class FakeServices:
    """The fake's state: data, faults by call name, and the requests seen."""

    def __init__(self, data: CloudData):
        self.data = data
        self.faults: dict[str, int] = {}
        self.requests: list[tuple[str, str, str]] = []
        self.servers_next: str | None = None
        """A ``next`` link Nova adds to its server list (a test points it elsewhere)."""
        self.lock = threading.Lock()
        self._server: HandlerServer | None = None

    def __enter__(self) -> FakeServices:
        self._server = HandlerServer(_Handler, settings={"fake": self}).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.__exit__(*exc)

    @property
    def base(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.port}"

    def endpoint(self, service: str) -> str:
        return self.base + SERVICES[service].format(project=self.data.project_id)

    @contextmanager
    def fault(self, call: str, status: int) -> Iterator[None]:
        """Answer ``call`` (``network:GET /v2.0/ports``) with ``status`` while inside."""
        self.faults[call] = status
        try:
            yield
        finally:
            self.faults.pop(call, None)


def security_group(gid: str, name: str, project: str, *rules: dict[str, Any]) -> dict[str, Any]:
    """A group in the shape of security-groups-list-response.json."""
    return {
        "id": gid,
        "name": name,
        "description": name,
        "project_id": project,
        "tenant_id": project,
        "stateful": True,
        "shared": False,
        "revision_number": 1,
        "tags": [],
        "security_group_rules": [
            {
                "id": f"{gid}-r{i}",
                "security_group_id": gid,
                "project_id": project,
                "direction": "ingress",
                "ethertype": "IPv4",
                "protocol": None,
                "port_range_min": None,
                "port_range_max": None,
                "remote_ip_prefix": None,
                "remote_group_id": None,
                **rule,
            }
            for i, rule in enumerate(rules)
        ],
    }


def server(sid: str, name: str, project: str, **extra: Any) -> dict[str, Any]:
    """A server in the shape of servers-details-resp.json (v2.47)."""
    body: dict[str, Any] = {
        "id": sid,
        "name": name,
        "status": "ACTIVE",
        "tenant_id": project,
        "user_id": "fake",
        "addresses": {
            "private": [
                {
                    "OS-EXT-IPS-MAC:mac_addr": "aa:bb:cc:dd:ee:ff",
                    "OS-EXT-IPS:type": "fixed",
                    "addr": "192.168.0.3",
                    "version": 4,
                }
            ]
        },
        "config_drive": "",
        "key_name": None,
        "metadata": {},
        "security_groups": [{"name": "default"}],
        "locked": False,
        "OS-EXT-STS:vm_state": "active",
        "flavor": {"original_name": "m1.tiny", "ram": 512, "vcpus": 1, "disk": 1},
        "links": [],
        "tags": [],
    }
    body.update(extra)
    return body


def volume(vid: str, name: str, project: str, **extra: Any) -> dict[str, Any]:
    """A volume in the shape of volumes-list-detailed-response.json."""
    body: dict[str, Any] = {
        "id": vid,
        "name": name,
        "attachments": [],
        "availability_zone": "nova",
        "encrypted": False,
        "bootable": "false",
        "status": "available",
        "size": 1,
        "volume_type": "lvmdriver-1",
        "multiattach": False,
        "metadata": {},
        "os-vol-tenant-attr:tenant_id": project,
        "links": [],
    }
    body.update(extra)
    return body


def image(iid: str, name: str, owner: str, **extra: Any) -> dict[str, Any]:
    """An image in the shape of images-list-response.json."""
    body: dict[str, Any] = {
        "id": iid,
        "name": name,
        "status": "active",
        "visibility": "private",
        "protected": False,
        "owner": owner,
        "container_format": "bare",
        "disk_format": "qcow2",
        "min_disk": 0,
        "min_ram": 0,
        "tags": [],
        "self": f"/v2/images/{iid}",
        "file": f"/v2/images/{iid}/file",
        "schema": "/v2/schemas/image",
    }
    body.update(extra)
    return body


def listener(
    lid: str, name: str, protocol: str, port: int, lb: str, **extra: Any
) -> dict[str, Any]:
    """A listener in the shape of listeners-list-response.json."""
    body: dict[str, Any] = {
        "id": lid,
        "name": name,
        "protocol": protocol,
        "protocol_port": port,
        "admin_state_up": True,
        "provisioning_status": "ACTIVE",
        "operating_status": "ONLINE",
        "loadbalancers": [{"id": lb}],
        "tls_versions": [],
        "client_authentication": "NONE",
        "tags": [],
    }
    body.update(extra)
    return body


_ROUTES: tuple[tuple[str, str, str, str], ...] = (
    # (service, method, path under the service's prefix, call name's path)
    ("compute", "GET", "/servers/detail", "/servers/detail"),
    ("network", "GET", "/v2.0/security-groups", "/v2.0/security-groups"),
    ("network", "GET", "/v2.0/ports", "/v2.0/ports"),
    ("block-storage", "GET", "/volumes/detail", "/volumes/detail"),
    ("image", "GET", "/v2/images", "/v2/images"),
    ("object-store", "GET", "", "/"),
    ("object-store", "HEAD", "/*", "/{container}"),
    ("load-balancer", "GET", "/v2/lbaas/listeners", "/v2/lbaas/listeners"),
    ("load-balancer", "GET", "/v2/lbaas/loadbalancers", "/v2/lbaas/loadbalancers"),
)


class _Handler(BaseHTTPRequestHandler):
    server_version = "fake-openstack"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    @property
    def fake(self) -> FakeServices:
        return self.server.settings["fake"]  # type: ignore[attr-defined,no-any-return]

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def _dispatch(self, method: str) -> None:
        split = urlsplit(self.path)
        found = self._route(method, split.path)
        if found is None:
            self._send(404, {"error": "not found"})
            return
        service, call_path, rest = found
        call = f"{service}:{method} {call_path}"
        with self.fake.lock:
            self.fake.requests.append((service, method, call_path))
        if not self.headers.get("X-Auth-Token"):
            self._send(401, {"error": {"code": 401, "message": "no token"}})
            return
        status = self.fake.faults.get(call)
        if status is not None:
            self._send(status, {"error": {"code": status, "message": f"fault on {call}"}})
            return
        self._answer(service, method, call_path, rest, parse_qs(split.query))

    def _route(self, method: str, path: str) -> tuple[str, str, str] | None:
        for service, verb, sub, call_path in _ROUTES:
            prefix = SERVICES[service].format(project=self.fake.data.project_id)
            if verb != method or not path.startswith(prefix):
                continue
            rest = path[len(prefix) :]
            if sub == "/*" and rest.startswith("/") and len(rest) > 1 and "/" not in rest[1:]:
                return service, call_path, unquote(rest[1:])
            if rest.rstrip("/") == sub:
                return service, call_path, ""
        return None

    def _answer(
        self, service: str, method: str, path: str, rest: str, query: dict[str, list[str]]
    ) -> None:
        data = self.fake.data
        if service == "object-store":
            self._swift(method, rest)
            return
        bodies: dict[str, Any] = {
            "/servers/detail": lambda: {"servers": data.servers, **self._servers_links()},
            "/v2.0/security-groups": lambda: {"security_groups": data.security_groups},
            "/v2.0/ports": lambda: {"ports": data.ports},
            "/volumes/detail": lambda: {"volumes": data.volumes, "count": len(data.volumes)},
            "/v2/images": lambda: _glance_page(data.images, query),
            "/v2/lbaas/listeners": lambda: {"listeners": data.listeners},
            "/v2/lbaas/loadbalancers": lambda: {"loadbalancers": data.loadbalancers},
        }
        self._send(200, bodies[path]())

    def _servers_links(self) -> dict[str, Any]:
        following = self.fake.servers_next
        return {"servers_links": [{"rel": "next", "href": following}]} if following else {}

    def _swift(self, method: str, container: str) -> None:
        containers = self.fake.data.containers
        if method == "GET":
            listing = [
                {"name": n, "count": int(h.get("X-Container-Object-Count", "0")), "bytes": 0}
                for n, h in sorted(containers.items())
            ]
            self._send(200, listing)
            return
        headers = containers.get(container)
        if headers is None:
            self._send(404, None)
            return
        self.send_response(204)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, body: Any) -> None:
        payload = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)


def _glance_page(images: list[dict[str, Any]], query: dict[str, list[str]]) -> dict[str, Any]:
    """Glance's paging: ``limit`` (default 25), ``marker``, and ``next`` while more remain."""
    markers = query.get("marker") or []
    marker = markers[0] if markers else None
    start = 0
    if marker is not None:
        ids = [i["id"] for i in images]
        start = ids.index(marker) + 1 if marker in ids else len(images)
    page = images[start : start + GLANCE_PAGE]
    body: dict[str, Any] = {"images": page, "schema": "/v2/schemas/images", "first": "/v2/images"}
    if start + GLANCE_PAGE < len(images):
        body["next"] = f"/v2/images?marker={page[-1]['id']}"
    return body
