"""Service detection per port: a slow service costs only its own version facts.

The host of the original report: an old OpenSSH, an HTTP server and a TLS service
(``openssl s_server``, 22.4 s of nmap version probes at intensity 2) on one address.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from audit.evaluate import BoundRule, evaluate_rule
from audit.models import Problem, Reason, Resource, Status
from audit.policy import Policy, load_policy
from checks.ports import FAMILY
from checks.ports.facts import HostRecord, PortRecord
from checks.ports.lab import Listener, http_server, ssh_banner_server
from checks.ports.versions import Unit, is_clear_ftp, plan_units
from checks.tls.lab import OpenSslServer, Pki
from tests.ports.conftest import by_key, requires_nmap, scan

PACK = Path(__file__).resolve().parents[2] / "policies" / "exposure-baseline.yaml"


@pytest.fixture(scope="module")
def pack() -> Policy:
    return load_policy(PACK, FAMILY.resource_type_names())


@pytest.fixture(scope="module")
def slow_host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Listener]]:
    """An old OpenSSH, an HTTP server and an ``openssl s_server`` on 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    issued = Pki(tmp_path_factory.mktemp("pki")).issue(("localhost",))
    with ExitStack() as stack:
        tls = stack.enter_context(OpenSslServer(issued))
        yield {
            "ssh": stack.enter_context(ssh_banner_server()),
            "http": stack.enter_context(http_server()),
            "tls": Listener("tls", "127.0.0.1", tls.port, "http", tunnel="ssl"),
        }


def uri(host: dict[str, Listener]) -> str:
    return "ports://127.0.0.1?ports=" + ",".join(str(item.port) for item in host.values())


def judge(pack: Policy, rule_id: str, resource: Resource) -> Status:
    (rule,) = [r for r in pack.rules if r.id == rule_id]
    return evaluate_rule(BoundRule(rule, dict(pack.params)), resource).status


@requires_nmap
def test_old_openssh_is_judged_although_a_tls_port_is_too_slow(
    pack: Policy, slow_host: dict[str, Listener]
) -> None:
    # Given a budget far below what -sV needs on s_server (22 s), when the host is scanned
    started = time.monotonic()
    observation = scan(uri(slow_host), timeout=8)
    elapsed = time.monotonic() - started
    resources = by_key(observation)
    ssh, tls = resources[slow_host["ssh"].key], resources[slow_host["tls"].key]
    # Then SSH keeps its version and the SSH version rule fires
    assert elapsed < 8 + 1.5 and observation.problems == ()
    assert (ssh.facts["product"], ssh.facts["version"], ssh.unknown) == ("OpenSSH", "5.3", {})
    assert judge(pack, "EXP-SSH-001", ssh) is Status.FAIL
    # and the slow port is still reported, its versions unknown with the reason
    assert tls.facts["port"] == slow_host["tls"].port and tls.facts["service_detection"] is False
    assert set(tls.unknown) == {"product", "version", "extrainfo", "cpe"}
    assert tls.unknown["version"].reason is Reason.TIMEOUT
    assert judge(pack, "EXP-SSH-001", tls) is Status.ERROR
    assert resources["host://127.0.0.1"].facts["service_detection"] is False


@requires_nmap
@pytest.mark.slow
def test_the_default_budget_identifies_every_service_of_that_host(
    pack: Policy, slow_host: dict[str, Listener]
) -> None:
    # the default --timeout (30 s) holds the slowest of them, run side by side
    observation = scan(uri(slow_host), timeout=30)
    resources = by_key(observation)
    assert observation.problems == ()
    assert all(resources[item.key].unknown == {} for item in slow_host.values())
    tls = resources[slow_host["tls"].key].facts
    assert (tls["tunnel"], tls["product"]) == ("ssl", "OpenSSL s_server -www httpd")
    assert judge(pack, "EXP-SSH-001", resources[slow_host["ssh"].key]) is Status.FAIL
    assert resources["host://127.0.0.1"].facts["service_detection"] is True


def record(port: int, name: str | None = None, **service: str) -> PortRecord:
    attributes = {"name": name, **service} if name else dict(service)
    return PortRecord(port, "tcp", "open", "syn-ack", attributes)


def test_one_unit_per_open_port_number_over_the_hosts_where_it_is_open() -> None:
    a = HostRecord("10.0.0.1", "ipv4", "up", "syn-ack", ports=(record(22, "ssh"), record(80)))
    b = HostRecord(
        "10.0.0.2",
        "ipv4",
        "up",
        "syn-ack",
        ports=(record(22, "ssh"), PortRecord(443, "tcp", "closed", "conn-refused")),
    )
    assert plan_units([a, b]) == [
        Unit(22, ("10.0.0.1", "10.0.0.2"), {"10.0.0.1": "ssh", "10.0.0.2": "ssh"}),
        Unit(80, ("10.0.0.1",), {"10.0.0.1": None}),
    ]


@pytest.mark.parametrize(
    ("outcome", "guessed", "expected"),
    [
        (record(21, "ftp"), None, True),
        (record(990, "ftp", tunnel="ssl"), None, False),  # implicit FTPS
        (record(21, "http"), "ftp", False),  # probed: not FTP whatever the port
        (Problem(Reason.TIMEOUT, "late"), "ftp", True),  # detection failed: the port's name
        (Problem(Reason.TIMEOUT, "late"), None, False),
    ],
)
def test_which_ports_are_asked_about_auth_tls(
    outcome: PortRecord | Problem, guessed: str | None, expected: bool
) -> None:
    assert is_clear_ftp(outcome, guessed) is expected
