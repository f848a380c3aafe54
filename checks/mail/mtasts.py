"""MTA-STS (RFC 8461) and SMTP TLS Reporting (RFC 8460).

MTA-STS is two halves: a TXT record at ``_mta-sts.<domain>`` (``v=STSv1; id=...``) that
says a policy exists, and the policy itself, fetched over HTTPS from
``https://mta-sts.<domain>/.well-known/mta-sts.txt``. A sending MTA trusts the policy only
if the certificate is valid for that host (§3.3), the answer is a 200 without redirects,
and the body parses; so does this check, with the TLS family's trust (the system's
anchors plus ``--ca-file``). The policy host passes the scope guard before any packet
and is reached at the address the guard pinned. The body is read up to
:data:`MAX_BODY` bytes (the RFC's own bound is 64 KiB).

An answer that is not a valid policy (a certificate a sender refuses, a 404, a redirect,
a body that does not parse) is an observation: ``mode`` null with ``policy_error``. No
answer at all (a timeout, a refused or reset connection) leaves the fact unknown.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from dataclasses import dataclass
from typing import Any

from checks.mail.dmarc import parse_tags

MAX_BODY = 65536
"""RFC 8461 §3.2 allows senders to refuse bigger policies; nothing more is read."""
MAX_HEAD = 16384
WELL_KNOWN = "/.well-known/mta-sts.txt"
MAX_AGE_LIMIT = 31557600
"""RFC 8461 §3.2: max_age is at most 31557600 seconds (about a year)."""
_STS = re.compile(r"^v\s*=\s*STSv1\s*(;|$)")
_TLSRPT = re.compile(r"^v\s*=\s*TLSRPTv1\s*(;|$)")
_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")


class Unanswered(Exception):
    """The policy host did not answer (timeout, refused, reset): the fact stays unknown."""


def txt_facts(texts: tuple[str, ...]) -> dict[str, Any]:
    """``present`` and ``id`` from the TXT strings at ``_mta-sts.<domain>`` (RFC 8461 §3.1)."""
    found = [t.strip() for t in texts if _STS.match(t.strip())]
    if len(found) != 1:
        error = f"{len(found)} STSv1 records (exactly one is required)" if found else None
        return {"present": False, "id": None, "txt_error": error}
    policy_id = parse_tags(found[0]).get("id", "")
    if not _ID.match(policy_id):
        return {
            "present": False,
            "id": None,
            "txt_error": "id= is missing or not 1-32 alphanumerics",
        }
    return {"present": True, "id": policy_id, "txt_error": None}


def tls_rpt_facts(texts: tuple[str, ...]) -> dict[str, Any]:
    """``present`` and ``rua`` from the TXT strings at ``_smtp._tls.<domain>`` (RFC 8460 §3)."""
    found = [t.strip() for t in texts if _TLSRPT.match(t.strip())]
    if len(found) != 1:
        return {"present": False, "rua": []}
    rua = [u.strip() for u in parse_tags(found[0]).get("rua", "").split(",") if u.strip()]
    return {"present": bool(rua), "rua": rua[:20]}


def parse_policy(body: str) -> tuple[dict[str, Any], str | None]:
    """The policy's fields (RFC 8461 §3.2), and why it is invalid (None: it is valid)."""
    fields: dict[str, Any] = {"version": None, "mode": None, "max_age": None, "mx": []}
    for line in body.splitlines()[:1000]:
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "mx":
            fields["mx"].append(value.lower().rstrip("."))
        elif key in ("version", "mode", "max_age") and fields[key] is None:
            fields[key] = value
    return _checked(fields)


def _checked(fields: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    if fields["version"] != "STSv1":
        return fields, "version is not STSv1"
    if fields["mode"] not in ("enforce", "testing", "none"):
        return fields, "mode is not enforce, testing or none"
    age = fields["max_age"]
    if not (isinstance(age, str) and age.isdigit() and int(age) <= MAX_AGE_LIMIT):
        return fields, "max_age is not an integer from 0 to 31557600"
    fields["max_age"] = int(age)
    if fields["mode"] != "none" and not fields["mx"]:
        return fields, "no mx: line"
    return fields, None


def mx_matches(host: str, pattern: str) -> bool:
    """RFC 8461 §4.1: a pattern is a host name, or ``*.`` and one leftmost label."""
    host = host.lower().rstrip(".")
    if pattern.startswith("*."):
        head, _, rest = host.partition(".")
        return bool(head) and rest == pattern[2:]
    return host == pattern


def covered(hosts: list[str], patterns: list[str]) -> bool:
    """Every MX host matches some pattern of the policy."""
    return all(any(mx_matches(h, p) for p in patterns) for h in hosts)


@dataclass(frozen=True)
class Fetched:
    """What the policy host answered: the policy's fields, or why it is not a policy."""

    fields: dict[str, Any]
    error: str | None


async def fetch_policy(
    host: str, addresses: tuple[str, ...], port: int, ca_file: str | None, timeout: float
) -> Fetched:
    """GET the policy from the pinned addresses, in order; raise :class:`Unanswered` when
    none answered at all."""
    failures: list[str] = []
    for address in addresses:
        try:
            return await asyncio.wait_for(_get(host, address, port, ca_file), timeout)
        except TimeoutError:
            failures.append(f"{address}:{port}: no answer within {timeout:g} s")
        except ssl.SSLCertVerificationError as exc:
            return Fetched({}, f"certificate refused: {exc.verify_message}")
        except ssl.SSLError as exc:
            return Fetched({}, f"TLS handshake failed: {exc.reason or exc}")
        except (ConnectionError, OSError) as exc:
            failures.append(f"{address}:{port}: {exc.__class__.__name__}: {exc}")
    raise Unanswered("; ".join(failures) or f"{host} has no address")


def client_context(ca_file: str | None) -> ssl.SSLContext:
    """What a sending MTA trusts: the system's anchors and the operator's ``--ca-file``."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    return context


async def _get(host: str, address: str, port: int, ca_file: str | None) -> Fetched:
    reader, writer = await asyncio.open_connection(
        address, port, ssl=client_context(ca_file), server_hostname=host
    )
    try:
        request = f"GET {WELL_KNOWN} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n"
        writer.write((request + "User-Agent: rempart\r\n\r\n").encode("ascii"))
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        if len(head) > MAX_HEAD:
            return Fetched({}, "response head too long")
        status, chunked = _status(head)
        if status != 200:
            return Fetched({}, f"HTTP status {status} (RFC 8461 §3.3: 200 required, no redirect)")
        body = await _body(reader, chunked)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise ConnectionResetError("the server closed before answering") from None
        return Fetched({}, "the response was cut short")
    except (asyncio.LimitOverrunError, ValueError):
        return Fetched({}, "malformed HTTP response (head too long, or a bad chunk size)")
    finally:
        writer.close()
    if body is None:
        return Fetched({}, f"policy body larger than {MAX_BODY} bytes")
    fields, error = parse_policy(body.decode("utf-8", "replace"))
    return Fetched(fields, error)


def _status(head: bytes) -> tuple[int | None, bool]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    chunked = any(
        line.lower().startswith("transfer-encoding:") and "chunked" in line.lower()
        for line in lines[1:]
    )
    return status, chunked


async def _body(reader: asyncio.StreamReader, chunked: bool) -> bytes | None:
    """The body, at most :data:`MAX_BODY` bytes (None when it is longer)."""
    if not chunked:
        data = await reader.read(MAX_BODY + 1)
        while data and len(data) <= MAX_BODY:
            more = await reader.read(MAX_BODY + 1 - len(data))
            if not more:
                break
            data += more
        return None if len(data) > MAX_BODY else data
    data = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";")[0].strip() or b"0", 16)  # ValueError: caller's
        if size < 0:
            raise ValueError("negative chunk size")
        if size == 0:
            return data
        if len(data) + size > MAX_BODY:
            return None
        data += await reader.readexactly(size)
        await reader.readexactly(2)
