"""Observe one web site: the page and its redirects, plain HTTP, security.txt.

Addresses: the scope guard pinned the target host's addresses (``Target.addresses``);
they are used and never re-resolved. A redirect to another host passes
:meth:`audit.scope.ScopeGuard.admit_derived` *before* it is fetched: outside the scope
it is recorded in ``redirect_refused`` and not followed, and the facts describe the
last answer fetched. A redirect on the target's own host needs no new admission (its
addresses are the ones the guard already pinned).

Bounds: the whole observation ends by ``ctx.timeout`` (every read and write is cut at
that deadline, :mod:`checks.web.fetch`); redirects stop at :data:`MAX_REDIRECTS`, and a
chain longer than that is an ``error`` of the target, as is an answer that breaks HTTP
or a bound (a head over 100 KiB, more than 200 fields).

Unknown is not absent: security.txt or plain HTTP that time out leave their fact
unknown; a page read only in part (too large, or an encoding we do not decode) leaves
the page facts unknown; nothing listening on the plain-HTTP port is an answer
(``http_redirects_to_https`` null).
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from audit.errors import ScopeError
from audit.models import Observation, Problem, Reason, Resource, Target
from audit.plugins import CheckContext
from checks.httpfacts import host_key, hsts_of, is_https_to
from checks.web import targets
from checks.web.cookies import cookie_facts, is_insecure
from checks.web.csp import csp_facts
from checks.web.fetch import PROBE_ORIGIN, Answer, Fetcher, FetchError, client_context
from checks.web.page import Markup, is_html, page_facts, parse_page
from checks.web.securitytxt import MAX_BYTES, absent, security_txt_facts

RESOURCE_TYPE = "web.site"
MAX_REDIRECTS = 10
"""Hops followed (browsers allow about 20; a site needing more than 10 is broken)."""
REDIRECTS = frozenset({301, 302, 303, 307, 308})
SIDE_SHARE = 0.25
"""Share of ``ctx.timeout`` one silent wait of a side request (the preflight, plain HTTP,
security.txt) may take, so that one of them never starves the others."""
MAX_VALUE = 2048
"""Characters kept of one header value in the ``headers`` fact."""
PRIVATE_HEADERS = frozenset({"set-cookie", "set-cookie2"})
"""Never copied into ``headers``: their values are cookies (``cookies`` describes them)."""
SECRET_NAMES = re.compile(r"token|csrf|xsrf|session|secret|api-?key|authorization|ticket", re.I)
"""Header fields whose value may be a per-session secret (an anti-CSRF token sent in a
header, say): ``headers`` keeps their name with the value ``[redacted]``."""
REDACTED = "[redacted]"
HTML_TYPES = ("text/html", "application/xhtml+xml")
"""The Observatory's HTML types, compared as it compares them (case and spaces kept)."""
PAGE_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
"""What a browser (and the Observatory) accepts for a page: servers may vary on it."""
_VERSION = re.compile(r"\d+\.\d+|/\s*v?\d")
_KINDS = {
    "timeout": Reason.TIMEOUT,
    "refused": Reason.REFUSED,
    "unreachable": Reason.UNREACHABLE,
    "certificate": Reason.UNREACHABLE,
    "protocol": Reason.UNDECIDABLE,
}


@dataclass
class Walk:
    """The page request and its redirects, as far as they were followed."""

    answers: list[Answer] = field(default_factory=list)
    chain: list[dict[str, Any]] = field(default_factory=list)
    refused: str | None = None
    failed: str | None = None
    """Why a hop after the first answer got none (only when the walk is ``partial``)."""


def collect(target: Target, ctx: CheckContext) -> Observation:
    """Entry point of the family: never raises, problems are data."""
    started = time.monotonic()
    try:
        observation = _collect(target, ctx, started + ctx.timeout)
    except Exception as error:  # a bug must not kill the scan
        problem = Problem(Reason.BUG, f"web check failed: {error.__class__.__name__}: {error}")
        observation = Observation(target, problems=(problem,))
    return Observation(
        observation.target, observation.resources, observation.problems, time.monotonic() - started
    )


def _collect(target: Target, ctx: CheckContext, deadline: float) -> Observation:
    addresses = target.addresses or _resolve(target.host, ctx.timeout)
    if not addresses:
        problem = Problem(Reason.UNREACHABLE, f"{target.host} does not resolve to any address")
        return Observation(target, problems=(problem,))
    pins = {host_key(target.host): tuple(addresses)}
    verified = True
    try:
        with Fetcher(pins, deadline, client_context(ctx.ca_file)) as fetcher:
            return _observe(target, ctx, fetcher, verified)
    except FetchError as error:
        if error.kind != "certificate":
            return Observation(target, problems=(Problem(_KINDS[error.kind], str(error)),))
    verified = False  # observe what the server sends all the same; tls_verified says so
    try:
        with Fetcher(pins, deadline, client_context(None, verify=False)) as fetcher:
            return _observe(target, ctx, fetcher, verified)
    except FetchError as error:
        return Observation(target, problems=(Problem(_KINDS[error.kind], str(error)),))


def _resolve(host: str, timeout: float) -> tuple[str, ...]:
    from audit.uri import resolve_all

    return resolve_all([host], min(timeout, 5.0)).get(host, ())


def _observe(target: Target, ctx: CheckContext, fetcher: Fetcher, verified: bool) -> Observation:
    start = targets.site_url(target.host, target.port or 443, targets.path_of(target))
    walk = _walk(fetcher, target, ctx, start)
    final = walk.answers[-1]
    facts: dict[str, Any] = {
        "url": target.uri,
        "host": target.host,
        "port": target.port,
        "addresses": list(fetcher.pins[host_key(target.host)]),
        "tls_verified": verified,
        "status": final.status,
        "final_url": shown_url(final.url),
        "redirect_chain": walk.chain,
        "redirect_refused": walk.refused,
    }
    unknown: dict[str, Problem] = {}
    markup = _page(final, facts, unknown)
    facts.update(header_facts(final, walk.answers, markup))
    route = _plain_http(fetcher, target, ctx, facts, unknown)
    _security_txt(fetcher, target, facts, unknown, ctx.timeout * SIDE_SHARE)
    preflight = _preflight(fetcher, final, ctx.timeout * SIDE_SHARE)
    facts["observatory"] = _observatory(target, final, walk, verified, route, markup, preflight)
    resource = Resource(RESOURCE_TYPE, target.uri, target.uri, target.system, facts, unknown)
    return Observation(target, resources=(resource,))


def _walk(
    fetcher: Fetcher, target: Target, ctx: CheckContext, url: str, *, partial: bool = False
) -> Walk:
    """GET ``url``, following redirects one admitted hop at a time. The page requests carry
    the CORS probe's Origin; the plain-HTTP walk (``partial``) keeps what it saw when a
    later hop fails, and asks nothing of CORS."""
    from audit.scope import ScopeGuard

    walk = Walk()
    guard = ScopeGuard(ctx.scope)
    for _ in range(MAX_REDIRECTS + 1):
        try:
            answer = fetcher.get(
                url,
                None if partial else {"Origin": PROBE_ORIGIN, "Accept": PAGE_ACCEPT},
                ctx.timeout * SIDE_SHARE if partial else None,
            )
        except FetchError as error:
            if not (partial and walk.answers):
                raise
            walk.failed = str(error)
            return walk
        walk.answers.append(answer)
        location = answer.first("location")
        if answer.status not in REDIRECTS or location is None:
            return walk
        following = _without_userinfo(urljoin(url, location.strip()))
        walk.chain.append(
            {"url": shown_url(url), "status": answer.status, "location": shown_url(following)}
        )
        why = _admit(fetcher, guard, target, following)
        if why is not None:
            walk.refused = f"{shown_url(following)}: {why}"
            return walk
        url = following
    raise FetchError("protocol", f"{target.uri}: more than {MAX_REDIRECTS} redirects")


def _without_userinfo(url: str) -> str:
    """A Location's URL with any ``user:password@`` dropped: the client would otherwise
    send what a server wrote there as Basic credentials."""
    try:
        split = urlsplit(url)
    except ValueError:
        return url
    if "@" not in split.netloc:
        return url
    return split._replace(netloc=split.netloc.rsplit("@", 1)[1]).geturl()


def _admit(fetcher: Fetcher, guard: Any, target: Target, url: str) -> str | None:
    """None when ``url`` may be fetched (its host pinned), else why it is not followed."""
    try:
        split = urlsplit(url)
        host = split.hostname
        _ = split.port  # out of range: ValueError
        httpx.URL(url)  # what the client will be given: refused here, not mid-request
    except (ValueError, httpx.InvalidURL):
        return "not a URL"
    if split.scheme not in ("http", "https") or not host:
        return "not an http(s) URL"
    if host_key(host) in fetcher.pins:
        return None
    try:
        admitted = guard.admit_derived(host, target, "redirect")
    except ScopeError as error:
        return str(error)
    if not admitted.addresses:
        return f"{host} does not resolve"
    fetcher.pins[host_key(host)] = tuple(admitted.addresses)
    return None


def header_facts(
    final: Answer, answers: list[Answer], markup: Markup | None = None
) -> dict[str, Any]:
    """Facts read off the response head (cookies: off every answer of the chain; CSP: with
    the page's ``<meta http-equiv>`` policies)."""
    meta = [c for name, c in markup.equiv if name == "content-security-policy"] if markup else []
    cookies = cookie_facts([v for a in answers for v in a.values("set-cookie")])
    origin = final.first("access-control-allow-origin")
    credentials = (final.first("access-control-allow-credentials") or "").strip().lower() == "true"
    https = final.url.startswith("https://")
    return {
        "headers": headers_map(final),
        "csp": csp_facts(
            final.values("content-security-policy"),
            final.values("content-security-policy-report-only"),
            meta,
        ),
        "x_content_type_options": final.first("x-content-type-options"),
        "x_frame_options": final.first("x-frame-options"),
        "referrer_policy": final.first("referrer-policy"),
        "permissions_policy": final.first("permissions-policy"),
        "cross_origin_opener_policy": final.first("cross-origin-opener-policy"),
        "cross_origin_resource_policy": final.first("cross-origin-resource-policy"),
        "cors": {
            "allow_origin": origin,
            "allow_credentials": credentials,
            "wildcard_with_credentials": credentials
            and (origin or "").strip() in ("*", PROBE_ORIGIN),
        },
        "cookies": cookies,
        "cookies_insecure": sum(1 for c in cookies if is_insecure(c)),
        "hsts": hsts_of(final.first("strict-transport-security")) if https else None,
        "server_disclosure": [
            f"{name}: {value}"[:256]
            for name in ("Server", "X-Powered-By")
            for value in final.values(name)
            if _VERSION.search(value)
        ],
    }


def shown_url(url: str) -> str:
    """A URL as facts keep it: no user info, no query string (either may carry a token, a
    CAS ticket in a redirect, say), at most :data:`MAX_VALUE` characters."""
    try:
        split = urlsplit(url)
        host = split.hostname or ""
        port = split.port
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0][:MAX_VALUE]
    netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")
    return f"{split.scheme}://{netloc}{split.path}"[:MAX_VALUE]


def headers_map(answer: Answer) -> dict[str, str | list[str]]:
    """Lower-cased names; a field sent more than once keeps every value, as a list."""
    found: dict[str, list[str]] = {}
    for name, value in answer.fields:
        key = name.lower()
        if key not in PRIVATE_HEADERS:
            shown = REDACTED if SECRET_NAMES.search(key) else value[:MAX_VALUE]
            found.setdefault(key, []).append(shown)
    return {k: v[0] if len(v) == 1 else v for k, v in found.items()}


def _observatory(
    target: Target,
    final: Answer,
    walk: Walk,
    verified: bool,
    route: list[tuple[str, int]] | None,
    markup: Markup | None,
    preflight: Answer | None,
) -> dict[str, Any] | None:
    from checks.web.observatory import Seen, observatory_facts

    strict_html = (final.first("content-type") or "").split(";")[0] in HTML_TYPES
    equiv: dict[str, list[str]] = {}
    for name, content in markup.equiv if markup and strict_html else ():
        equiv.setdefault(name, []).append(content)
    if "referrer-policy" in equiv:  # the last <meta name="referrer"> wins
        equiv["referrer-policy"] = equiv["referrer-policy"][-1:]
    seen = Seen(
        final=final,
        answers=walk.answers,
        verified=verified,
        host=target.host,
        http_route=route,
        markup=markup,
        is_html=strict_html,
        equiv=equiv,
        preflight=preflight,
    )
    return observatory_facts(seen)


def _preflight(fetcher: Fetcher, final: Answer, budget: float) -> Answer | None:
    """The CORS preflight the Observatory sends (OPTIONS with Origin) to the page's URL;
    None when it got no answer. Only the Observatory's CORS test reads it: the ``cors``
    facts are those of the page request itself."""
    headers = {"Origin": PROBE_ORIGIN, "Access-Control-Request-Method": "GET"}
    try:
        return fetcher.request("OPTIONS", final.url, headers, budget)
    except FetchError:
        return None


def _page(final: Answer, facts: dict[str, Any], unknown: dict[str, Problem]) -> Markup | None:
    """The page facts; the parsed page, for the Observatory's SRI test."""
    names = ("third_party_origins", "third_party_resources", "sri_missing")
    if final.truncated:
        problem = Problem(
            Reason.UNDECIDABLE,
            f"{final.url}: the page was not read whole (larger than the bound, or encoded)",
            facts=names,
        )
        for name in names:
            facts[name] = None
            unknown[name] = problem
        return None
    if not is_html(final.first("content-type")):
        facts.update({"third_party_origins": [], "third_party_resources": [], "sri_missing": []})
        return None
    markup = parse_page(final.body.decode("utf-8", "replace"))
    facts.update(page_facts(final.url, markup))
    return markup


def _plain_http(
    fetcher: Fetcher,
    target: Target,
    ctx: CheckContext,
    facts: dict[str, Any],
    unknown: dict[str, Problem],
) -> list[tuple[str, int]] | None:
    """``http_redirects_to_https``; the route from plain HTTP (URLs fetched, with their
    status), or None when nothing answers plain HTTP there."""
    port = targets.http_port(ctx.family_options("web"))
    facts["http_redirects_to_https"] = None
    if not port:
        return None
    host = f"[{target.host}]" if ":" in target.host else target.host
    url = f"http://{host}{'' if port == 80 else f':{port}'}/"
    try:
        walk = _walk(fetcher, target, ctx, url, partial=True)
    except FetchError as error:
        if error.kind != "refused":
            unknown["http_redirects_to_https"] = Problem(_KINDS[error.kind], str(error))
        return None
    first = walk.chain[0]["location"] if walk.chain else ""
    facts["http_redirects_to_https"] = bool(walk.chain) and is_https_to(first, target.host)
    if walk.failed or walk.refused:
        return None  # the Observatory's session then has no answer from plain HTTP
    route = [(hop["url"], hop["status"]) for hop in walk.chain]
    return [*route, (walk.answers[-1].url, walk.answers[-1].status)]


def _security_txt(
    fetcher: Fetcher,
    target: Target,
    facts: dict[str, Any],
    unknown: dict[str, Problem],
    budget: float,
) -> None:
    url = targets.site_url(target.host, target.port or 443, "/.well-known/security.txt")
    try:
        answer = fetcher.get(url, {"Accept": "text/plain"}, budget)
    except FetchError as error:
        facts["security_txt"] = None
        unknown["security_txt"] = Problem(_KINDS[error.kind], str(error))
        return
    if answer.status in REDIRECTS:
        where = (answer.first("location") or "")[:MAX_VALUE]
        facts["security_txt"] = absent(url, f"redirects to {where!r} (not followed)")
    elif answer.status != 200:
        facts["security_txt"] = absent(url)
    elif answer.truncated or len(answer.body) > MAX_BYTES:
        facts["security_txt"] = absent(url, f"larger than {MAX_BYTES} bytes")
    else:
        text = answer.body.decode("utf-8", "replace")
        facts["security_txt"] = security_txt_facts(url, text, answer.first("content-type"))
