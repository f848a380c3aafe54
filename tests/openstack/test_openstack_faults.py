"""Errors are data: denied, throttled, absent services and endpoints outside the scope."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from audit.models import Observation, Problem
from audit.plugins import CheckContext, Scope
from checks.openstack import FAMILY
from checks.openstack.lab import Lab

from .conftest import by_type, declared, parse, scan


def _problems(obs: Observation, type_: str) -> list[Problem]:
    return [p for p in obs.problems if p.resource_type == type_]


def test_a_denied_call_names_the_call_and_its_policy(clean_faults: Lab) -> None:
    assert clean_faults.fake is not None
    with clean_faults.fake.fault("network:GET /v2.0/security-groups", 403):
        obs, _ = scan("openstack://lab")
    (problem,) = _problems(obs, "openstack.network.security_group")
    assert problem.reason == "access_denied"
    assert "network:GET /v2.0/security-groups denied (HTTP 403)" in problem.message
    assert "get_security_group" in problem.message
    assert not by_type(obs, "openstack.network.security_group")
    # other services are untouched
    assert by_type(obs, "openstack.compute.server")


def test_a_denied_second_call_leaves_only_its_facts_unknown(clean_faults: Lab) -> None:
    assert clean_faults.fake is not None
    with clean_faults.fake.fault("network:GET /v2.0/ports", 403):
        obs, _ = scan("openstack://lab")
    group = next(r for r in obs.resources if r.type == "openstack.network.security_group")
    assert "is_attached" not in group.facts
    assert group.unknown["is_attached"].reason == "access_denied"
    assert (
        group.facts["world_open_admin_ports"] == [22] or group.facts["world_open_admin_ports"] == []
    )


def test_a_throttled_call_is_throttled_after_its_retries(clean_faults: Lab) -> None:
    assert clean_faults.fake is not None
    clean_faults.fake.requests.clear()
    with clean_faults.fake.fault("block-storage:GET /volumes/detail", 429):
        obs, _ = scan("openstack://lab", attempts=2)
    (problem,) = _problems(obs, "openstack.blockstorage.volume")
    assert problem.reason == "throttled"
    assert not by_type(obs, "openstack.blockstorage.volume")
    tries = [r for r in clean_faults.fake.requests if r[2] == "/volumes/detail"]
    assert len(tries) == 2  # the first answer, then one retry


def test_a_service_error_is_unreachable_not_empty(clean_faults: Lab) -> None:
    assert clean_faults.fake is not None
    with clean_faults.fake.fault("object-store:GET /", 503):
        obs, _ = scan("openstack://lab")
    (problem,) = _problems(obs, "openstack.objectstorage.container")
    assert problem.reason == "unreachable"


def test_a_service_absent_from_the_catalogue_is_not_implemented(lab: Lab) -> None:
    # RegionTwo's catalogue offers compute and network only
    obs, _ = scan("openstack://lab?regions=RegionTwo")
    for type_ in (
        "openstack.blockstorage.volume",
        "openstack.image",
        "openstack.objectstorage.container",
        "openstack.loadbalancer.listener",
    ):
        (problem,) = _problems(obs, type_)
        assert problem.reason == "not_implemented"
        assert "not in the service catalogue" in problem.message
    assert by_type(obs, "openstack.compute.server")


class Counting:
    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


def test_a_catalogue_endpoint_outside_the_scope_gets_no_request(lab: Lab) -> None:
    # Given a catalogue whose compute endpoint in RegionOut is 127.0.0.2, outside the scope
    outside = Counting("127.0.0.2")
    conn = lab.admin()
    region = conn.identity.create_region(id="RegionOut")
    service = next(s for s in conn.identity.services() if s.type == "compute")
    endpoint = conn.identity.create_endpoint(
        service_id=service.id,
        interface="public",
        url=f"http://127.0.0.2:{outside.port}/compute/v2.1",
        region_id="RegionOut",
    )
    try:
        # When the project is scanned in that region under a scope of 127.0.0.1/32
        obs, api = scan("openstack://lab?regions=RegionOut", declared(lab))
    finally:
        conn.identity.delete_endpoint(endpoint)
        conn.identity.delete_region(region)
        outside.sock.close()
    # Then compute is refused before any request, and nothing reached 127.0.0.2
    (problem,) = _problems(obs, "openstack.compute.server")
    assert problem.reason == "refused"
    assert "127.0.0.2" in problem.message
    assert outside.connections == 0
    assert not any(name.startswith("compute:") for name in api.calls)


def test_no_scope_declared_admits_loopback_endpoints(lab: Lab) -> None:
    obs, _ = scan("openstack://lab", Scope())
    assert by_type(obs, "openstack.compute.server")


def test_a_next_link_to_another_host_is_refused_by_the_transport(clean_faults: Lab) -> None:
    # Given Nova answering a next link that points outside the admitted endpoints
    assert clean_faults.fake is not None
    outside = Counting("127.0.0.2")
    clean_faults.fake.servers_next = f"http://127.0.0.2:{outside.port}/compute/v2.1/servers/detail"
    try:
        obs, _ = scan("openstack://lab", declared(clean_faults))
    finally:
        clean_faults.fake.servers_next = None
        outside.sock.close()
    # Then the request is never sent: the servers are unknown, refused, not partial
    (problem,) = _problems(obs, "openstack.compute.server")
    assert problem.reason == "refused"
    assert "not admitted by the scope guard" in problem.message
    assert outside.connections == 0
    assert not by_type(obs, "openstack.compute.server")


def _one_cloud(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth_url: str) -> None:
    path = tmp_path / "clouds.yaml"
    path.write_text(
        "clouds:\n  bad:\n    auth: {"
        f"auth_url: '{auth_url}', username: auditor, password: not-the-password, "
        "project_name: lab, user_domain_id: default, project_domain_id: default}\n"
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))


def test_refused_credentials_are_access_denied(
    lab: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _one_cloud(tmp_path, monkeypatch, lab.auth_url)
    obs = FAMILY.collect(parse("openstack://bad"), CheckContext(timeout=10))
    (problem,) = obs.problems
    assert problem.reason == "access_denied" and "POST /v3/auth/tokens" in problem.message
    assert obs.resources == ()


def test_an_unreachable_keystone_is_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit.labkit import closed_port

    _one_cloud(tmp_path, monkeypatch, f"http://127.0.0.1:{closed_port()}/v3")
    obs = FAMILY.collect(parse("openstack://bad"), CheckContext(timeout=10))
    (problem,) = obs.problems
    assert problem.reason == "unreachable" and obs.resources == ()
