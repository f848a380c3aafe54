"""The exposure-baseline pack: well-formed, and right about what the lab exposes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from audit.evaluate import BoundRule, evaluate_rule
from audit.models import Finding, Observation, Problem, Reason, Resource, Status
from audit.policy import Policy, load_policy
from checks.ports import FAMILY
from checks.ports.lab import Lab
from tests.ports.conftest import by_key, requires_nmap

PACK = Path(__file__).resolve().parents[2] / "policies" / "exposure-baseline.yaml"
FRAMEWORKS = {"anssi-hygiene", "nis2", "iso27001", "cis-v8"}
# cited only where a requirement clearly covers what the rule checks
OPTIONAL_FRAMEWORKS = {"secnumcloud"}


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
        assert FRAMEWORKS <= set(rule["controls"]) <= FRAMEWORKS | OPTIONAL_FRAMEWORKS, rule["id"]
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
            Status.FAIL,  # regreSSHion (a backport is recorded as an accepted risk)
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
        # WinRM: nmap's probe names it http ("Microsoft HTTPAPI httpd"), never wsman
        (
            "EXP-ADMIN-004",
            {"port": 5985, "service": "http", "product": "Microsoft HTTPAPI httpd"},
            Status.FAIL,
        ),
        ("EXP-ADMIN-004", {"port": 5986, "service": "http", "tunnel": "ssl"}, Status.FAIL),
        (
            "EXP-ADMIN-004",
            {"port": 80, "service": "http", "product": "Microsoft HTTPAPI httpd"},
            Status.PASS,
        ),
        # explicit FTPS (AUTH TLS accepted) is what the rule advises: it passes
        ("EXP-CLEAR-002", {"port": 21, "service": "ftp", "ftp_auth_tls": True}, Status.PASS),
        ("EXP-CLEAR-002", {"port": 21, "service": "ftp", "ftp_auth_tls": False}, Status.FAIL),
        ("EXP-CLEAR-002", {"port": 2121, "service": "ftp", "ftp_auth_tls": True}, Status.PASS),
        ("EXP-DB-001", {"port": 2484, "service": "oracle-tns", "method": "table"}, Status.FAIL),
        ("EXP-DB-001", {"port": 1434, "service": "ms-sql-m", "method": "table"}, Status.FAIL),
        ("EXP-MAIL-001", {"port": 993, "service": "imap", "tunnel": "ssl"}, Status.PASS),
        ("EXP-DB-007", {"port": 8888, "service": "http", "method": "probed"}, Status.PASS),
    ],
)
def test_rules_match_on_service_name_and_well_known_port(
    pack: Policy, facts: dict[str, Any], rule_id: str, status: Status
) -> None:
    assert judge(pack, rule_id, service(**facts)).status is status


def test_ssh_minimum_version_is_a_parameter(pack: Policy) -> None:
    ssh = service(port=22, service="ssh", product="OpenSSH", version="9.9p2")
    assert judge(pack, "EXP-SSH-001", ssh).status is Status.PASS
    stricter = r"^[1-9][0-9]+\."
    assert judge(pack, "EXP-SSH-001", ssh, ssh_allowed_versions=stricter).status is Status.FAIL
    newer = service(port=22, service="ssh", product="OpenSSH", version="10.0p2")
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


@pytest.mark.parametrize(
    ("version", "status"),
    [
        ("8.4p1", Status.FAIL),  # before regreSSHion's range, but Terrapin (fixed in 9.6)
        ("8.5p1", Status.FAIL),  # CVE-2024-6387: 8.5p1 to 9.7p1
        ("9.6p1 Ubuntu 3ubuntu13", Status.FAIL),
        ("9.7p1", Status.FAIL),
        ("9.8p1", Status.PASS),  # the fix
        ("9.8p1 Debian 1", Status.PASS),
        ("9.9", Status.PASS),
        ("9.10", Status.PASS),
        ("10.0", Status.PASS),
        ("10.0p2", Status.PASS),
    ],
)
def test_the_default_ssh_floor_is_the_regresshion_fix(
    pack: Policy, version: str, status: Status
) -> None:
    ssh = service(port=22, service="ssh", product="OpenSSH", version=version)
    assert judge(pack, "EXP-SSH-001", ssh).status is status


AWS_WATCHED = [135, 25, 110, 143, 2049, 111, 389, 5601, 6443, 9092, 7199, 8888, 2483, 2484, 1434]
"""Ports the AWS family watches in security groups that hosts are judged on too."""


@pytest.mark.parametrize("port", AWS_WATCHED)
def test_each_port_the_aws_family_watches_fails_a_named_rule(pack: Policy, port: int) -> None:
    # Given the port seen with sv=0 (nmap's name comes from its port table, if any)
    seen = service(port=port, service=None, method="table", conf=3)
    failed = [
        rule.id
        for rule in pack.rules
        if rule.resource == "net.service"
        and rule.id != "EXP-PORT-001"
        and judge(pack, rule.id, seen).status is Status.FAIL
    ]
    assert failed, f"no exposure rule names port {port}"


NMAP_TABLE_NAMES = {
    135: "msrpc",
    25: "smtp",
    110: "pop3",
    143: "imap",
    2049: "nfs",
    111: "rpcbind",
    389: "ldap",
    2484: "oracle-tns",
    1434: "ms-sql-m",
}


@pytest.mark.parametrize(("port", "name"), sorted(NMAP_TABLE_NAMES.items()))
def test_a_service_named_by_probing_counts_off_its_port(pack: Policy, port: int, name: str) -> None:
    moved = service(port=port + 40000, service=name, method="probed")
    failed = [
        r.id
        for r in pack.rules
        if r.id != "EXP-PORT-001" and judge(pack, r.id, moved).status is Status.FAIL
    ]
    assert failed, f"{name} off its port is not caught"


def test_every_rule_cites_structured_sources(pack: Policy) -> None:
    data = yaml.safe_load(PACK.read_text(encoding="utf-8"))
    for rule in data["rules"]:
        references = rule["references"]
        assert references and all(isinstance(r, dict) for r in references), rule["id"]
        for reference in references:
            assert {"document", "version", "section"} <= set(reference), rule["id"]
    assert all(rule.references for rule in pack.rules)


def test_exposure_maps_to_network_security_not_access_control() -> None:
    # like the security-group rules of the AWS family (NIS2 21.2.e); and ANSSI hygiene
    # measure 29 (admin rights on workstations) is no exposure measure
    data = yaml.safe_load(PACK.read_text(encoding="utf-8"))
    for rule in data["rules"]:
        controls = rule["controls"]
        assert controls["nis2"] in ("21.2.e", "21.2.h"), rule["id"]
        assert "29" not in controls["anssi-hygiene"], rule["id"]


def test_an_unknown_auth_tls_answer_is_an_error_not_a_pass(pack: Policy) -> None:
    problem = Problem(Reason.TIMEOUT, "not observed: AUTH TLS: no FTP reply within 5 s")
    base = service(port=21, service="ftp", ftp_auth_tls=None)
    unknown = Resource(
        base.type, base.key, base.target, base.system, base.facts, {"ftp_auth_tls": problem}
    )
    finding = judge(pack, "EXP-CLEAR-002", unknown)
    assert finding.status is Status.ERROR
