"""The web family against real nginx sites on loopback: the facts it reads."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from audit.errors import TargetError
from audit.models import Reason
from checks.web import FAMILY, lab

from .conftest import facts_of, scan, site


def test_a_hardened_site_shows_every_header(web: lab.NginxLab, pki: lab.Pki) -> None:
    # Given the hardened nginx site, and plain HTTP that redirects to it
    facts = facts_of(site(web, "hardened"), pki.ca_file, http_port=web.port("upgrade"))
    # Then every header is read, cookies are described without their value
    assert facts["status"] == 200 and facts["tls_verified"] is True
    assert facts["csp"]["present"] and not facts["csp"]["unsafe_inline"]
    assert facts["csp"]["object_src_none"] and facts["csp"]["base_uri_restricted"]
    assert facts["csp"]["frame_ancestors"] == "'none'"
    assert facts["x_content_type_options"] == "nosniff"
    assert facts["x_frame_options"] == "DENY"
    assert facts["referrer_policy"] == "no-referrer"
    assert facts["permissions_policy"].startswith("geolocation")
    assert facts["cross_origin_opener_policy"] == "same-origin"
    assert facts["cross_origin_resource_policy"] == "same-origin"
    assert facts["hsts"] == {
        "present": True,
        "max_age": 63072000,
        "include_subdomains": True,
        "preload": True,
    }
    assert facts["cookies"] == [
        {
            "name": "__Host-session",
            "secure": True,
            "http_only": True,
            "same_site": "Strict",
            "domain": None,
            "path": "/",
            "prefix_ok": True,
        }
    ]
    assert facts["cookies_insecure"] == 0
    assert "secret-value" not in repr(facts)  # a cookie's value is never kept
    assert "set-cookie" not in facts["headers"]
    assert facts["http_redirects_to_https"] is True
    assert facts["server_disclosure"] == []
    assert facts["third_party_origins"] == ["https://cdn.example.org"]
    assert facts["sri_missing"] == []
    txt = facts["security_txt"]
    assert txt["present"] and txt["contact"] == ["mailto:securite@example.gouv.fr"]
    assert txt["expired"] is False and txt["errors"] == [] and txt["signed"] is False
    assert facts["cors"] == {
        "allow_origin": None,
        "allow_credentials": False,
        "wildcard_with_credentials": False,
    }


def test_a_bare_site_shows_what_is_missing(web: lab.NginxLab, pki: lab.Pki) -> None:
    facts = facts_of(site(web, "bare"), pki.ca_file, http_port=web.port("plain"))
    assert facts["csp"]["present"] is False and facts["csp"]["unsafe_inline"] is True
    assert facts["x_content_type_options"] is None and facts["referrer_policy"] is None
    assert facts["hsts"]["present"] is False
    assert facts["cookies_insecure"] == 1 and facts["cookies"][0]["secure"] is False
    assert "x1" not in repr(facts["cookies"])
    assert facts["headers"]["x-csrf-token"] == "[redacted]" and "s3cr3t" not in repr(facts)
    assert facts["server_disclosure"] and facts["server_disclosure"][0].startswith("Server: nginx/")
    assert facts["http_redirects_to_https"] is False  # plain HTTP answers 200
    assert facts["security_txt"]["present"] is False
    assert facts["third_party_origins"] == [
        "https://cdn.example.org",
        "https://fonts.example.net",
        "https://video.example.com",
    ]
    # the query string (a version, or a token) is not reported
    assert facts["sri_missing"] == [
        "https://cdn.example.org/jquery.js",
        "https://fonts.example.net/css",
    ]


def test_a_nonce_makes_unsafe_inline_safe(web: lab.NginxLab, pki: lab.Pki) -> None:
    csp = facts_of(site(web, "nonce"), pki.ca_file)["csp"]
    assert csp["unsafe_inline"] is False  # CSP3: a nonce cancels 'unsafe-inline'
    assert csp["wildcard_sources"] == []  # and 'strict-dynamic' cancels https:
    assert csp["directives"]["script-src"][0] == "'nonce-r4nd0m'"


def test_a_credentialed_cors_wildcard_is_seen(web: lab.NginxLab, pki: lab.Pki) -> None:
    cors = facts_of(site(web, "cors"), pki.ca_file)["cors"]
    assert cors == {
        "allow_origin": "*",
        "allow_credentials": True,
        "wildcard_with_credentials": True,
    }


def test_an_expired_security_txt(web: lab.NginxLab, pki: lab.Pki) -> None:
    txt = facts_of(site(web, "expired"), pki.ca_file)["security_txt"]
    assert txt["present"] is True and txt["expired"] is True
    assert any("past" in error for error in txt["errors"])


def test_a_redirect_chain_leaving_the_scope_is_recorded_not_followed(
    web: lab.NginxLab, pki: lab.Pki
) -> None:
    # Given /start -> /next (same host) -> https://127.0.0.1/out (loopback) -> 192.0.2.10
    facts = facts_of(site(web, "leaving", "/start"), pki.ca_file)
    port = web.port("leaving")
    # Then the loopback hops are followed, and the last Location is only recorded
    assert [hop["location"] for hop in facts["redirect_chain"]] == [
        f"https://localhost:{port}/next",
        f"https://127.0.0.1:{port}/out",
        "https://192.0.2.10/",
    ]
    assert "s3cr3t" not in repr(facts)  # a query string may carry a ticket: never kept
    assert facts["redirect_refused"].startswith("https://192.0.2.10/:")
    assert "no scope declared" in facts["redirect_refused"]
    assert facts["final_url"] == f"https://127.0.0.1:{port}/out" and facts["status"] == 302


def test_a_malformed_location_is_recorded_not_fetched(web: lab.NginxLab, pki: lab.Pki) -> None:
    facts = facts_of(site(web, "badhop"), pki.ca_file)
    assert facts["redirect_refused"] == "https://localhost:99999/x: not a URL"
    assert facts["status"] == 302


def test_an_untrusted_certificate_is_observed_unverified(web: lab.NginxLab) -> None:
    facts = facts_of(site(web, "hardened"))  # the lab CA is not trusted
    assert facts["tls_verified"] is False and facts["csp"]["present"] is True


def test_nothing_listening_is_an_error_of_the_target() -> None:
    observation = scan(f"https://127.0.0.1:{lab.closed_port()}/", timeout=3)
    assert [p.reason for p in observation.problems] == [Reason.REFUSED]


@pytest.mark.parametrize(
    ("uri", "key"),
    [
        ("https://LOCALHOST", "https://localhost/"),
        ("https://localhost:443/a b", None),
        ("https://localhost:8443/fr/?lang=fr", "https://localhost:8443/fr/?lang=fr"),
        ("https://[::1]:8443", "https://[::1]:8443/"),
        ("https://user:pw@localhost/", None),
        ("https://localhost/#frag", None),
    ],
)
def test_targets_are_canonical_urls(uri: str, key: str | None) -> None:
    if key is None:
        with pytest.raises(TargetError):
            FAMILY.parse(urlsplit(uri), uri)
    else:
        assert FAMILY.parse(urlsplit(uri), uri).uri == key


@pytest.mark.parametrize(
    "block", [{"http_port": "80"}, {"http_port": -1}, {"port": 80}, [80], {"http_port": True}]
)
def test_web_settings_are_checked(block: object) -> None:
    assert FAMILY.validate_options is not None
    with pytest.raises(ValueError, match=r"mapping|setting|http_port"):
        FAMILY.validate_options(block)


def test_every_emitted_fact_is_documented(web: lab.NginxLab, pki: lab.Pki) -> None:
    documented = {f.name for f in FAMILY.resource_types[0].facts}
    facts = facts_of(site(web, "hardened"), pki.ca_file, http_port=web.port("upgrade"))
    for name, value in facts.items():
        assert name in documented, name
        if isinstance(value, dict) and name not in ("headers",):
            for key in value:
                if name == "csp" or name in ("cors", "hsts", "security_txt", "observatory"):
                    assert f"{name}.{key}" in documented, f"{name}.{key}"
