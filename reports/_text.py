"""Neutralising untrusted text for every output format.

Hostnames, certificate subjects, banners and tags come from targets we do not control.
Control characters (ANSI escapes, NUL, DEL, C1 codes, bidi overrides) are shown as
visible ``\\xNN`` / ``\\uNNNN`` escapes so a report can neither drive a terminal nor hide
text; renderers then add their own escaping (HTML, XML, CSV formulas).
"""

from __future__ import annotations

import json
import re
from typing import Any

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_BREAK = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""What XML 1.0 forbids (section 2.2, Char): C0 controls but tab and line breaks, lone
surrogates, U+FFFE and U+FFFF. One of them in a document makes every parser refuse it."""


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` as a string with control characters escaped (newlines and tabs kept)."""
    return _CONTROL.sub(_escape, str(text))


def one_line(text: object) -> str:
    """Like :func:`printable`, and line breaks and tabs escaped too (table cells)."""
    return _CONTROL_OR_BREAK.sub(_escape, str(text))


def xml_safe(text: str) -> str:
    """``text`` with every character XML 1.0 forbids shown as a visible escape."""
    return _XML_FORBIDDEN.sub(_escape, text)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis when longer."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def evidence_text(evidence: Any, limit: int = 400) -> str:
    """Evidence as compact JSON, escaped and shortened for display."""
    if evidence is None:
        return ""
    raw = (
        evidence
        if isinstance(evidence, str)
        else json.dumps(evidence, ensure_ascii=False, sort_keys=True, default=str)
    )
    return shorten(one_line(raw), limit)
