"""Rempart's DNSSEC verdicts against ``delv`` (BIND's validator) on the same lab zones.

Both start from the same anchor, the lab root's DS (:attr:`checks.dns.lab.DnsLab.
anchors_file`, written for delv as a ``trust-anchors { . static-ds ...; };`` clause), and
both ask the lab's NSD, which serves the root, ``test.`` and every domain. delv's verdict
is read from its own words: "fully validated" is secure, "unsigned answer" insecure, a
failed resolution (expired or bad signatures, no valid RRSIG) bogus. The two validators
share no code: dnspython and the ``cryptography`` package on one side, BIND's libdns and
OpenSSL on the other.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit.plugins import CheckContext, Scope
from checks.dns import FAMILY
from checks.dns.lab import DnsLab

pytestmark = [
    pytest.mark.oracle,
    pytest.mark.skipif(
        any(shutil.which(p) is None for p in ("delv", "nsd", "ldns-signzone")),
        reason="delv (bind9-dnsutils), nsd and ldnsutils are needed",
    ),
]

DOMAINS = {
    "secure.test": "secure",
    "www.secure.test": "secure",
    "host.ent.secure.test": "secure",
    "host.ent.nsec3.test": "secure",
    "nsec3.test": "secure",
    "nsec3-bcp.test": "secure",
    "legacy.test": "secure",
    "insecure.test": "insecure",
    "flawed.test": "insecure",
    "expired.test": "bogus",
    "rollover.test": "bogus",
}


@pytest.fixture(scope="module")
def dns_lab() -> Iterator[DnsLab]:
    with DnsLab() as lab:
        yield lab


def delv_anchors(lab: DnsLab) -> Path:
    """The lab's DS anchor in BIND's syntax."""
    fields = lab.anchors_file.read_text().split()
    tag, algorithm, digest_type, digest = fields[4], fields[5], fields[6], "".join(fields[7:])
    path = lab.directory / "delv-anchors.conf"
    path.write_text(
        f'trust-anchors {{\n  . static-ds {tag} {algorithm} {digest_type} "{digest}";\n}};\n'
    )
    return path


def delv_verdict(lab: DnsLab, anchors: Path, domain: str) -> str:
    done = subprocess.run(
        ["delv", "-a", str(anchors), "+root=.", "@127.0.0.1", "-p", str(lab.port), domain, "SOA"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    said = done.stdout + done.stderr
    if "; fully validated" in said or "; negative response, fully validated" in said:
        return "secure"
    if "; unsigned answer" in said or "; negative response, unsigned answer" in said:
        return "insecure"
    if "resolution failed" in said or "no valid RRSIG" in said or "verify failed" in said:
        return "bogus"
    return f"unrecognised: {said[:300]}"


def rempart_verdict(lab: DnsLab, domain: str) -> str:
    from urllib.parse import urlsplit

    uri = f"dns://{domain}"
    ctx = CheckContext(timeout=20, scope=Scope(networks=("127.0.0.0/8",)), options=lab.options)
    observation = FAMILY.collect(FAMILY.parse(urlsplit(uri), uri), ctx)
    assert not observation.problems, observation.problems
    return str(observation.resources[0].facts["dnssec"]["status"])


@pytest.mark.parametrize(("domain", "expected"), sorted(DOMAINS.items()))
def test_rempart_and_delv_agree_on_secure_insecure_and_bogus(
    dns_lab: DnsLab, domain: str, expected: str
) -> None:
    anchors = delv_anchors(dns_lab)
    assert delv_verdict(dns_lab, anchors, domain) == expected
    assert rempart_verdict(dns_lab, domain) == expected
