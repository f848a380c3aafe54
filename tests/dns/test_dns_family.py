"""The dns family against the signed lab (NSD on loopback): each fact on a real zone."""

from __future__ import annotations

import asyncio
import gc
import os
import pickle
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fakes import SilentUdp, judged_on_threads_and_processes

from audit.engine import ScanPlan
from audit.errors import TargetError
from audit.labkit import closed_port
from audit.models import Reason
from audit.plugins import WORKER_SCANS_KEPT, CheckContext, Scope
from audit.policy import load_policy
from audit.registry import load_families
from checks.dns import FAMILY, validate_options
from checks.dns.lab import DnsLab

from .conftest import POLICIES, context, scan, zone


def documented(facts: object, prefix: str = "") -> set[str]:
    paths: set[str] = set()
    if isinstance(facts, dict):
        for name, value in facts.items():
            paths.add(prefix + name)
            if isinstance(value, dict):
                paths |= documented(value, f"{prefix}{name}.")
    return paths


def test_a_well_kept_signed_zone(dns_lab: DnsLab) -> None:
    resource = zone(dns_lab, "secure.test")
    facts = dict(resource.facts)
    assert (resource.type, resource.key, resource.unknown) == ("dns.zone", "dns://secure.test", {})
    assert documented(facts) <= {f.name for f in FAMILY.resource_types[0].facts}
    assert facts["zone"] == "secure.test" and facts["domain"] == "secure.test"
    assert facts["soa"] == {
        "mname": "ns1.secure.test",
        "rname": "hostmaster.secure.test",
        "serial": 2026010101,
        "refresh": 7200,
        "retry": 3600,
        "expire": 1209600,
        "minimum": 3600,
    }
    assert facts["nameservers"] == [
        {"name": "ns1.secure.test", "addresses": ["127.0.0.1"]},
        {"name": "ns2.secure.test", "addresses": ["127.0.1.1"]},
    ]
    assert (facts["nameserver_count"], facts["nameserver_network_count"]) == (2, 2)
    assert facts["nameserver_networks"] == ["127.0.0.0/24", "127.0.1.0/24"]
    assert (facts["zone_transfer_open"], facts["zone_transfer_servers"]) == (False, [])
    assert (facts["recursion_open"], facts["recursion_servers"]) == (False, [])
    assert facts["caa"] == {
        "present": True,
        "found_at": "secure.test",
        "issue": ["letsencrypt.org"],
        "issuewild": [],
        "iodef": ["mailto:security@secure.test"],
    }
    dnssec = facts["dnssec"]
    assert dnssec["status"] == "secure", dnssec["reason"]
    assert (dnssec["algorithms"], dnssec["ds_digest_types"], dnssec["denial"]) == (
        [13],
        [2],
        "nsec",
    )
    assert dnssec["nsec3_iterations"] is None and dnssec["nsec3_salt"] is None
    assert 27 < dnssec["signature_expires_in_days"] <= 28.1  # ldns-signzone's 4 weeks


def test_a_neglected_zone(dns_lab: DnsLab) -> None:
    facts = zone(dns_lab, "flawed.test").facts
    assert facts["zone_transfer_open"] is True
    assert facts["zone_transfer_servers"] == ["ns1.flawed.test (127.0.0.1)"]
    assert facts["recursion_open"] is True
    assert facts["recursion_servers"] == ["ns2.flawed.test (127.0.0.3)"]
    assert (facts["nameserver_count"], facts["nameserver_network_count"]) == (2, 1)
    assert facts["caa"]["present"] is False and facts["caa"]["found_at"] is None
    assert facts["dnssec"]["status"] == "insecure"
    assert "without DS" in facts["dnssec"]["reason"]
    assert facts["dnssec"]["algorithms"] == [] and facts["dnssec"]["denial"] is None
    assert facts["dnssec"]["signature_expires_in_days"] is None
    assert facts["soa"]["refresh"] == 300


def test_insecure_delegation_expired_signatures_nsec3_and_legacy_algorithms(
    dns_lab: DnsLab,
) -> None:
    insecure = zone(dns_lab, "insecure.test").facts["dnssec"]
    assert (insecure["status"], insecure["ds_digest_types"]) == ("insecure", [])
    rollover = zone(dns_lab, "rollover.test").facts["dnssec"]
    assert rollover["status"] == "bogus" and "matches its DS" in rollover["reason"]
    expired = zone(dns_lab, "expired.test").facts["dnssec"]
    assert expired["status"] == "bogus" and "expired" in expired["reason"]
    assert expired["signature_expires_in_days"] < -365
    nsec3 = zone(dns_lab, "nsec3.test").facts["dnssec"]
    assert (nsec3["status"], nsec3["denial"]) == ("secure", "nsec3")
    assert (nsec3["nsec3_iterations"], nsec3["nsec3_salt"]) == (10, "a1b2c3d4")
    legacy = zone(dns_lab, "legacy.test").facts["dnssec"]
    assert (legacy["status"], legacy["algorithms"], legacy["ds_digest_types"]) == (
        "secure",
        [5],
        [1],
    )


def test_the_checks_of_a_shared_chain_are_made_once_per_answer(
    dns_lab: DnsLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Domains under one TLD share the root's and the TLD's keys: their signatures are
    checked for the first domain and reused for the next while the session hands out the
    same answers; never for a new answer, never past a signature's expiry; and a chain
    broken lower down is still found broken."""
    import dns.dnssec

    from checks.dns import dnssec
    from checks.dns.client import DnsClient, DnsSession

    checked: list[str] = []
    real = dns.dnssec.validate

    def counting(rrset: Any, *args: Any, **kwargs: Any) -> None:
        checked.append(rrset.name.to_text())
        real(rrset, *args, **kwargs)

    monkeypatch.setattr(dns.dnssec, "validate", counting)
    anchors = dnssec.load_anchors(str(dns_lab.anchors_file))
    session = DnsSession()
    client = DnsClient([dns_lab.resolver], 5.0, session=session)

    def walk(domain: str) -> tuple[str | None, set[str]]:
        checked.clear()
        result = asyncio.run(dnssec.validate_domain(client, domain, anchors))
        return result.status, set(checked)

    assert walk("secure.test") == ("secure", {".", "test.", "secure.test."})
    # the root's keys and the TLD's DS and keys: proven on the same answers already
    assert walk("nsec3.test") == ("secure", {"nsec3.test."})
    status, names = walk("expired.test")
    assert status == "bogus" and names == {"expired.test."}
    # past the first expiry among the signatures of a proof, it is made again
    for proof in session.proven.values():
        proof.until = time.time() - 1
    assert walk("secure.test") == ("secure", {".", "test.", "secure.test."})
    # and on a new answer (the cached one gone), as well
    session.answers.clear()
    assert walk("nsec3.test") == ("secure", {".", "test.", "nsec3.test."})


def test_a_name_inside_a_zone_reports_its_zone_and_climbs_for_caa(dns_lab: DnsLab) -> None:
    facts = zone(dns_lab, "www.secure.test").facts
    assert (facts["domain"], facts["zone"]) == ("www.secure.test", "secure.test")
    assert facts["caa"]["found_at"] == "secure.test"  # RFC 8659 §3: the parent's RRset
    assert facts["dnssec"]["status"] == "secure"


def test_empty_non_terminals_on_the_way_are_walked_through(dns_lab: DnsLab) -> None:
    # ent.secure.test has no records (NSEC covers it), ent.nsec3.test has its NSEC3
    for domain in ("host.ent.secure.test", "host.ent.nsec3.test"):
        dnssec = zone(dns_lab, domain).facts["dnssec"]
        assert dnssec["status"] == "secure", dnssec["reason"]


def test_a_domain_that_does_not_exist_is_not_found(dns_lab: DnsLab) -> None:
    observation = scan("dns://nowhere.test", context(dns_lab))
    assert observation.resources == ()
    (problem,) = observation.problems
    assert problem.reason is Reason.NOT_FOUND and "NXDOMAIN" in problem.message


def test_a_silent_resolver_leaves_everything_unknown_with_its_reason(dns_lab: DnsLab) -> None:
    with SilentUdp() as silent:
        ctx = context(dns_lab, timeout=1.5, resolvers=[f"127.0.0.1:{silent.port}"])
        observation = scan("dns://secure.test", ctx)
    assert observation.resources == ()
    (problem,) = observation.problems
    assert problem.reason is Reason.TIMEOUT and f"127.0.0.1:{silent.port}" in problem.message
    # a resolver whose port is closed says so at once: unreachable, the facts unknown too
    port = closed_port()
    closed = scan("dns://secure.test", context(dns_lab, resolvers=[f"127.0.0.1:{port}"]))
    assert closed.resources == () and closed.problems[0].reason is Reason.UNREACHABLE


def test_a_nameserver_outside_the_scope_is_listed_and_never_probed(dns_lab: DnsLab) -> None:
    # Given a scope of 127.0.0.1 only: ns2.flawed.test (127.0.0.3, the recursor) is outside
    assert dns_lab.recursor is not None
    before = dns_lab.recursor.queries
    ctx = context(dns_lab, scope=Scope(networks=("127.0.0.1/32",)))
    resource = scan("dns://flawed.test", ctx).resources[0]
    # Then it is listed, sent nothing, and what it would say is unknown, not "closed"
    assert dns_lab.recursor.queries == before
    assert {"name": "ns2.flawed.test", "addresses": ["127.0.0.3"]} in resource.facts["nameservers"]
    assert "recursion_open" not in resource.facts
    problem = resource.unknown["recursion_open"]
    assert problem.reason is Reason.UNDECIDABLE and "scope" in problem.message
    # while the admitted nameserver's open transfer is a fact
    assert resource.facts["zone_transfer_open"] is True


def test_with_no_scope_declared_only_loopback_nameservers_are_probed(dns_lab: DnsLab) -> None:
    resource = scan("dns://secure.test", context(dns_lab, scope=Scope())).resources[0]
    assert resource.facts["zone_transfer_open"] is False  # every server is on loopback


def test_anchors_that_do_not_cover_the_domain_leave_it_insecure(
    dns_lab: DnsLab, tmp_path: Path
) -> None:
    anchors = tmp_path / "anchors.zone"
    anchors.write_text("example. IN DS 12345 13 2 " + "00" * 32 + "\n")
    facts = zone(dns_lab, "secure.test", dnssec_anchors=str(anchors)).facts
    assert facts["dnssec"]["status"] == "insecure"
    assert "under no trust anchor" in facts["dnssec"]["reason"]


def test_a_wrong_root_anchor_makes_the_chain_bogus(dns_lab: DnsLab, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.zone"
    anchors.write_text(". 3600 IN DS 20326 8 2 " + "AB" * 32 + "\n")
    facts = zone(dns_lab, "secure.test", dnssec_anchors=str(anchors)).facts
    assert facts["dnssec"]["status"] == "bogus"
    assert "matches its DS or trust anchor" in facts["dnssec"]["reason"]


def test_a_dnskey_anchor_works_as_a_ds_anchor(dns_lab: DnsLab, tmp_path: Path) -> None:
    import subprocess

    dnskey = subprocess.run(
        ["dig", "+short", "@127.0.0.1", "-p", str(dns_lab.port), ".", "DNSKEY"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    anchors = tmp_path / "anchors.zone"
    anchors.write_text(f". IN DNSKEY {dnskey}\n")
    facts = zone(dns_lab, "nsec3.test", dnssec_anchors=str(anchors)).facts
    assert facts["dnssec"]["status"] == "secure", facts["dnssec"]["reason"]


def test_a_bad_anchors_file_makes_dnssec_unknown(dns_lab: DnsLab, tmp_path: Path) -> None:
    anchors = tmp_path / "anchors.zone"
    anchors.write_text("secure.test. IN A 127.0.0.1\n")
    resource = scan("dns://secure.test", context(dns_lab, dnssec_anchors=str(anchors))).resources[0]
    assert "dnssec" not in resource.facts
    assert "only DS and DNSKEY" in resource.unknown["dnssec"].message


@pytest.mark.parametrize(
    ("uri", "why"),
    [
        ("dns://example.org:53", "no port"),
        ("dns://192.0.2.1", "not an address"),
        ("dns://example.org?x=1", "no query"),
        ("dns://example.org/path", "unexpected path"),
        ("dns://-bad.example", "not a valid host name"),
    ],
)
def test_targets_are_domains_only(uri: str, why: str) -> None:
    with pytest.raises(TargetError, match=why):
        FAMILY.parse(urlsplit(uri), uri)


def test_targets_are_canonical() -> None:
    target = FAMILY.parse(urlsplit("dns://Secure.TEST."), "dns://Secure.TEST.")
    assert (target.uri, target.host) == ("dns://secure.test", "secure.test")


@pytest.mark.parametrize(
    ("block", "why"),
    [
        ({"resolver": ["127.0.0.1"]}, "unknown field 'resolver'"),
        ({"resolvers": "127.0.0.1"}, "list of HOST"),
        ({"resolvers": ["ns.example.org"]}, "give an IP address"),
        ({"nameserver_port": 0}, "port number"),
        ({"dnssec_anchors": "/nonexistent/anchors"}, "cannot read DNSSEC anchors"),
        ([], "expected a mapping"),
    ],
)
def test_settings_are_checked_when_the_inventory_loads(block: object, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        validate_options(block)


def test_the_default_anchors_are_the_iana_root_ksks() -> None:
    from checks.dns.dnssec import load_anchors

    anchors = load_anchors(None)
    assert sorted(int(ds.key_tag) for ds in anchors.ds["."]) == [20326, 38696]
    assert {(int(ds.algorithm), int(ds.digest_type)) for ds in anchors.ds["."]} == {(8, 2)}
    assert "root-anchors.xml" in anchors.source


def test_the_context_carries_no_resolver_by_default() -> None:
    from checks.dns.collect import settings

    conf = settings(CheckContext())
    assert (conf.resolvers, conf.anchors, conf.nameserver_port) == (None, None, 53)


def test_a_silent_nameserver_leaves_recursion_unknown_with_its_reason(dns_lab: DnsLab) -> None:
    resource = scan("dns://lame.test", context(dns_lab, timeout=1.5)).resources[0]
    # ns2 (nothing listening) never answers the recursion question: unknown, not "closed"
    # (its closed UDP port says so with an ICMP port unreachable: the reason is that)
    problem = resource.unknown["recursion_open"]
    assert problem.reason is Reason.UNREACHABLE and "ns2.lame.test (127.0.2.9)" in problem.message
    assert "refused" in problem.message
    # its closed TCP port refuses the transfer, which is an answer: the zone is not open
    assert resource.facts["zone_transfer_open"] is False


def test_networks_are_ipv4_24_and_ipv6_48_prefixes() -> None:
    from checks.dns.collect import _network

    assert _network("192.0.2.77") == "192.0.2.0/24"
    assert _network("2001:db8:1:2::53") == "2001:db8:1::/48"


def open_files() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_the_jobs_of_a_scan_sent_to_a_worker_share_one_session_and_leave_no_socket(
    dns_lab: DnsLab,
) -> None:
    """A cluster worker gets each job's context pickled on its own. They must still share
    the scan's DNS session there (one socket per server, answers reused), and a session
    let go must close its sockets: before, each target left two open on the loop."""
    ctx = context(dns_lab)
    scan("dns://secure.test", context(dns_lab))  # the probe loop started, its files open
    gc.collect()
    before = open_files()
    copies = [pickle.loads(pickle.dumps(ctx)) for _ in range(40)]
    for index, copy in enumerate(copies):
        observation = scan(f"dns://{['secure.test', 'insecure.test'][index % 2]}", copy)
        assert not observation.problems and not observation.resources[0].unknown
    assert len({id(c.shared) for c in copies}) == 1  # one space for the scan in this worker
    assert copies[0].shared is not ctx.shared  # not the scanning process's own
    assert open_files() - before <= 4  # one socket per server, not one per target
    # Another scan gets its own space; past WORKER_SCANS_KEPT scans the oldest is let
    # go, and its session closes its sockets
    links = copies[0].shared["dns.session"].links.values()
    channels = [link.channel for link in links if link.channel is not None]
    assert channels and not any(c.closed for c in channels)
    for _ in range(WORKER_SCANS_KEPT):
        other = pickle.loads(pickle.dumps(context(dns_lab)))
        assert other.shared is not copies[0].shared
        scan("dns://secure.test", other)
    del copies, other, observation, copy
    gc.collect()
    time.sleep(0.2)  # the close runs on the probe loop
    assert all(c.closed for c in channels)


def test_worker_processes_judge_the_lab_as_threads_do(dns_lab: DnsLab, tmp_path: Path) -> None:
    """A registered family goes to a worker process by name and is loaded from the
    worker's own registry: same findings as on the thread pool, none lost."""
    families = load_families()
    policy = load_policy(POLICIES / "dns-hygiene.yaml", families.fact_catalogue())
    uris = ["dns://secure.test", "dns://insecure.test", "dns://expired.test", "dns://lame.test"]
    plan = ScanPlan(
        targets=tuple(FAMILY.parse(urlsplit(u), u) for u in uris),
        policies=(policy,),
        context=context(dns_lab),
        concurrency=4,
    )
    on_threads, on_processes = judged_on_threads_and_processes(plan, families, tmp_path, 2)
    assert on_processes == on_threads
    assert not any(reason == "worker_lost" for _, _, reason in on_processes)
    assert {status for _, status, _ in on_threads} >= {"pass", "fail"}
