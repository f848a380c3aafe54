"""HSTS and the HTTP redirect on real HTTPS servers; SMTP STARTTLS end to end."""

from __future__ import annotations

import pytest

from checks.httpfacts import parse_hsts
from checks.tls import lab
from checks.tls.http import parse_head

from .conftest import facts_of


def test_hsts_and_redirect(modern_server: lab.PythonTlsServer, pki: lab.Pki) -> None:
    with lab.PlainHttpServer(301, "https://localhost/") as plain:
        facts = facts_of(
            f"tls://localhost:{modern_server.port}?http_port={plain.port}", pki.ca_file
        )
    assert facts["hsts"] == {
        "present": True,
        "max_age": 63072000,
        "include_subdomains": True,
        "preload": True,
    }
    assert facts["http_redirect"] is True


def test_no_hsts_header_and_redirect_to_http(ec_leaf: lab.Issued) -> None:
    with (
        lab.PythonTlsServer(lab.server_context(ec_leaf), hsts=None) as server,
        lab.PlainHttpServer(302, "http://localhost/login") as plain,
    ):
        facts = facts_of(f"tls://localhost:{server.port}?http_port={plain.port}")
    assert facts["hsts"] == {
        "present": False,
        "max_age": None,
        "include_subdomains": False,
        "preload": False,
    }
    assert facts["http_redirect"] is False


def test_not_http_gives_null_hsts(ec_leaf: lab.Issued) -> None:
    # given a TLS service that does not speak HTTP, and nothing on the HTTP port
    with lab.PythonTlsServer(lab.server_context(ec_leaf), http=False) as server:
        facts = facts_of(f"tls://localhost:{server.port}?http_port={lab.closed_port()}")
    assert facts["hsts"] is None
    assert facts["http_redirect"] is None


def test_smtp_starttls(ec_leaf: lab.Issued, pki: lab.Pki) -> None:
    # given an SMTP server offering STARTTLS with a TLS 1.2+ context
    with lab.SmtpStartTlsServer(lab.server_context(ec_leaf)) as server:
        facts = facts_of(f"smtp://localhost:{server.port}", pki.ca_file)
    # then the TLS behind STARTTLS is enumerated like any endpoint, and HTTP facts are null
    assert facts["starttls"] == "smtp"
    assert facts["protocols"] == ["TLSv1.2", "TLSv1.3"]
    assert facts["cipher_suites"]["TLSv1.3"]
    assert facts["certificate"]["chain_trusted"] is True
    assert facts["hsts"] is None and facts["http_redirect"] is None


def test_smtp_tls13_only_certificate_through_starttls(ec_leaf: lab.Issued, pki: lab.Pki) -> None:
    import ssl

    context = lab.server_context(ec_leaf, minimum=ssl.TLSVersion.TLSv1_3)
    with lab.SmtpStartTlsServer(context) as server:
        facts = facts_of(f"smtp://localhost:{server.port}", pki.ca_file)
    assert facts["protocols"] == ["TLSv1.3"]
    assert facts["certificate"]["hostname_match"] is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=31536000", (31536000, False, False)),
        ('max-age="600"; includeSubDomains', (600, True, False)),
        ("MAX-AGE=0 ; INCLUDESUBDOMAINS ; preload", (0, True, True)),
        ("max-age=abc", (None, False, False)),
        ("", (None, False, False)),
    ],
)
def test_parse_hsts(value: str, expected: tuple) -> None:
    parsed = parse_hsts(value)
    assert (parsed["max_age"], parsed["include_subdomains"], parsed["preload"]) == expected


def test_parse_head_refuses_non_http() -> None:
    assert parse_head(b"SSH-2.0-OpenSSH\r\n") == (None, ())
    assert parse_head(b"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\n")[0] == 301


@pytest.mark.parametrize(
    ("scheme", "server"), [("imap", lab.ImapStartTlsServer), ("pop3", lab.Pop3StartTlsServer)]
)
def test_imap_and_pop3_starttls(
    scheme: str, server: type, ec_leaf: lab.Issued, pki: lab.Pki
) -> None:
    # given a mail server offering STARTTLS (IMAP) or STLS (POP3) with a TLS 1.2+ context
    with server(lab.server_context(ec_leaf)) as running:
        facts = facts_of(f"{scheme}://localhost:{running.port}", pki.ca_file)
    # then the TLS behind the upgrade is enumerated, and the HTTP facts are null
    assert facts["starttls"] == scheme
    assert facts["protocols"] == ["TLSv1.2", "TLSv1.3"]
    assert facts["certificate"]["chain_trusted"] is True
    assert facts["hsts"] is None and facts["http_redirect"] is None


@pytest.mark.parametrize(
    ("scheme", "server", "words"),
    [
        ("imap", lab.ImapStartTlsServer, "STARTTLS refused"),
        ("pop3", lab.Pop3StartTlsServer, "STLS refused"),
    ],
)
def test_imap_and_pop3_refusing_starttls(
    scheme: str, server: type, words: str, ec_leaf: lab.Issued
) -> None:
    from audit.models import Reason

    from .conftest import scan

    with server(lab.server_context(ec_leaf), offer_starttls=False) as running:
        observation = scan(f"{scheme}://127.0.0.1:{running.port}", timeout=4.0)
    assert not observation.resources
    assert observation.problems[0].reason is Reason.UNREACHABLE
    assert words in observation.problems[0].message


@pytest.mark.parametrize(
    ("uri", "key"),
    [
        ("imap://mail.example.test", "imap://mail.example.test:143"),
        ("pop3://mail.example.test", "pop3://mail.example.test:110"),
    ],
)
def test_mail_targets_default_ports(uri: str, key: str) -> None:
    from urllib.parse import urlsplit

    from checks.tls import FAMILY

    assert FAMILY.parse(urlsplit(uri), uri).uri == key


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("https://localhost/", True),
        ("https://LOCALHOST.:8443/path", True),
        ("https://evil.example/", False),  # upgrades nobody on this host
        ("https://localhost@evil.example/", False),  # userinfo: the host is evil.example
        ("https://localhost.evil.example/", False),
        ("//localhost/", False),  # scheme-relative: stays on http
        ("/secure", False),
        ("https://[::1/", False),  # does not parse
    ],
)
def test_the_redirect_counts_only_to_https_on_the_same_host(
    modern_server: lab.PythonTlsServer, pki: lab.Pki, location: str, expected: bool
) -> None:
    # Given plain HTTP that redirects to LOCATION, when the endpoint is scanned by name
    with lab.PlainHttpServer(301, location) as plain:
        facts = facts_of(
            f"tls://localhost:{modern_server.port}?http_port={plain.port}", pki.ca_file
        )
    # Then only a redirect to https:// on the host itself counts (WEB-REDIR-001)
    assert facts["http_redirect"] is expected
