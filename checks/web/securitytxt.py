"""security.txt, read per RFC 9116.

The file is looked up at ``/.well-known/security.txt`` only (§3: the legacy top-level
location is for compatibility, and a file found only there is an error); it must be
served as ``text/plain`` (§3), and it is read up to :data:`MAX_BYTES`. Fields are
``name: value`` lines (§2.4, names case-insensitive); ``Contact`` is required and may
repeat (§2.5.3), ``Expires`` is required once and must not be in the past (§2.5.5).
A file wrapped in an OpenPGP cleartext signature (§2.3) counts as signed; the
signature itself is not verified (no key to verify it against is known here).

The ``sectxt`` package validates the same and more, but it fetches the file itself
through ``requests``: the family has one bounded client, so the few rules are here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

MAX_BYTES = 32 * 1024
"""security.txt is a handful of lines: a larger answer is not read past this."""
SIGNED = "-----BEGIN PGP SIGNED MESSAGE-----"
_SIGNATURE = "-----BEGIN PGP SIGNATURE-----"


def absent(url: str, error: str | None = None) -> dict[str, Any]:
    """The fact when no file is served at the well-known location."""
    return {
        "present": False,
        "url": url,
        "contact": [],
        "expires": None,
        "expired": None,
        "signed": False,
        "errors": [error] if error else [],
    }


def security_txt_facts(
    url: str, text: str, content_type: str | None, now: dt.datetime | None = None
) -> dict[str, Any]:
    """The ``security_txt`` fact of a file served at ``url``."""
    now = now or dt.datetime.now(dt.UTC)
    errors: list[str] = []
    if (content_type or "").split(";")[0].strip().lower() != "text/plain":
        errors.append(f"served as {content_type or 'no type'!r}, not text/plain (RFC 9116 §3)")
    signed = text.lstrip().startswith(SIGNED)
    fields = _fields(_body(text) if signed else text)
    contact = [v for k, v in fields if k == "contact"][:20]
    expires_values = [v for k, v in fields if k == "expires"]
    if not contact:
        errors.append("no Contact field (RFC 9116 §2.5.3)")
    expires, expired = None, None
    if len(expires_values) != 1:
        errors.append("Expires must appear exactly once (RFC 9116 §2.5.5)")
    if expires_values:
        parsed = _date(expires_values[0])
        if parsed is None:
            errors.append("Expires is not an RFC 3339 date-time (RFC 9116 §2.5.5)")
        else:
            expires, expired = parsed.isoformat(), parsed < now
            if expired:
                errors.append("Expires is in the past (RFC 9116 §2.5.5)")
    return {
        "present": True,
        "url": url,
        "contact": contact,
        "expires": expires,
        "expired": expired,
        "signed": signed,
        "errors": errors,
    }


def _body(text: str) -> str:
    """The signed text of an OpenPGP cleartext message (RFC 4880 §7), dash-unescaped."""
    lines = text.lstrip().splitlines()[1:]
    while lines and lines[0].strip():  # armor headers (Hash: SHA512) up to a blank line
        lines = lines[1:]
    body = []
    for line in lines[1:]:
        if line.startswith(_SIGNATURE):
            break
        body.append(line[2:] if line.startswith("- ") else line)
    return "\n".join(body)


def _fields(text: str) -> list[tuple[str, str]]:
    fields = []
    for line in text.splitlines()[:500]:
        if line.startswith("#") or ":" not in line:
            continue
        name, _, value = line.partition(":")
        if name.strip() and " " not in name.strip():
            fields.append((name.strip().lower(), value.strip()[:512]))
    return fields


def _date(value: str) -> dt.datetime | None:
    """An RFC 3339 date-time (``Z`` or an offset), as UTC."""
    try:
        parsed = dt.datetime.fromisoformat(value.strip().replace("z", "Z"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    return parsed.astimezone(dt.UTC)
