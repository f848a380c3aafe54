"""The first HTML page: which origins it loads scripts, styles, fonts and frames from.

Parsed with the standard library's ``html.parser`` (a tokenizer that never raises on bad
markup and holds no tree), over a body already bounded by :data:`checks.web.fetch.MAX_BODY`;
the number of resources described is bounded too. Only what the markup names is seen:
what scripts load at run time, and fonts named inside style sheets, are not.

A script or style sheet from another origin should carry ``integrity`` (Subresource
Integrity, W3C SRI §3), so that a compromised third party cannot change what runs here.
URLs are reported without their query string, which may carry tokens.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin, urlsplit

MAX_RESOURCES = 200
"""Resources described per page; the rest are counted in the origins, not listed."""


def origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of an absolute http(s) URL, default ports left out."""
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return None
    if split.scheme not in ("http", "https") or not split.hostname:
        return None
    host = f"[{split.hostname}]" if ":" in split.hostname else split.hostname
    default = {"http": 80, "https": 443}[split.scheme]
    return f"{split.scheme}://{host}" + (f":{port}" if port and port != default else "")


MAX_TAGS = 5 * MAX_RESOURCES
"""Tags of interest kept while parsing (scripts, links, frames, meta), whatever the page."""


class Markup(HTMLParser):
    """What the page names: resources, every ``<script>`` (for the Observatory's SRI
    test, inline ones included) and ``<meta http-equiv>`` headers."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str, bool]] = []
        self.scripts: list[tuple[str | None, bool]] = []
        """(src as written or None for inline, has integrity)."""
        self.equiv: list[tuple[str, str]] = []
        """Headers the page gives itself, as the Observatory reads them: (``content-security-
        policy``, content) for each ``<meta http-equiv>`` policy, (``referrer-policy``,
        content) for ``<meta name="referrer">``."""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = {k: (v or "") for k, v in attrs}
        integrity = bool(named.get("integrity", "").strip())
        if tag == "script" and len(self.scripts) < MAX_TAGS:
            self.scripts.append((named["src"].strip() if "src" in named else None, integrity))
        if tag == "meta" and len(self.equiv) < MAX_TAGS:
            self._meta(named)
        kind, url = _resource(tag, named)
        if kind and url and len(self.found) < MAX_TAGS:
            self.found.append((kind, url.strip(), integrity))

    def _meta(self, named: dict[str, str]) -> None:
        """``parseHttpEquivHeaders`` of the Observatory's retriever, line for line."""
        if "http-equiv" in named and "content" in named:
            if named["content"] and named["http-equiv"].strip().lower() == CSP:
                self.equiv.append((CSP, named["content"]))
        elif named.get("name", "").strip().lower() == "referrer" and named.get("content"):
            self.equiv.append(("referrer-policy", named["content"]))


CSP = "content-security-policy"


def parse_page(html: str) -> Markup:
    """Tokenize the (already bounded) page once."""
    markup = Markup()
    markup.feed(html)
    markup.close()
    return markup


def _resource(tag: str, attrs: dict[str, str]) -> tuple[str | None, str | None]:
    if tag == "script" and attrs.get("src"):
        return "script", attrs["src"]
    if tag in ("iframe", "frame") and attrs.get("src"):
        return "frame", attrs["src"]
    if tag == "link" and attrs.get("href"):
        rel = attrs.get("rel", "").lower().split()
        if "stylesheet" in rel:
            return "style", attrs["href"]
        if "modulepreload" in rel or ("preload" in rel and attrs.get("as") == "script"):
            return "script", attrs["href"]
        if "preload" in rel and attrs.get("as") in ("font", "style"):
            return ("font" if attrs["as"] == "font" else "style"), attrs["href"]
    return None, None


def page_facts(page_url: str, parser: Markup) -> dict[str, Any]:
    """``third_party_origins``, ``third_party_resources`` and ``sri_missing`` of a page."""
    own = origin_of(page_url)
    resources = []
    for kind, url, integrity in parser.found:
        absolute = urljoin(page_url, url)
        origin = origin_of(absolute)
        if origin is None or origin == own:
            continue
        shown = absolute.split("?", 1)[0].split("#", 1)[0][:512]
        resources.append({"kind": kind, "url": shown, "origin": origin, "integrity": integrity})
    missing = [
        r["url"] for r in resources if r["kind"] in ("script", "style") and not r["integrity"]
    ]
    return {
        "third_party_origins": sorted({r["origin"] for r in resources}),
        "third_party_resources": resources[:MAX_RESOURCES],
        "sri_missing": missing[:MAX_RESOURCES],
    }


def is_html(content_type: str | None) -> bool:
    """An HTML answer (the only kind whose resources are read)."""
    kind = (content_type or "").split(";")[0].strip().lower()
    return kind in ("text/html", "application/xhtml+xml")
