"""The MDN HTTP Observatory's score and grade, from what the family observed.

Teams track the grade the Observatory gives their sites (DashLord shows it across French
ministries), so the family computes it with the Observatory's published scoring, that
of ``@mdn/mdn-http-observatory`` 1.4.8 (algorithm version 4, ``src/analyzer/tests/*.js``
and ``src/grader``): ten tests, each ending on one expectation with a modifier; the
score is 100 plus every modifier, bonuses counted only when the score without them is
at least 90, floored at 0; the grade comes from the score rounded down to a multiple
of 5. Each test below is a transcription of its JavaScript, in the same order of checks.

Where the inputs differ (documented in ``docs/checks.md``'s web section):
- the HSTS preload list is not shipped, so no host counts as preloaded (the
  ``hsts-preloaded`` bonus and ``redirection-all-redirects-preloaded`` never apply);
- the registrable domain of the SRI test is the last two labels of the name (the
  Observatory asks the public suffix list);
- its CORS test reads an OPTIONS preflight, sent here too (a redirect answering it is not
  followed here, where axios follows it);
- the page is the target's path, the Observatory always fetches ``/``.
The oracle test (``tests/oracle/test_oracle_web.py``) runs the package itself against
the lab sites and compares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from checks.web.cookies import parse_set_cookie
from checks.web.fetch import Answer
from checks.web.page import Markup

ALGORITHM_VERSION = 4
MINIMUM_SCORE_FOR_EXTRA_CREDIT = 90
SIX_MONTHS = 15552000
MODIFIERS: dict[str, int] = {
    "csp-implemented-with-no-unsafe-default-src-none": 10,
    "csp-implemented-with-no-unsafe": 5,
    "csp-implemented-with-unsafe-inline-in-style-src-only": 0,
    "csp-implemented-with-insecure-scheme-in-passive-content-only": -10,
    "csp-implemented-with-unsafe-eval": -10,
    "csp-implemented-with-unsafe-inline": -20,
    "csp-implemented-with-insecure-scheme": -20,
    "csp-header-invalid": -25,
    "csp-not-implemented": -25,
    "csp-not-implemented-but-reporting-enabled": -25,
    "csp-implemented-but-duplicate-directives": 0,
    "cookies-secure-with-httponly-sessions-and-samesite": 5,
    "cookies-secure-with-httponly-sessions": 0,
    "cookies-not-found": 0,
    "cookies-without-secure-flag-but-protected-by-hsts": -5,
    "cookies-session-without-secure-flag-but-protected-by-hsts": -10,
    "cookies-without-secure-flag": -20,
    "cookies-samesite-flag-invalid": -20,
    "cookies-anticsrf-without-samesite-flag": -20,
    "cookies-session-without-httponly-flag": -30,
    "cookies-session-without-secure-flag": -40,
    "cross-origin-resource-sharing-not-implemented": 0,
    "cross-origin-resource-sharing-implemented-with-public-access": 0,
    "cross-origin-resource-sharing-implemented-with-restricted-access": 0,
    "cross-origin-resource-sharing-implemented-with-universal-access": -50,
    "redirection-all-redirects-preloaded": 0,
    "redirection-to-https": 0,
    "redirection-not-needed-no-http": 0,
    "redirection-off-host-from-http": -5,
    "redirection-not-to-https-on-initial-redirection": -10,
    "redirection-not-to-https": -20,
    "redirection-missing": -20,
    "redirection-invalid-cert": -20,
    "referrer-policy-private": 5,
    "referrer-policy-not-implemented": 0,
    "referrer-policy-unsafe": -5,
    "referrer-policy-header-invalid": -5,
    "hsts-preloaded": 5,
    "hsts-implemented-max-age-at-least-six-months": 0,
    "hsts-implemented-max-age-less-than-six-months": -10,
    "hsts-not-implemented": -20,
    "hsts-header-invalid": -20,
    "hsts-not-implemented-no-https": -20,
    "hsts-invalid-cert": -20,
    "sri-implemented-and-all-scripts-loaded-securely": 5,
    "sri-implemented-and-external-scripts-loaded-securely": 5,
    "sri-not-implemented-response-not-html": 0,
    "sri-not-implemented-but-no-scripts-loaded": 0,
    "sri-not-implemented-but-all-scripts-loaded-from-secure-origin": 0,
    "sri-not-implemented-but-external-scripts-loaded-securely": -5,
    "sri-implemented-but-external-scripts-not-loaded-securely": -20,
    "sri-not-implemented-and-external-scripts-not-loaded-securely": -50,
    "x-content-type-options-nosniff": 0,
    "x-content-type-options-not-implemented": -5,
    "x-content-type-options-header-invalid": -5,
    "x-frame-options-implemented-via-csp": 5,
    "x-frame-options-sameorigin-or-deny": 0,
    "x-frame-options-allow-from-origin": 0,
    "x-frame-options-not-implemented": -20,
    "x-frame-options-header-invalid": -20,
    "corp-header-invalid": -5,
    "corp-implemented-with-cross-origin": 0,
    "corp-implemented-with-same-origin": 10,
    "corp-implemented-with-same-site": 10,
    "corp-not-implemented": 0,
    "html-not-parseable": -20,
}
"""``SCORE_TABLE`` of ``src/grader/charts.js``: expectation → modifier."""
GRADES = (
    (100, "A+"), (90, "A"), (85, "A-"), (80, "B+"), (70, "B"), (65, "B-"), (60, "C+"),
    (50, "C"), (45, "C-"), (40, "D+"), (30, "D"), (25, "D-"), (0, "F"),
)  # fmt: skip
"""``GRADE_CHART``: the lowest score of each grade."""
BROAD = frozenset(
    {"ftp:", "http:", "https:", "*", "http://*", "http://*.*", "https://*", "https://*.*"}
)
BROAD_OR_INLINE = BROAD | {"'unsafe-inline'", "data:"}
PASSIVE = ("img-src", "media-src")
NONCES_HASHES = ("'sha256-", "'sha384-", "'sha512-", "'nonce-")
ALLOWED_DUPLICATES = frozenset({"report-uri", "report-to"})
META_REFUSED = ("frame-ancestors", "report-uri", "sandbox")


@dataclass(frozen=True)
class Seen:
    """What the Observatory's retriever would have: the page answer (its ``auto`` and
    ``https`` response), every answer of its session, and the plain-HTTP route."""

    final: Answer
    answers: Sequence[Answer]
    verified: bool
    host: str
    http_route: Sequence[tuple[str, int]] | None
    """URLs fetched from plain HTTP on, the first request included; None: no answer."""
    markup: Markup | None
    is_html: bool
    equiv: dict[str, list[str]] = field(default_factory=dict)
    preflight: Answer | None = None
    """The answer to the CORS preflight (OPTIONS with Origin), None without one."""


DISCARDED_DUPLICATES = frozenset(
    {"age", "authorization", "content-length", "content-type", "etag", "expires", "from",
     "host", "if-modified-since", "if-unmodified-since", "last-modified", "location",
     "max-forwards", "proxy-authorization", "referer", "retry-after", "server", "user-agent"}
)  # fmt: skip
"""Fields whose repeats Node's HTTP parser drops (the first one wins)."""


def node_header(answer: Answer | None, name: str) -> str | None:
    """A header as the Observatory sees it through Node (``IncomingMessage.headers``): a
    repeated field is one value joined with ", ", or its first value for the fields Node
    discards repeats of."""
    values = answer.values(name) if answer is not None else []
    if not values:
        return None
    return values[0] if name in DISCARDED_DUPLICATES else ", ".join(values)


def _node_list(answer: Answer, name: str) -> list[str]:
    """``getHttpHeaders``: the joined value as a one-element list, or none."""
    value = node_header(answer, name)
    return [] if value is None else [value]


class CspInvalid(ValueError):
    """The Observatory's parser refuses the policy."""


def observatory_facts(seen: Seen) -> dict[str, Any] | None:
    """``{score, grade, algorithm_version, tests}``, or None for a status it refuses."""
    status = seen.final.status
    if status < 200 or (status >= 400 and status not in (401, 403)):
        return None
    results = {
        "content-security-policy": csp_test(seen),
        "cookies": cookies_test(seen),
        "cross-origin-resource-sharing": cors_test(seen),
        "redirection": redirection_test(seen),
        "referrer-policy": referrer_test(seen),
        "strict-transport-security": hsts_test(seen),
        "subresource-integrity": sri_test(seen),
        "x-content-type-options": xcto_test(seen),
        "x-frame-options": xfo_test(seen),
        "cross-origin-resource-policy": corp_test(seen),
    }
    score, uncurved = 100, 100
    for result, _ in results.values():
        score += MODIFIERS[result]
        uncurved += min(0, MODIFIERS[result])
    final = max(0, score if uncurved >= MINIMUM_SCORE_FOR_EXTRA_CREDIT else uncurved)
    return {
        "score": final,
        "grade": grade(final),
        "algorithm_version": ALGORITHM_VERSION,
        "tests": {
            name: {"result": result, "modifier": MODIFIERS[result], "pass": passed}
            for name, (result, passed) in results.items()
        },
    }


def grade(score: int) -> str:
    """The grade of a score (``getGradeForScore``)."""
    key = min(score - score % 5, 100)
    return next(letter for floor, letter in GRADES if key >= floor)


def _worse(new: str, old: str | None, order: Sequence[str]) -> str:
    """``onlyIfWorse``: later in ``order`` is worse."""
    if old is None or order.index(new) > order.index(old):
        return new
    return old


# --------------------------------------------------------------------------- CSP


def parse_csp(values: Sequence[str]) -> dict[str, set[str]]:
    """``parseCsp`` of ``cspParser.js``: policies merged, duplicates refused."""
    policies = [v.replace("\r", "").replace("\n", "").strip() for v in values]
    if not policies:
        return {}
    if any(len(p) < len("img-src") - 1 for p in policies):
        raise CspInvalid("policy too short")
    merged: dict[str, list[tuple[str, int, bool]]] = {}
    warnings: set[str] = set()
    for index, policy in enumerate(policies):
        seen: set[str] = set()
        for entry in policy.split(";"):
            parts = entry.strip().split()
            if not parts:
                continue
            directive = parts[0].lower()
            if directive in seen:
                if directive not in ALLOWED_DUPLICATES:
                    raise CspInvalid(f"duplicate directive {directive}")
                warnings.add(directive)
            seen.add(directive)
            keep = index == 0
            values_ = [(s.strip().lower(), index, keep) for s in parts[1:]]
            if not values_ and directive.endswith("-src"):
                values_ = [("'none'", index, keep)]
            combined = values_ if index == 0 else [*merged.get(directive, []), *values_]
            combined = _dedupe(sorted(combined, key=lambda s: s[0]))
            merged[directive] = [s for s in combined if s[2]]
            if index == 0 and len(values) > 1:
                merged[directive] = [(s, i, False) for s, i, _ in merged[directive]]
    result = {d: {s for s, _, _ in v} or {"'none'"} for d, v in merged.items()}
    if warnings:
        result["_duplicates"] = warnings
    return result


def _dedupe(sources: list[tuple[str, int, bool]]) -> list[tuple[str, int, bool]]:
    """Drop a source of one policy that extends the previous one; keep a source that
    another policy also allows (the Observatory's ``pathPartMatch``)."""
    out = list(sources)
    for i in range(1, len(out)):
        source, index, keep = out[i]
        prev_source, prev_index, _ = out[i - 1]
        if index == prev_index and source.startswith(prev_source):
            keep = False
        if index != prev_index and _path_part_match(prev_source, source):
            keep = True
        out[i] = (source, index, keep)
    return out


def _path_part_match(a: str, b: str) -> bool:
    from urllib.parse import unquote

    if not a:
        return True
    if a == "/" and not b:
        return True
    exact = not a.endswith("/")
    left, right = a.split("/"), b.split("/")
    if len(left) > len(right) or (exact and len(left) != len(right)):
        return False
    if not exact:
        left.pop()
    return all(unquote(x) == unquote(y) for x, y in zip(left, right, strict=False))


def _csp_maps(seen: Seen) -> tuple[dict[str, set[str]], dict[str, set[str]], dict[str, set[str]]]:
    header = _node_list(seen.final, "content-security-policy")
    meta = seen.equiv.get("content-security-policy", [])
    both = parse_csp([*header, *meta])
    try:
        header_only = parse_csp(header)
    except CspInvalid:
        header_only = {}
    try:
        meta_only = parse_csp(meta)
        for name in META_REFUSED:
            meta_only.pop(name, None)
    except CspInvalid:
        meta_only = {}
    return both, header_only, meta_only


def csp_test(seen: Seen) -> tuple[str, bool]:
    """``contentSecurityPolicyTest``: (expectation, pass)."""
    try:
        csp, header_only, meta_only = _csp_maps(seen)
    except CspInvalid:
        return "csp-header-invalid", False
    if not header_only and not meta_only:
        if node_header(seen.final, "content-security-policy-report-only"):
            return "csp-not-implemented-but-reporting-enabled", False
        return "csp-not-implemented", False
    # the same set objects, as in the JavaScript: a source removed from script-src's
    # list, when that list is default-src's, is removed from default-src too
    script = csp.get("script-src") or csp.get("default-src") or {"*"}
    style = csp.get("style-src") or csp.get("default-src") or {"*"}
    objects = csp.get("object-src") or csp.get("default-src") or {"*"}
    result = _apply_nonces(script, style)
    active = [s for d, v in csp.items() if d not in PASSIVE and d != "script-src" for s in v]
    active += list(script)
    passive = [s for d in PASSIVE for s in (csp.get(d) or csp.get("default-src") or set())]
    https = seen.final.url.startswith("https:")
    checks = (
        (script & BROAD_OR_INLINE or objects & BROAD, "csp-implemented-with-unsafe-inline"),
        (https and _insecure(active), "csp-implemented-with-insecure-scheme"),
        ("'unsafe-eval'" in script | style, "csp-implemented-with-unsafe-eval"),
        (
            https and _insecure(passive),
            "csp-implemented-with-insecure-scheme-in-passive-content-only",
        ),
        (style & BROAD_OR_INLINE, "csp-implemented-with-unsafe-inline-in-style-src-only"),
    )
    for holds, expectation in checks:
        if holds and result is None:
            result = expectation
    if result is None:
        default = csp.get("default-src")
        none_only = default is not None and default == {"'none'"}
        result = (
            "csp-implemented-with-no-unsafe-default-src-none"
            if none_only
            else "csp-implemented-with-no-unsafe"
        )
    passed = result in (
        "csp-implemented-with-no-unsafe",
        "csp-implemented-with-no-unsafe-default-src-none",
        "csp-implemented-with-unsafe-inline-in-style-src-only",
        "csp-implemented-with-insecure-scheme-in-passive-content-only",
    )
    if passed and "_duplicates" in csp:
        result = "csp-implemented-but-duplicate-directives"
    return result, passed


def _apply_nonces(script: set[str], style: set[str]) -> str | None:
    """CSP3 as the Observatory reads it: a nonce or hash cancels 'unsafe-inline';
    'strict-dynamic' with one cancels broad sources and 'self', without one it is invalid."""
    for sources in (script, style):
        if _nonce_or_hash(sources):
            sources.discard("'unsafe-inline'")
    if _nonce_or_hash(script) and "'strict-dynamic'" in script:
        for source in list(script):
            broad = any(source.startswith(b) for b in BROAD)
            if broad or source in ("'self'", "'unsafe-inline'"):
                script.discard(source)
    elif "'strict-dynamic'" in script:
        return "csp-header-invalid"
    return None


def _csp_data(seen: Seen) -> dict[str, set[str]]:
    """The CSP test's ``data``: the merged policy, unless that test stopped early (a
    policy it refuses, or none enforced)."""
    try:
        csp, header_only, meta_only = _csp_maps(seen)
    except CspInvalid:
        return {}
    return csp if header_only or meta_only else {}


def _nonce_or_hash(sources: set[str]) -> bool:
    return any(s.startswith(NONCES_HASHES) for s in sources)


def _insecure(sources: Sequence[str]) -> bool:
    return any(s.startswith(("http:", "ftp:")) for s in sources)


# --------------------------------------------------------------------------- cookies

_COOKIE_ORDER = (
    "cookies-without-secure-flag-but-protected-by-hsts",
    "cookies-without-secure-flag",
    "cookies-session-without-secure-flag-but-protected-by-hsts",
    "cookies-samesite-flag-invalid",
    "cookies-anticsrf-without-samesite-flag",
    "cookies-session-without-httponly-flag",
    "cookies-session-without-secure-flag",
)


def cookies_test(seen: Seen) -> tuple[str, bool]:
    """``cookiesTest``: the session's cookie jar (last setting of a name wins)."""
    hsts = hsts_test(seen)[1]
    result: str | None = None
    for raw in seen.final.values("set-cookie"):
        if _invalid_same_site(raw):
            result = _worse("cookies-samesite-flag-invalid", result, _COOKIE_ORDER)
    jar: dict[str, dict[str, Any]] = {}
    for answer in seen.answers:
        for raw in answer.values("set-cookie"):  # deletions too: the jar serialises them
            cookie = parse_set_cookie(raw)
            if cookie and cookie["name"] and cookie["name"] != "heroku-session-affinity":
                jar[cookie["name"]] = cookie
    if not jar:
        return "cookies-not-found", True
    for name, cookie in jar.items():
        result = _judge_cookie(name, cookie, hsts, result)
    missing_same_site = any(not _same_site(cookie) for cookie in jar.values())
    if result is None:
        result = (
            "cookies-secure-with-httponly-sessions"
            if missing_same_site
            else "cookies-secure-with-httponly-sessions-and-samesite"
        )
    passed = result in (
        "cookies-secure-with-httponly-sessions-and-samesite",
        "cookies-secure-with-httponly-sessions",
    )
    return result, passed


def _judge_cookie(name: str, cookie: dict[str, Any], hsts: bool, result: str | None) -> str | None:
    """One cookie of the jar, in the order of ``cookiesTest``'s checks."""
    lowered = name.lower()
    session = "login" in lowered or "sess" in lowered
    same_site = _same_site(cookie)
    secure, http_only = cookie["secure"], cookie["http_only"]
    protected = "-but-protected-by-hsts" if hsts else ""
    found = []
    if not secure and same_site == "none":
        found.append("cookies-samesite-flag-invalid")
    if not secure:
        found.append("cookies-without-secure-flag" + protected)
    if "csrf" in lowered and not same_site:
        found.append("cookies-anticsrf-without-samesite-flag")
    if session and not secure:
        found.append("cookies-session-without-secure-flag" + protected)
    if session and not http_only:
        found.append("cookies-session-without-httponly-flag")
    for expectation in found:
        result = _worse(expectation, result, _COOKIE_ORDER)
    return result


def _same_site(cookie: dict[str, Any]) -> str | None:
    """tough-cookie's reading: strict, lax or none; anything else is not set."""
    value = (cookie["same_site"] or "").lower()
    return value if value in ("strict", "lax", "none") else None


def _invalid_same_site(raw: str) -> bool:
    for part in raw.strip().split(";"):
        key, _, value = part.strip().partition("=")
        if key.strip().lower() == "samesite":
            value = value.split("=")[0]
            if not value or value.strip().lower() not in ("lax", "strict", "none"):
                return True
    return False


# --------------------------------------------------------------------------- the rest


def cors_test(seen: Seen) -> tuple[str, bool]:
    """``crossOriginResourceSharingTest``, on the answer to the preflight."""
    from checks.web.fetch import PROBE_ORIGIN

    answer = seen.preflight
    if answer is not None and not 200 <= answer.status < 300:
        answer = None  # axios, which the Observatory uses, fails on any other status
    allow = node_header(answer, "access-control-allow-origin")
    if answer is None or not allow:
        return "cross-origin-resource-sharing-not-implemented", True
    credentials = (node_header(answer, "access-control-allow-credentials") or "").strip().lower()
    if allow[:256].strip().lower() == "*":
        return "cross-origin-resource-sharing-implemented-with-public-access", True
    if allow == PROBE_ORIGIN and credentials == "true":
        return "cross-origin-resource-sharing-implemented-with-universal-access", False
    return "cross-origin-resource-sharing-implemented-with-restricted-access", True


def redirection_test(seen: Seen) -> tuple[str, bool]:  # noqa: PLR0911 (the JS, branch for branch)
    """``redirectionTest``, on the route from plain HTTP."""
    route = seen.http_route
    if route is None:
        return "redirection-not-needed-no-http", True
    if not seen.verified:
        return "redirection-invalid-cert", False
    if len(route) == 1:
        return "redirection-missing", False
    splits = [urlsplit(url) for url, _ in route]
    if splits[-1].scheme != "https":
        return "redirection-not-to-https", False
    if splits[1].scheme == "http":
        return "redirection-not-to-https-on-initial-redirection", False
    if splits[0].scheme == "http" and splits[0].hostname != splits[1].hostname:
        return "redirection-off-host-from-http", False
    return "redirection-to-https", True


def referrer_test(seen: Seen) -> tuple[str, bool]:
    """``referrerPolicyTest``: the last valid policy of the header(s) and meta tags."""
    good = ("no-referrer", "same-origin", "strict-origin", "strict-origin-when-cross-origin")
    bad = ("origin", "origin-when-cross-origin", "unsafe-url", "no-referrer-when-downgrade")
    values = [*_node_list(seen.final, "referrer-policy"), *seen.equiv.get("referrer-policy", [])]
    if not values:
        return "referrer-policy-not-implemented", True
    valid = [p.strip().lower() for p in ", ".join(values).split(",")]
    valid = [p for p in valid if p in good or p in bad]
    policy = valid[-1] if valid else ""
    if policy in good:
        return "referrer-policy-private", True
    if policy in bad:
        return "referrer-policy-unsafe", False
    return "referrer-policy-header-invalid", False


def hsts_test(seen: Seen) -> tuple[str, bool]:
    """``strictTransportSecurityTest`` (no host counts as preloaded: see the module)."""
    if not seen.final.url.startswith("https:"):
        return "hsts-not-implemented-no-https", False
    if not seen.verified:
        return "hsts-invalid-cert", False
    header = node_header(seen.final, "strict-transport-security")
    if header is None:
        return "hsts-not-implemented", False
    data = header[:1024]
    found, max_age = False, None
    for parameter in (p.strip().lower() for p in data.split(";")):
        if parameter.startswith("max-age="):
            found, max_age = True, _parse_int(parameter[8:128])
    if "," in data or not found:
        return "hsts-header-invalid", False
    if max_age is not None and max_age < SIX_MONTHS:  # NaN compares false in JavaScript
        return "hsts-implemented-max-age-less-than-six-months", False
    return "hsts-implemented-max-age-at-least-six-months", True


def _parse_int(text: str) -> int | None:
    """JavaScript's ``parseInt(text, 10)``: leading digits (NaN counts as missing)."""
    text = text.lstrip()
    sign = -1 if text.startswith("-") else 1
    digits = text.lstrip("+-")
    number = ""
    for char in digits:
        if not char.isdigit():
            break
        number += char
    return sign * int(number) if number else None


_SRI_ORDER = (
    "sri-implemented-and-all-scripts-loaded-securely",
    "sri-implemented-and-external-scripts-loaded-securely",
    "sri-implemented-but-external-scripts-not-loaded-securely",
    "sri-not-implemented-but-external-scripts-loaded-securely",
    "sri-not-implemented-and-external-scripts-not-loaded-securely",
    "sri-not-implemented-response-not-html",
)


def sri_test(seen: Seen) -> tuple[str, bool]:
    """``subresourceIntegrityTest`` over every ``<script>`` of the page."""
    if not seen.is_html:
        return "sri-not-implemented-response-not-html", True
    if seen.markup is None:
        return "html-not-parseable", False
    result: str | None = None
    foreign = False
    own_domain = _domain(seen.host)
    https_page = seen.final.url.startswith("https:")
    for src, integrity in seen.markup.scripts:
        if not src:
            continue
        relative_protocol = src.startswith("//") and not src.startswith("///")
        absolute = src.lower().startswith(("http://", "https://"))
        relative_origin = not relative_protocol and not absolute
        same_domain = True if not absolute else _domain(urlsplit(src).hostname or "") == own_domain
        secure_origin = relative_origin or (same_domain and not relative_protocol)
        foreign = foreign or not secure_origin
        scheme = urlsplit(src).scheme.lower() + ":" if absolute else None
        secure_scheme = scheme == "https:" or (relative_origin and https_page)
        if not secure_origin:
            if integrity and not secure_scheme:
                new = "sri-implemented-but-external-scripts-not-loaded-securely"
            elif not integrity and secure_scheme:
                new = "sri-not-implemented-but-external-scripts-loaded-securely"
            elif not integrity:
                new = "sri-not-implemented-and-external-scripts-not-loaded-securely"
            else:
                continue
            result = _worse(new, result, _SRI_ORDER)
        elif integrity and secure_scheme and result is None:
            result = "sri-implemented-and-all-scripts-loaded-securely"
    if not seen.markup.scripts:
        result = "sri-not-implemented-but-no-scripts-loaded"
    elif result is None:
        result = (
            "sri-implemented-and-external-scripts-loaded-securely"
            if foreign
            else "sri-not-implemented-but-all-scripts-loaded-from-secure-origin"
        )
    passed = result in (
        "sri-implemented-and-all-scripts-loaded-securely",
        "sri-implemented-and-external-scripts-loaded-securely",
        "sri-not-implemented-response-not-html",
        "sri-not-implemented-but-all-scripts-loaded-from-secure-origin",
        "sri-not-implemented-but-no-scripts-loaded",
    )
    return result, passed


def _domain(host: str) -> str | None:
    """The registrable domain, approximated as the last two labels (None for an address
    or a single label, as the public suffix list gives none)."""
    labels = host.lower().rstrip(".").split(".")
    if len(labels) < 2 or labels[-1].isdigit() or ":" in host:
        return None
    return ".".join(labels[-2:])


def xcto_test(seen: Seen) -> tuple[str, bool]:
    """``xContentTypeOptionsTest``."""
    header = node_header(seen.final, "x-content-type-options")
    if not header:
        return "x-content-type-options-not-implemented", False
    if header[:256].strip().lower() == "nosniff":
        return "x-content-type-options-nosniff", True
    return "x-content-type-options-header-invalid", False


def xfo_test(seen: Seen) -> tuple[str, bool]:
    """``xFrameOptionsTest``: frame-ancestors in the CSP counts first."""
    header = node_header(seen.final, "x-frame-options")
    result = "x-frame-options-not-implemented"
    if header:
        value = header[:1024].strip().lower()
        if value in ("deny", "sameorigin"):
            result = "x-frame-options-sameorigin-or-deny"
        elif value.startswith("allow-from"):
            result = "x-frame-options-allow-from-origin"
        else:
            result = "x-frame-options-header-invalid"
    if _csp_data(seen).get("frame-ancestors"):
        result = "x-frame-options-implemented-via-csp"
    passed = result in (
        "x-frame-options-allow-from-origin",
        "x-frame-options-sameorigin-or-deny",
        "x-frame-options-implemented-via-csp",
    )
    return result, passed


def corp_test(seen: Seen) -> tuple[str, bool]:
    """``crossOriginResourcePolicyTest``."""
    header = node_header(seen.final, "cross-origin-resource-policy")
    meta = seen.equiv.get("cross-origin-resource-policy", [])
    value = (
        header[:256].strip().lower() if header else (meta[-1][:256].strip().lower() if meta else "")
    )
    if not value:
        return "corp-not-implemented", True
    known = {
        "same-site": "corp-implemented-with-same-site",
        "same-origin": "corp-implemented-with-same-origin",
        "cross-origin": "corp-implemented-with-cross-origin",
    }
    result = known.get(value, "corp-header-invalid")
    return result, result != "corp-header-invalid"
