"""The exposure-baseline pack: well-formed, and right about what the lab exposes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from audit.engine import BoundRule, evaluate_rule
from audit.models import Finding, Observation, Problem, Reason, Resource, Status
from audit.policy import Policy, load_policy
from checks.ports import FAMILY
from checks.ports.lab import Lab
from tests.ports.conftest import by_key, requires_nmap

PACK = Path(__file__).resolve().parents[2] / "policies" / "exposure-baseline.yaml"
FRAMEWORKS = {"anssi-hygiene", "nis2", "iso27001", "cis-v8"}


@pytest.fixture(scope="module")
def pack() -> Policy:
    return load_policy(PACK, FAMILY.resource_type_names())


def judge(pack: Policy, rule_id: str, resource: Resource, **params: Any) -> Finding:
    (rule,) = [r for r in pack.rules if r.id == rule_id]
    return evaluate_rule(BoundRule(rule, {**pack.params, **params}), resource)


def service(**facts: Any) -> Resource:
    base: dict[str, Any] = {
        "address": "192.0.2.10",
        "hostname": None,
        "port": 443,
        "protocol": "tcp",
        "state": "open",
        "service": "https",
        "product": None,
        "version": None,
        "extrainfo": None,
        "tunnel": None,
        "cpe": [],
        "method": "probed",
        "conf": 10,
    }
    base.update(facts)
    return Resource(
        "net.service", f"tcp://192.0.2.10:{base['port']}", "ports://192.0.2.10", "adhoc", base
    )


def test_the_yaml_is_plain_and_every_rule_is_complete() -> None:
    data = yaml.safe_load(PACK.read_text(encoding="utf-8"))
    ids = [rule["id"] for rule in data["rules"]]
    assert data["policy"] == PACK.stem
    assert len(ids) == len(set(ids))
    for rule in data["rules"]:
        assert rule["id"].startswith("EXP-") and rule["id"][-4] == "-"
        assert rule["severity"] in {"critical", "high", "medium", "low", "info"}
        assert len(rule["remediation"]) > 40
        assert set(rule["controls"]) == FRAMEWORKS, rule["id"]
        assert rule["resource"] in FAMILY.resource_type_names()
        assert rule.get("title_fr")


def test_the_pack_validates_against_the_language_and_the_catalogues(pack: Policy) -> None:
    assert pack.name == "exposure-baseline" and len(pack.rules) >= 15
    reads = {fact for rule in pack.rules for fact in rule.reads}
    documented = {f.name for rt in FAMILY.resource_types for f in rt.facts}
    assert reads <= documented


# --- on the lab's real scan -----------------------------------------------------------------


@pytest.fixture(scope="module")
def lab_services(lab: Lab, lab_observation: Observation) -> dict[str, Resource]:
    resources = by_key(lab_observation)
    return {name: resources[item.key] for name, item in lab.listeners.items()}


@requires_nmap
@pytest.mark.parametrize(
    ("rule_id", "name", "status"),
    [
        ("EXP-SSH-001", "ssh", Status.FAIL),  # OpenSSH 5.3
        ("EXP-SSH-002", "ssh", Status.PASS),  # protocol 2.0
        ("EXP-SSH-001", "http", Status.SKIP),
        ("EXP-DB-001", "mysql", Status.FAIL),  # MySQL on a non-standard port
        ("EXP-DB-001", "http", Status.PASS),
        ("EXP-DB-003", "redis", Status.FAIL),
        ("EXP-DB-003", "mysql", Status.PASS),
        ("EXP-CLEAR-001", "telnet", Status.FAIL),
        ("EXP-CLEAR-001", "ssh", Status.PASS),
        ("EXP-CLEAR-002", "tls", Status.PASS),
        ("EXP-PORT-001", "http", Status.FAIL),  # an ephemeral port is not in [80, 443]
        ("EXP-DB-004", "http", Status.PASS),
        ("EXP-CONT-001", "http", Status.PASS),
    ],
)
def test_the_lab_is_judged_as_expected(
    pack: Policy, lab_services: dict[str, Resource], rule_id: str, name: str, status: Status
) -> None:
    finding = judge(pack, rule_id, lab_services[name])
    assert finding.status is status, finding


@requires_nmap
def test_evidence_is_what_the_rule_looked_at(
    pack: Policy, lab_services: dict[str, Resource]
) -> None:
    finding = judge(pack, "EXP-SSH-001", lab_services["ssh"])
    assert finding.evidence == {"version": "5.3"}
    assert finding.severity.value == "high" and "OpenSSH" in finding.remediation


@requires_nmap
def test_allowed_ports_is_a_parameter(pack: Policy, lab_services: dict[str, Resource]) -> None:
    http = lab_services["http"]
    allowed = [80, 443, http.facts["port"]]
    assert judge(pack, "EXP-PORT-001", http, allowed_ports=allowed).status is Status.PASS


@requires_nmap
def test_a_host_with_six_open_ports_is_over_the_limit(
    pack: Policy, lab_observation: Observation
) -> None:
    host = by_key(lab_observation)["host://127.0.0.1"]
    assert judge(pack, "EXP-HOST-001", host).status is Status.FAIL
    assert judge(pack, "EXP-HOST-001", host, max_open_ports=10).status is Status.PASS


# --- the matching logic, on facts ---------------------------------------------------------


@pytest.mark.parametrize(
    ("rule_id", "facts", "status"),
    [
        # a service named by probing counts wherever it listens
        ("EXP-DB-001", {"port": 13306, "service": "mysql"}, Status.FAIL),
        # a well-known port counts only when nmap could not identify the service
        ("EXP-DB-001", {"port": 3306, "service": "mysql", "method": "table"}, Status.FAIL),
        ("EXP-DB-001", {"port": 3306, "service": "http", "method": "probed"}, Status.PASS),
        ("EXP-DB-002", {"port": 27017, "service": None, "method": None}, Status.FAIL),
        (
            "EXP-DB-004",
            {"port": 9200, "service": "http", "product": "Elasticsearch REST API"},
            Status.FAIL,
        ),
        ("EXP-CLEAR-002", {"port": 21, "service": "ftp"}, Status.FAIL),
        ("EXP-CLEAR-002", {"port": 990, "service": "ftp", "tunnel": "ssl"}, Status.PASS),
        ("EXP-CLEAR-003", {"port": 513, "service": "login", "method": "table"}, Status.FAIL),
        ("EXP-ADMIN-001", {"port": 3389, "service": "ms-wbt-server"}, Status.FAIL),
        ("EXP-ADMIN-002", {"port": 5901, "service": "vnc-1", "method": "table"}, Status.FAIL),
        ("EXP-ADMIN-003", {"port": 6001, "service": "X11:1", "method": "table"}, Status.FAIL),
        ("EXP-SMB-001", {"port": 445, "service": "microsoft-ds"}, Status.FAIL),
        ("EXP-CONT-001", {"port": 2375, "service": "http"}, Status.FAIL),
        ("EXP-CONT-002", {"port": 10250, "service": "http", "tunnel": "ssl"}, Status.FAIL),
        ("EXP-CONT-003", {"port": 2379, "service": "etcd-client", "method": "table"}, Status.FAIL),
        ("EXP-PORT-001", {"port": 8080, "service": "http-proxy"}, Status.FAIL),
        ("EXP-PORT-001", {"port": 443, "service": "https"}, Status.PASS),
        (
            "EXP-SSH-001",
            {"port": 22, "service": "ssh", "product": "OpenSSH", "version": "7.4"},
            Status.FAIL,
        ),
        (
            "EXP-SSH-001",
            {
                "port": 22,
                "service": "ssh",
                "product": "OpenSSH",
                "version": "9.6p1 Ubuntu 3ubuntu13",
            },
            Status.PASS,
        ),
        (
            "EXP-SSH-001",
            {"port": 22, "service": "ssh", "product": "OpenSSH", "version": "10.0"},
            Status.PASS,
        ),
        (
            "EXP-SSH-001",
            {"port": 22, "service": "ssh", "product": "Dropbear sshd", "version": "2019.78"},
            Status.SKIP,
        ),
        ("EXP-SSH-002", {"port": 22, "service": "ssh", "extrainfo": "protocol 1.99"}, Status.FAIL),
    ],
)
def test_rules_match_on_service_name_and_well_known_port(
    pack: Policy, facts: dict[str, Any], rule_id: str, status: Status
) -> None:
    assert judge(pack, rule_id, service(**facts)).status is status


def test_ssh_minimum_version_is_a_parameter(pack: Policy) -> None:
    ssh = service(port=22, service="ssh", product="OpenSSH", version="9.6p1")
    stricter = r"^(9\.([89]|[1-9][0-9])|[1-9][0-9]\.)"
    assert judge(pack, "EXP-SSH-001", ssh, ssh_allowed_versions=stricter).status is Status.FAIL
    newer = service(port=22, service="ssh", product="OpenSSH", version="9.8p1")
    assert judge(pack, "EXP-SSH-001", newer, ssh_allowed_versions=stricter).status is Status.PASS


def test_rules_reading_unobserved_versions_end_as_error(pack: Policy) -> None:
    problem = Problem(Reason.NOT_IMPLEMENTED, "not observed: service detection is off (sv=0)")
    base = service(port=3306, service="mysql", method="table")
    blind = Resource(
        base.type,
        base.key,
        base.target,
        base.system,
        base.facts,
        {name: problem for name in ("product", "version", "extrainfo", "cpe")},
    )
    assert judge(pack, "EXP-SSH-001", blind).status is Status.ERROR
    assert judge(pack, "EXP-DB-001", blind).status is Status.FAIL  # port + table name
