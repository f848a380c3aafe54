"""The web family's parsers on hostile input, and their semantics case by case."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from checks.web.cookies import parse_set_cookie
from checks.web.csp import csp_facts, parse_policies
from checks.web.observatory import _parse_int, grade
from checks.web.page import origin_of, page_facts, parse_page
from checks.web.securitytxt import security_txt_facts

TEXT = st.text(max_size=400)


@settings(max_examples=200, deadline=None)
@given(TEXT, TEXT)
def test_csp_never_raises(enforced: str, report: str) -> None:
    facts = csp_facts([enforced], [report])
    assert isinstance(facts["present"], bool)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters="=;"), min_size=1, max_size=20), TEXT)
def test_a_cookie_value_never_reaches_the_facts(name: str, value: str) -> None:
    cookie = parse_set_cookie(f"{name}=SECRET{value}; Secure; HttpOnly")
    assert cookie is None or "SECRET" not in repr(cookie)


@settings(max_examples=200, deadline=None)
@given(TEXT, st.one_of(st.none(), TEXT))
def test_security_txt_never_raises(text: str, content_type: str | None) -> None:
    facts = security_txt_facts("https://x/.well-known/security.txt", text, content_type)
    assert facts["present"] is True and isinstance(facts["errors"], list)


@settings(max_examples=100, deadline=None)
@given(TEXT)
def test_html_never_raises(html: str) -> None:
    assert isinstance(page_facts("https://x/", parse_page(html))["sri_missing"], list)


@pytest.mark.parametrize(
    ("policy", "unsafe_inline", "unsafe_eval"),
    [
        ("default-src 'self'", False, False),
        ("default-src 'self' 'unsafe-inline'", True, False),
        ("script-src 'nonce-abc' 'unsafe-inline'", False, False),
        ("script-src 'sha256-abc=' 'unsafe-inline' 'unsafe-eval'", False, True),
        ("img-src 'self'", True, True),  # scripts are not restricted at all
        ("script-src 'self', script-src 'unsafe-inline'", False, False),  # both enforced
        ("SCRIPT-SRC 'self'; script-src 'unsafe-inline'", False, False),  # first one counts
    ],
)
def test_csp3_semantics(policy: str, unsafe_inline: bool, unsafe_eval: bool) -> None:
    facts = csp_facts([policy], [])
    assert (facts["unsafe_inline"], facts["unsafe_eval"]) == (unsafe_inline, unsafe_eval)


def test_wildcards_and_restrictions() -> None:
    facts = csp_facts(["script-src https: *; object-src 'none'; base-uri 'self'"], [])
    assert facts["wildcard_sources"] == ["script-src *", "script-src https:"]
    assert facts["object_src_none"] and facts["base_uri_restricted"]
    assert facts["frame_ancestors"] is None
    assert parse_policies(["", " ; ; "]) == []


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("a=1", {"secure": False, "http_only": False, "same_site": None, "prefix_ok": None}),
        ("__Host-a=1; Secure; Path=/", {"secure": True, "prefix_ok": True}),
        ("__Host-a=1; Secure; Path=/; Domain=x", {"prefix_ok": False}),
        ("__Secure-a=1", {"prefix_ok": False}),
        ("a=1; SameSite=lax; HTTPONLY", {"same_site": "Lax", "http_only": True}),
    ],
)
def test_cookie_attributes(header: str, expected: dict[str, object]) -> None:
    cookie = parse_set_cookie(header)
    assert cookie is not None
    assert {key: cookie[key] for key in expected} == expected
    assert parse_set_cookie("no-equals-sign; Secure") is None  # RFC 6265 §5.2: ignored


def test_security_txt_rules() -> None:
    now = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    good = "Contact: mailto:a@b\nExpires: 2026-06-01T00:00:00Z\n"
    assert security_txt_facts("u", good, "text/plain; charset=utf-8", now)["errors"] == []
    bad = security_txt_facts("u", "Expires: 2025-01-01T00:00:00+01:00\n", "text/html", now)
    assert bad["expired"] is True and bad["contact"] == []
    assert len(bad["errors"]) == 3  # type, contact, past
    signed = "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" + good
    signed += "-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n"
    facts = security_txt_facts("u", signed, "text/plain", now)
    assert facts["signed"] and facts["contact"] == ["mailto:a@b"] and not facts["errors"]


@pytest.mark.parametrize(
    ("score", "letter"),
    [(140, "A+"), (100, "A+"), (99, "A"), (90, "A"), (89, "A-"), (80, "B+"), (79, "B"),
     (65, "B-"), (60, "C+"), (54, "C"), (45, "C-"), (40, "D+"), (30, "D"), (25, "D-"),
     (24, "F"), (0, "F")],
)  # fmt: skip
def test_the_observatory_grade_chart(score: int, letter: str) -> None:
    assert grade(score) == letter


def test_javascript_parse_int_and_origins() -> None:
    assert (_parse_int("31536000"), _parse_int('"5"'), _parse_int("12abc")) == (31536000, None, 12)
    assert origin_of("https://A.example:443/x") == "https://a.example"
    assert origin_of("http://[::1]:8080/") == "http://[::1]:8080"
    assert origin_of("javascript:alert(1)") is None


def test_a_meta_policy_is_enforced_without_frame_ancestors() -> None:
    facts = csp_facts([], [], ["default-src 'self'; frame-ancestors 'none'"])
    assert facts["present"] and not facts["unsafe_inline"]
    assert facts["frame_ancestors"] is None  # ignored in a meta policy (CSP3)
    assert csp_facts([], [], ["frame-ancestors 'none'"])["present"] is False


def test_a_location_loses_its_user_info() -> None:
    from checks.web.collect import _without_userinfo, shown_url

    assert _without_userinfo("https://u:p@localhost:8443/a?b=1") == "https://localhost:8443/a?b=1"
    assert _without_userinfo("https://localhost/") == "https://localhost/"
    assert shown_url("https://u:p@LOCALHOST:8443/a?ticket=1#f") == "https://localhost:8443/a"


@pytest.mark.parametrize(
    ("header", "deleted"),
    [
        ("a=; Max-Age=0", True),
        ("a=; Max-Age=-1; Expires=Wed, 01 Jan 2099 00:00:00 GMT", True),
        ("a=; Expires=Thu, 01 Jan 1970 00:00:00 GMT", True),
        ("a=1; Max-Age=60; Expires=Thu, 01 Jan 1970 00:00:00 GMT", False),  # Max-Age wins
        ("a=1; Expires=not a date", False),
        ("a=1", False),
    ],
)
def test_a_cookie_deletion_sets_no_cookie(header: str, deleted: bool) -> None:
    from checks.web.cookies import cookie_facts, is_deletion

    assert is_deletion(header) is deleted
    assert len(cookie_facts([header])) == (0 if deleted else 1)
