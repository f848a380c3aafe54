"""The family against real servers: NSD serving signed mail zones, nginx serving MTA-STS
policies with the lab PKI, STARTTLS MX servers, all on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import replace

import pytest
from fakes import CountingListener

from audit.models import Reason
from audit.plugins import Scope
from checks.mail import FACTS
from checks.mail.lab import FLAWED_POLICY, OUTSIDE, MailLab

from .conftest import context, domain_of, observe

TOP = {fact.name for fact in FACTS if "." not in fact.name}


def documented() -> set[str]:
    return {fact.name for fact in FACTS}


@pytest.fixture(scope="module")
def good(lab: MailLab) -> dict[str, object]:
    observation = observe(lab.uri("mailgood.test"), context(lab))
    assert not observation.problems, observation.problems
    return dict(domain_of(observation).facts)


def test_every_fact_returned_is_documented(lab: MailLab, good: dict[str, object]) -> None:
    assert set(good) == TOP
    for name, value in good.items():
        if isinstance(value, dict) and name != "dkim":
            assert {f"{name}.{key}" for key in value} <= documented(), name
    assert {f"dkim.{key}" for key in good["dkim"]} <= documented()  # type: ignore[union-attr]


def test_a_good_domain(good: dict[str, object]) -> None:
    assert good["mx"] == ["mx.mailgood.test"] and good["null_mx"] is False
    assert good["spf"] == {
        "present": True,
        "record": "v=spf1 mx include:_spf.mailgood.test -all",
        "all": "-all",
        "lookups": 2,
        "void_lookups": 0,
        "errors": [],
        "includes": ["_spf.mailgood.test"],
    }
    dmarc = good["dmarc"]
    assert isinstance(dmarc, dict)
    assert dmarc["policy"] == "reject" and dmarc["external_rua_authorized"] is True
    assert dmarc["external_rua"] == [{"domain": "reports.test", "authorized": True}]
    assert good["dkim"] == {
        "domainkey_node": True,
        "selectors": {
            "s2025": {
                "present": True,
                "key_type": "RSA",
                "key_bits": 2048,
                "testing": False,
                "revoked": False,
            }
        },
    }
    sts = good["mta_sts"]
    assert isinstance(sts, dict)
    assert (sts["present"], sts["mode"], sts["max_age"], sts["mx_covered"]) == (
        True,
        "enforce",
        604800,
        True,
    )
    assert good["tls_rpt"] == {"present": True, "rua": ["mailto:tlsrpt@mailgood.test"]}
    dane = good["dane"]
    assert isinstance(dane, dict)
    assert (dane["secure_mx"], dane["usable_mx"]) == (1, 1)
    assert dane["hosts"][0]["dnssec"] == "secure"


def test_the_mx_is_judged_as_a_starttls_endpoint(lab: MailLab) -> None:
    observation = observe(lab.uri("mailgood.test"), context(lab))
    port = lab.smtp_ports["mailgood.test"]
    (endpoint,) = [r for r in observation.resources if r.type == "tls.endpoint"]
    assert endpoint.key == f"smtp://mx.mailgood.test:{port}"
    assert endpoint.target == observation.target.uri  # the engine's vetting requires it
    assert endpoint.facts["starttls"] == "smtp"
    assert endpoint.facts["certificate"]["chain_trusted"] is True
    assert endpoint.facts["certificate"]["hostname_match"] is True
    assert domain_of(observation).facts["smtp_targets"] == [endpoint.key]


def test_a_flawed_domain(lab: MailLab) -> None:
    observation = observe(lab.uri("mailflawed.test"), context(lab))
    facts = domain_of(observation).facts
    assert facts["spf"]["all"] == "?all"
    assert facts["spf"]["lookups"] == 17 and facts["spf"]["void_lookups"] == 8
    assert facts["dmarc"]["policy"] == "none"
    assert facts["dmarc"]["external_rua_authorized"] is False
    assert facts["dkim"]["selectors"]["s2025"]["key_bits"] == 1024
    assert facts["mta_sts"]["mode"] == "testing" and facts["mta_sts"]["mx_covered"] is False
    assert facts["tls_rpt"]["present"] is False
    assert facts["dane"]["hosts"][0]["dnssec"] == "insecure"
    (endpoint,) = [r for r in observation.resources if r.type == "tls.endpoint"]
    assert endpoint.facts["certificate"]["expired"] is True


def test_a_domain_without_mail(lab: MailLab) -> None:
    facts = domain_of(observe(lab.uri("nomail.test"), context(lab))).facts
    assert facts["mx"] == [] and facts["null_mx"] is True
    assert facts["spf"]["record"] == "v=spf1 -all" and facts["dmarc"]["policy"] == "reject"
    assert facts["dkim"]["domainkey_node"] is False  # NXDOMAIN below: RFC 8020
    assert facts["smtp_targets"] == [] and facts["dane"]["hosts"] == []
    bare = domain_of(observe(lab.uri("nomailbad.test"), context(lab))).facts
    assert bare["mx"] == [] and bare["null_mx"] is False
    assert bare["spf"]["present"] is False and bare["dmarc"]["present"] is False


@pytest.fixture
def outside() -> Iterator[CountingListener]:
    listener = CountingListener(OUTSIDE)
    yield listener
    listener.close()


def test_an_mx_outside_the_scope_is_listed_and_never_contacted(
    lab: MailLab, outside: CountingListener
) -> None:
    # Given mailout.test, whose MX mx.elsewhere.test resolves (in the lab) to a listener
    # on 127.0.0.2, outside a scope of 127.0.0.1/32 and the lab's mail domains
    uri = f"mail://mailout.test?smtp_port={outside.port}"
    # When the domain is observed
    observation = observe(uri, context(lab))
    # Then the MX is listed out of scope, no SMTP target derives from it, nothing connects
    facts = domain_of(observation).facts
    assert facts["mx_out_of_scope"] == ["mx.elsewhere.test"]
    assert facts["smtp_targets"] == []
    assert [r.type for r in observation.resources] == ["mail.domain"]
    assert outside.connections == 0


def test_without_a_scope_derived_hosts_pass_on_the_scans_resolver_only_on_loopback(
    lab: MailLab, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With no scope declared only loopback passes. The MX and the policy host are looked
    # up with the scan's resolver (the lab), never the system's: it answers loopback, so
    # both are admitted and observed
    import audit.scope

    def no_system_lookup(*args: object, **kwargs: object) -> object:
        raise AssertionError("the system resolver was asked")

    monkeypatch.setattr(audit.scope, "resolve_all", no_system_lookup)
    resource = domain_of(observe(lab.uri("mailgood.test"), context(lab, scope=Scope())))
    assert resource.facts["mx_out_of_scope"] == []
    port = lab.smtp_ports["mailgood.test"]
    assert resource.facts["smtp_targets"] == [f"smtp://mx.mailgood.test:{port}"]
    assert resource.facts["mta_sts"]["mode"] == "enforce"


def test_a_policy_behind_an_untrusted_certificate_is_no_policy(lab: MailLab) -> None:
    facts = domain_of(observe(lab.uri("mailgood.test"), context(lab, ca_file=None))).facts
    assert facts["mta_sts"]["mode"] is None
    assert facts["mta_sts"]["policy_error"].startswith("certificate refused")


def test_a_policy_host_that_does_not_answer_leaves_mta_sts_unknown(lab: MailLab) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    uri = lab.uri("mailgood.test").replace(f"mta_sts_port={lab.sts.port}", f"mta_sts_port={port}")
    resource = domain_of(observe(uri, context(lab)))
    assert "mta_sts" in resource.unknown and "mta_sts" not in resource.facts
    assert resource.unknown["mta_sts"].reason is Reason.UNREACHABLE


def test_a_served_policy_that_does_not_parse(lab: MailLab) -> None:
    lab.sts.set_policy("mta-sts.mailflawed.test", "version: STSv2\n")
    try:
        facts = domain_of(observe(lab.uri("mailflawed.test"), context(lab))).facts
    finally:
        lab.sts.set_policy("mta-sts.mailflawed.test", FLAWED_POLICY)
    assert facts["mta_sts"]["policy_error"] == "version is not STSv1"


def test_a_silent_resolver_leaves_every_fact_unknown(lab: MailLab) -> None:
    # Given a resolver that receives every question and never answers
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        options = {
            "dns": {**lab.options["dns"], "resolvers": [f"127.0.0.1:{silent.getsockname()[1]}"]}
        }
        resource = domain_of(
            observe(lab.uri("mailgood.test"), context(lab, timeout=4, options=options))
        )
    # Then nothing is reported absent: every DNS fact is unknown, with the timeout
    for name in TOP - {"domain"}:
        assert name in resource.unknown and name not in resource.facts, name
        assert resource.unknown[name].reason is Reason.TIMEOUT, name


def test_dane_in_a_signed_zone_without_tlsa(lab: MailLab) -> None:
    facts = domain_of(observe(lab.uri("mailnodane.test", dkim=()), context(lab))).facts
    (host,) = facts["dane"]["hosts"]
    assert host == {
        "host": "mx.mailnodane.test",
        "dnssec": "secure",
        "tlsa_present": False,
        "usable": False,
        "records": [],
    }
    assert (facts["dane"]["secure_mx"], facts["dane"]["usable_mx"]) == (1, 0)


def test_dane_without_the_lab_anchor_is_never_usable(lab: MailLab) -> None:
    # The shipped IANA anchors do not cover the lab's root: nothing there is secure, and
    # the MX's zone is insecure rather than DANE-usable.
    options = {"dns": {k: v for k, v in lab.options["dns"].items() if k != "dnssec_anchors"}}
    facts = domain_of(observe(lab.uri("mailgood.test"), context(lab, options=options))).facts
    assert facts["dane"]["hosts"][0]["dnssec"] in ("insecure", "bogus", "indeterminate")
    assert facts["dane"]["usable_mx"] == 0


def test_selectors_from_the_inventory_per_system(lab: MailLab) -> None:
    from urllib.parse import urlsplit

    from checks.mail import FAMILY

    uri = lab.uri("mailgood.test", dkim=())
    target = replace(FAMILY.parse(urlsplit(uri), uri), system="Messagerie")
    options = {**lab.options, "mail": {"dkim": {"Messagerie": ["s2025", "old"]}}}
    resource = domain_of(FAMILY.collect(target, context(lab, options=options)))
    selectors = resource.facts["dkim"]["selectors"]
    assert selectors["s2025"]["present"] is True and selectors["old"]["present"] is False


def test_the_mail_block_may_name_its_own_resolver(lab: MailLab) -> None:
    # No dns settings at all: the mail block's resolver and anchors are enough
    options = {"mail": {k: v for k, v in lab.options["dns"].items() if k != "nameserver_port"}}
    resource = domain_of(observe(lab.uri("mailgood.test"), context(lab, options=options)))
    assert not resource.unknown
    assert resource.facts["dane"]["usable_mx"] == 1


def test_a_silent_mx_costs_its_endpoint_never_the_domain(lab: MailLab) -> None:
    from checks.tls.lab import BlackHoleServer

    # Given an MX port that accepts connections and never speaks
    with BlackHoleServer() as hole:
        uri = lab.uri("mailgood.test").replace(
            f"smtp_port={lab.smtp_ports['mailgood.test']}", f"smtp_port={hole.port}"
        )
        observation = observe(uri, context(lab, timeout=6))
    # Then the domain's facts are all there, and the endpoint is a problem of its own
    resource = domain_of(observation)
    assert not resource.unknown and resource.facts["spf"]["present"] is True
    (problem,) = observation.problems
    assert problem.key == f"smtp://mx.mailgood.test:{hole.port}"
    assert problem.resource_type == "tls.endpoint"
    assert problem.reason in (Reason.TIMEOUT, Reason.UNREACHABLE)


class PolicyServer:
    """A hostile policy host: TLS with the lab certificate, then ``reply`` whatever asked."""

    def __init__(self, lab: MailLab, reply: bytes) -> None:
        from audit.labkit import ThreadedServer
        from checks.tls.lab import server_context

        context = server_context(lab.pki.issue(("mta-sts.mailgood.test",)))

        class Server(ThreadedServer):
            def handle(self, connection: socket.socket) -> None:
                with context.wrap_socket(connection, server_side=True) as tls:
                    tls.recv(4096)
                    tls.sendall(reply)

        self.server = Server()

    def __enter__(self) -> int:
        self.server.__enter__()
        return int(self.server.port)

    def __exit__(self, *exc: object) -> None:
        self.server.__exit__(*exc)


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        (b"HTTP/1.1 301 Moved\r\nLocation: https://elsewhere.test/\r\n\r\n", "HTTP status 301"),
        (b"HTTP/1.1 200 OK\r\n\r\n" + b"mx: a\n" * 20000, "larger than 65536"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "malformed"),
        (b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * 20000, "malformed"),
    ],
)
def test_a_hostile_policy_host_gives_no_policy(lab: MailLab, reply: bytes, error: str) -> None:
    with PolicyServer(lab, reply) as port:
        uri = lab.uri("mailgood.test").replace(
            f"mta_sts_port={lab.sts.port}", f"mta_sts_port={port}"
        )
        facts = domain_of(observe(uri, context(lab))).facts
    assert facts["mta_sts"]["mode"] is None
    assert error in facts["mta_sts"]["policy_error"]


def test_an_observation_cut_by_its_budget_keeps_every_fact_unknown(lab: MailLab) -> None:
    # Budgets too short for the whole observation: what was complete is kept, the rest is
    # unknown (timeout), and nothing half-observed is reported (MTA-STS without its policy)
    for budget in (0.005, 0.02, 0.05, 0.1):
        resource = domain_of(observe(lab.uri("mailgood.test"), context(lab, timeout=budget)))
        assert set(resource.facts) | set(resource.unknown) == TOP, budget
        assert not set(resource.facts) & set(resource.unknown), budget
        if "mta_sts" in resource.facts:
            assert resource.facts["mta_sts"]["mode"] == "enforce", budget
        if "dane" in resource.facts:
            assert resource.facts["dane"]["usable_mx"] == 1, budget
    # A budget spent before any answer can come back (1 ms was not: on an idle machine the
    # lab's NSD answers the two questions SPF needs within it, and SPF was rightly known)
    resource = domain_of(observe(lab.uri("mailgood.test"), context(lab, timeout=0)))
    assert set(resource.unknown) == TOP - {"domain"} and set(resource.facts) == {"domain"}
    assert resource.unknown["spf"].reason is Reason.TIMEOUT


def test_an_mx_without_an_address_is_not_probed_and_its_endpoint_is_unknown(
    lab: MailLab,
) -> None:
    # Given a domain whose MX name has no A or AAAA record at the scan's resolver
    observation = observe(lab.uri("mxgone.test"), context(lab))
    facts = domain_of(observation).facts
    # Then no SMTP target derives from it (the TLS probe never resolves it another way),
    # it is not called out of scope, and its endpoint's facts are unknown with the reason
    assert facts["mx"] == ["mx.mxgone.test"] and facts["mx_out_of_scope"] == []
    assert facts["smtp_targets"] == []
    (problem,) = [p for p in observation.problems if p.resource_type == "tls.endpoint"]
    assert "has no address" in problem.message and "mx.mxgone.test" in (problem.key or "")
