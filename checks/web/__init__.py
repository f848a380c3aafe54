# ruff: noqa: E501  (the fact table reads best one fact a line)
"""The ``web`` check family: a web site's security headers, CSP, cookies, redirects and
security.txt, and the MDN HTTP Observatory's score.

Targets: ``https://HOST[:PORT][/PATH][?QUERY]`` (port 443 by default); the resource
``web.site`` is keyed by the canonical URL. ``tls://`` stays the TLS family's scheme: a
site and its TLS endpoint are two targets (``https://portail.example.gouv.fr/`` and
``tls://portail.example.gouv.fr``), so each family owns one scheme and no target means
two audits. The path and query belong to the site, so the family's settings live in the
inventory's ``web:`` block: ``http_port`` (where plain HTTP is looked up for the redirect
to HTTPS, default 80, ``0`` skips it).

How it observes: one HTTP/1.1 client (httpx) whose connections go only to the addresses
the scope guard pinned, with TLS verified against the host name and the system's anchors
plus ``--ca-file`` (the TLS family's trust). It does not audit TLS itself: a ``tls://``
target does. A site whose certificate fails is still observed, unverified, and
``tls_verified`` says so. The page request carries an ``Origin`` header, to see CORS.

Redirects are followed to :data:`checks.web.collect.MAX_REDIRECTS` hops, each passing
the scope guard before it is fetched; a ``Location`` outside the scope is recorded
(``redirect_refused``), never contacted. Bodies, header counts and sizes and the total
time per target are bounded (:mod:`checks.web.fetch`): a hostile server is an ``error``
of the target, never memory growth or a hang. Cookie values are never stored.

Errors are data: a site that does not answer, answers too slowly or breaks a bound is a
:class:`~audit.models.Problem` (every rule ``error``); security.txt, plain HTTP or the
page read only in part leave their own facts unknown.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import SplitResult

from audit.models import Observation, Target
from audit.plugins import CheckContext, CheckFamily, FactDoc, ResourceTypeDoc

if TYPE_CHECKING:
    from audit.labkit import DemoContext, DemoPart

_CSP = "csp."
_CORS = "cors."
_HSTS = "hsts."
_TXT = "security_txt."
_OBS = "observatory."

FACTS = (
    FactDoc(
        "url", "string", "The site's canonical URL (https://host[:port]/path), the resource key."
    ),
    FactDoc("host", "string", "Host name or address of the site."),
    FactDoc("port", "integer", "TCP port of the site (443 by default)."),
    FactDoc(
        "addresses",
        "list[string]",
        "The addresses the scope guard pinned for the host (connections go only there).",
    ),
    FactDoc(
        "tls_verified",
        "bool",
        "The certificate was verified for the host name against the system's anchors and --ca-file; false: the site was observed all the same, without verification (the tls family says why).",
    ),
    FactDoc(
        "status",
        "integer",
        "HTTP status of the last answer fetched (after the redirects followed).",
    ),
    FactDoc(
        "final_url",
        "string",
        "URL of the last answer fetched, without user info or query string (either may carry a token).",
    ),
    FactDoc(
        "redirect_chain",
        "list[object]",
        "Each redirect answered, in order: {url, status, location} (location made absolute; URLs without user info or query string).",
    ),
    FactDoc(
        "redirect_refused",
        "string|null",
        "A Location that was not followed, with why (outside the scope, not http(s), not resolving); null when every redirect was followed.",
    ),
    FactDoc(
        "http_redirects_to_https",
        "bool|null",
        "Plain HTTP on the same host (port 80, or web.http_port) answers with a redirect to https:// on that host; null when nothing listens there or web.http_port is 0. Unknown when the look-up timed out or failed.",
    ),
    FactDoc(
        "headers",
        "map[string, string|list[string]]",
        "Response header fields of the last answer, names lower-cased, a field sent several times as a list of its values, each value cut at 2048 characters. Set-Cookie is left out (see cookies); a field whose name says it may carry a secret (token, csrf, xsrf, session, secret, api-key, authorization, ticket) keeps the value [redacted].",
    ),
    FactDoc(
        "csp",
        "object",
        "Content-Security-Policy per CSP Level 3 (keys below), from the headers and the page's meta http-equiv policies (without frame-ancestors, report-uri and sandbox, which browsers ignore there); every enforced policy counts, so a fact saying 'unsafe' holds when every policy is unsafe that way.",
    ),
    FactDoc(
        _CSP + "present",
        "bool",
        "An enforced Content-Security-Policy (header or meta) with at least one directive.",
    ),
    FactDoc(
        _CSP + "report_only",
        "bool",
        "A Content-Security-Policy-Report-Only header is sent (it enforces nothing).",
    ),
    FactDoc(
        _CSP + "directives",
        "map[string, list[string]]",
        "Directives of the first enforced policy and their sources ({} without a policy).",
    ),
    FactDoc(
        _CSP + "unsafe_inline",
        "bool",
        "Inline scripts run: no script-src or default-src, or 'unsafe-inline' without a nonce or hash (which make CSP3 browsers ignore it). True without a policy.",
    ),
    FactDoc(
        _CSP + "unsafe_eval",
        "bool",
        "eval() runs: no script restriction, or 'unsafe-eval' among the script sources. True without a policy.",
    ),
    FactDoc(
        _CSP + "wildcard_sources",
        "list[string]",
        "'directive source' for each * source, and each scheme-only source (https:, data:, ...) in script-src, object-src or default-src (ignored with 'strict-dynamic' and a nonce or hash).",
    ),
    FactDoc(
        _CSP + "frame_ancestors",
        "string|null",
        "The frame-ancestors sources, or null when no policy sets it.",
    ),
    FactDoc(
        _CSP + "object_src_none",
        "bool",
        "object-src 'none' (or default-src 'none' without object-src).",
    ),
    FactDoc(
        _CSP + "base_uri_restricted", "bool", "base-uri is set, without a wildcard or bare scheme."
    ),
    FactDoc(
        "x_content_type_options", "string|null", "X-Content-Type-Options value (nosniff), or null."
    ),
    FactDoc("x_frame_options", "string|null", "X-Frame-Options value (DENY, SAMEORIGIN), or null."),
    FactDoc("referrer_policy", "string|null", "Referrer-Policy value, or null."),
    FactDoc("permissions_policy", "string|null", "Permissions-Policy value, or null."),
    FactDoc(
        "cross_origin_opener_policy", "string|null", "Cross-Origin-Opener-Policy value, or null."
    ),
    FactDoc(
        "cross_origin_resource_policy",
        "string|null",
        "Cross-Origin-Resource-Policy value, or null.",
    ),
    FactDoc(
        "cors",
        "object",
        "CORS headers of the answer to the page request, which carries Origin: https://origin.rempart.invalid (keys below).",
    ),
    FactDoc(_CORS + "allow_origin", "string|null", "Access-Control-Allow-Origin, or null."),
    FactDoc(_CORS + "allow_credentials", "bool", "Access-Control-Allow-Credentials: true."),
    FactDoc(
        _CORS + "wildcard_with_credentials",
        "bool",
        "Credentials allowed to any origin: Allow-Credentials true with Allow-Origin * or reflecting the probe's made-up origin.",
    ),
    FactDoc(
        "cookies",
        "list[object]",
        "Cookies set by the answers fetched (redirects included), at most 100: {name, secure, http_only, same_site (Strict, Lax, None or null), prefix_ok (__Secure-/__Host- rules kept; null without a prefix), domain, path}. Values are never kept; a Set-Cookie that deletes its cookie (Max-Age 0 or less, Expires past) sets none and is left out.",
    ),
    FactDoc(
        "cookies_insecure",
        "integer",
        "Cookies missing Secure, HttpOnly or SameSite, or breaking their prefix.",
    ),
    FactDoc(
        "hsts",
        "object|null",
        "Strict-Transport-Security of the last answer: {present, max_age, include_subdomains, preload}, parsed as the tls family parses it; null when the last answer is plain http.",
    ),
    FactDoc(_HSTS + "present", "bool", "The header is sent."),
    FactDoc(
        _HSTS + "max_age", "integer|null", "max-age in seconds (null when missing or malformed)."
    ),
    FactDoc(_HSTS + "include_subdomains", "bool", "includeSubDomains is set."),
    FactDoc(_HSTS + "preload", "bool", "preload is set."),
    FactDoc(
        "security_txt",
        "object|null",
        "RFC 9116 security.txt at https://host[:port]/.well-known/security.txt (keys below); unknown when the look-up timed out or failed.",
    ),
    FactDoc(
        _TXT + "present",
        "bool",
        "A file is served there (200; a redirect is not followed, and is in errors).",
    ),
    FactDoc(_TXT + "url", "string", "Where it was looked up."),
    FactDoc(_TXT + "contact", "list[string]", "Contact field values (§2.5.3)."),
    FactDoc(
        _TXT + "expires",
        "string|null",
        "Expires, ISO 8601 UTC (§2.5.5), or null when missing or malformed.",
    ),
    FactDoc(_TXT + "expired", "bool|null", "Expires is in the past; null without a valid Expires."),
    FactDoc(
        _TXT + "signed",
        "bool",
        "Wrapped in an OpenPGP cleartext signature (§2.3; the signature is not verified).",
    ),
    FactDoc(
        _TXT + "errors",
        "list[string]",
        "Departures from RFC 9116: not text/plain, no Contact, Expires missing, repeated, malformed or past, too large, redirected.",
    ),
    FactDoc(
        "server_disclosure",
        "list[string]",
        'Server and X-Powered-By values that carry a version ("Server: nginx/1.22.1").',
    ),
    FactDoc(
        "third_party_origins",
        "list[string]",
        "Origins other than the page's of the scripts, style sheets, fonts (preloaded) and frames the first HTML page names. Unknown when the page was not read whole.",
    ),
    FactDoc(
        "third_party_resources",
        "list[object]",
        "Those resources, at most 200: {kind (script, style, font, frame), url (no query), origin, integrity (an SRI integrity attribute is set)}.",
    ),
    FactDoc(
        "sri_missing",
        "list[string]",
        "URLs of third-party scripts and style sheets without an integrity attribute.",
    ),
    FactDoc(
        "observatory",
        "object|null",
        "The MDN HTTP Observatory's score and grade, computed with its published scoring (keys below); null when the last answer's status is one the Observatory refuses to grade.",
    ),
    FactDoc(
        _OBS + "score",
        "integer",
        "Score: 100 plus the modifiers of its tests (bonuses only when the score without them is 90 or more), floored at 0.",
    ),
    FactDoc(_OBS + "grade", "string", "A+ to F, from the Observatory's grade chart."),
    FactDoc(_OBS + "algorithm_version", "integer", "The Observatory scoring version followed."),
    FactDoc(
        _OBS + "tests",
        "map[string, object]",
        "Per Observatory test: {result (its expectation name), modifier, pass}.",
    ),
)

RESOURCE_TYPES = (
    ResourceTypeDoc(
        "web.site",
        "A web site, keyed by its canonical URL (https://host[:port]/path): headers, CSP, cookies, redirects, security.txt, third parties, Observatory score.",
        FACTS,
    ),
)


def _parse(split: SplitResult, raw: str) -> Target:
    from checks.web.targets import parse

    return parse(split, raw)


def _collect(target: Target, ctx: CheckContext) -> Observation:
    from checks.web.collect import collect

    return collect(target, ctx)


def _validate_options(block: object) -> None:
    from checks.web.targets import validate_options

    validate_options(block)


def _demo(ctx: DemoContext) -> DemoPart:
    """This family's part of ``rempart demo``; the lab is imported only when it runs."""
    from checks.web.lab import demo_part

    return demo_part(ctx)


FAMILY = CheckFamily(
    name="web",
    description="Web sites: security headers, CSP, cookies, redirects, security.txt, third parties, MDN Observatory score. "
    "`https://` is this family's scheme and `tls://` stays the TLS family's: a site and its TLS endpoint are two targets "
    "(`https://portail.example.gouv.fr/` and `tls://portail.example.gouv.fr`), each audited once. Settings in the inventory's "
    "`web:` block: `http_port` (plain HTTP looked up for the redirect, default 80, 0 skips it). Every redirect hop passes "
    "the scope guard before it is fetched; bodies (1 MiB), header fields (200, head 100 KiB), redirects (10) and the time per "
    "target are bounded; cookie values are never kept.",
    schemes=("https",),
    resource_types=RESOURCE_TYPES,
    parse=_parse,
    collect=_collect,
    validate_options=_validate_options,
    demo=_demo,
)
