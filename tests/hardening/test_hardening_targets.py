"""Targets that misbehave: each ends in ``error`` findings with a reason, within its
timeout, and none slows the healthy one down.

One real ``rempart scan --timeout 3`` covers what tests/tls and tests/ports test at the
collect level, end to end: a silent port, a reset, a 1 MiB banner, a ServerHello cut by
an alert, a record trickled one byte a second, a certificate chain that never ends, an
IPv6 address with nothing listening, and nmap on the same misbehaving ports.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest

from checks.tls import lab

from .conftest import rempart
from .hostile import AlertMidHandshake, EndlessChain, HugeBanner, Silent, Trickle

TIMEOUT_S = 3


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> lab.Pki:
    return lab.Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def scanned(pki: lab.Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Scan every misbehaving server and one healthy one together, once."""
    tmp = tmp_path_factory.mktemp("scan")
    context = lab.server_context(pki.issue(["localhost"]))
    with (
        Silent() as silent,
        lab.ResetServer() as reset,
        HugeBanner() as banner,
        AlertMidHandshake() as alert,
        Trickle() as trickle,
        EndlessChain() as chain,
        lab.PythonTlsServer(context) as healthy,
    ):
        targets = {
            "silent": f"tls://127.0.0.1:{silent.port}",
            "reset": f"tls://127.0.0.1:{reset.port}",
            "banner": f"tls://127.0.0.1:{banner.port}",
            "alert": f"tls://127.0.0.1:{alert.port}",
            "trickle": f"tls://127.0.0.1:{trickle.port}",
            "chain": f"tls://127.0.0.1:{chain.port}",
            "ipv6": f"tls://[::1]:{healthy.port}",
            "healthy": f"tls://localhost:{healthy.port}?http_port=0",
            "nmap": f"ports://127.0.0.1?ports={silent.port},{banner.port},{trickle.port}",
        }
        run = rempart(
            "scan", *targets.values(), "--timeout", str(TIMEOUT_S), "--ca-file", pki.ca_file,
            "--db", str(tmp / "r.db"), "-o", str(tmp / "r.json"), "--quiet", cwd=tmp,
        )  # fmt: skip
    report = json.loads((tmp / "r.json").read_text())
    findings: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for finding in report["findings"]:
        findings[finding["target"]].append(finding)
    resources = {r["target"]: r for r in report["resources"]}
    yield {"run": run, "targets": targets, "findings": findings, "resources": resources}


def errors(scanned: dict[str, Any], name: str) -> list[dict[str, Any]]:
    uri = scanned["targets"][name]
    key = next(k for k in scanned["findings"] if k.split("?")[0] == uri.split("?")[0])
    return [f for f in scanned["findings"][key] if f["status"] == "error"]


def test_the_scan_completes_within_its_bound(scanned: dict[str, Any]) -> None:
    run = scanned["run"]
    assert run.code == 0, run.err
    # every target runs at once: the whole scan costs about one timeout, not nine
    assert run.elapsed < TIMEOUT_S * 4, run.elapsed
    reasons = {f["reason"] for items in scanned["findings"].values() for f in items}
    assert "bug" not in reasons  # nothing crashed


@pytest.mark.parametrize(
    ("name", "reason", "says"),
    [
        ("silent", "timeout", "no answer within"),
        ("reset", "unreachable", "reset"),
        ("banner", "unreachable", "not TLS: the server sent '220 AAAA"),
        ("trickle", "timeout", "no verdict from the"),
        ("chain", "unreachable", "no verdict from the"),
        ("ipv6", "refused", "::1: connection refused"),
        ("nmap", "timeout", "nmap did not finish within 3 s"),
    ],
)
def test_each_misbehaviour_is_an_error_with_its_reason(
    scanned: dict[str, Any], name: str, reason: str, says: str
) -> None:
    found = errors(scanned, name)
    assert found, f"{name}: no error finding"
    assert any(f["reason"] == reason and says in f["message"] for f in found), [
        (f["reason"], f["message"]) for f in found
    ]


def test_protocol_rules_never_pass_on_an_unfinished_handshake(scanned: dict[str, Any]) -> None:
    for name in ("trickle", "chain"):
        uri = scanned["targets"][name]
        protocol_rules = [f for f in scanned["findings"][uri] if f["rule_id"] == "TLS-PROTO-001"]
        assert protocol_rules and all(f["status"] == "error" for f in protocol_rules), name


def test_an_alert_mid_handshake_is_a_server_that_accepts_nothing(scanned: dict[str, Any]) -> None:
    facts = scanned["resources"][scanned["targets"]["alert"]]["facts"]
    assert facts["protocols"] == [] and facts["certificate"] is None


def test_the_healthy_endpoint_is_observed_despite_the_others(scanned: dict[str, Any]) -> None:
    uri = next(u for u in scanned["resources"] if u.startswith("tls://localhost"))
    facts = scanned["resources"][uri]["facts"]
    assert "TLSv1.2" in facts["protocols"] and facts["certificate"]["chain_trusted"] is True
