"""Plain-text preambles that upgrade a connection to TLS (STARTTLS and friends).

Each protocol is one coroutine taking the stream pair, reading and writing until the
server said "go ahead", and raising :class:`StartTlsError` otherwise. Adding IMAP,
POP3, LDAP or FTP is one function and one line in :data:`STARTTLS`. Server replies are
untrusted: lines are bounded, counted, and only quoted (truncated) in messages.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

MAX_LINE = 1024
MAX_LINES = 64


class StartTlsError(Exception):
    """The server did not agree to upgrade the connection."""


async def _line(reader: asyncio.StreamReader) -> str:
    """One line of the server's, at most the stream's limit long (64 KiB by default).

    A longer one is the server breaking the protocol, not a bug of ours: ``readline``
    says so with a ValueError (its LimitOverrunError), which becomes a StartTlsError.
    """
    try:
        raw = await reader.readline()
    except (ValueError, asyncio.LimitOverrunError):
        raise StartTlsError(
            "the server sent a line longer than any protocol allows during STARTTLS"
        ) from None
    if not raw:
        raise StartTlsError("the server closed the connection during STARTTLS")
    return raw[:MAX_LINE].decode("ascii", "replace").rstrip("\r\n")


async def _smtp_reply(reader: asyncio.StreamReader) -> tuple[str, list[str]]:
    """Read one (possibly multi-line) SMTP reply: its code and its lines."""
    lines: list[str] = []
    for _ in range(MAX_LINES):
        line = await _line(reader)
        lines.append(line)
        if len(line) < 4 or line[3] != "-":
            return line[:3], lines
    raise StartTlsError("SMTP reply longer than any server sends")


async def smtp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 3207: banner, EHLO, STARTTLS, 220."""
    code, lines = await _smtp_reply(reader)
    if code != "220":
        raise StartTlsError(f"SMTP banner {lines[0][:80]!r} is not 220")
    writer.write(b"EHLO rempart.invalid\r\n")
    await writer.drain()
    code, lines = await _smtp_reply(reader)
    if code != "250":
        raise StartTlsError(f"EHLO refused: {lines[0][:80]!r}")
    if not any(line[4:].upper().startswith("STARTTLS") for line in lines):
        raise StartTlsError("the SMTP server does not offer STARTTLS")
    writer.write(b"STARTTLS\r\n")
    await writer.drain()
    code, lines = await _smtp_reply(reader)
    if code != "220":
        raise StartTlsError(f"STARTTLS refused: {lines[0][:80]!r}")


async def imap(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 3501 §6.2.1 / RFC 2595: greeting ``* OK``, ``STARTTLS``, tagged ``OK``."""
    greeting = await _line(reader)
    if not greeting.upper().startswith("* OK"):
        raise StartTlsError(f"IMAP greeting {greeting[:80]!r} is not * OK")
    writer.write(b"R1 STARTTLS\r\n")
    await writer.drain()
    for _ in range(MAX_LINES):
        line = await _line(reader)
        if line.startswith("* "):  # untagged data (CAPABILITY, ...) may come first
            continue
        if line.upper().startswith("R1 OK"):
            return
        raise StartTlsError(f"STARTTLS refused: {line[:80]!r}")
    raise StartTlsError("IMAP reply longer than any server sends")


async def pop3(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """RFC 2595 §4: greeting ``+OK``, ``STLS``, ``+OK``."""
    greeting = await _line(reader)
    if not greeting.startswith("+OK"):
        raise StartTlsError(f"POP3 greeting {greeting[:80]!r} is not +OK")
    writer.write(b"STLS\r\n")
    await writer.drain()
    answer = await _line(reader)
    if not answer.startswith("+OK"):
        raise StartTlsError(f"STLS refused: {answer[:80]!r}")


StartTls = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

STARTTLS: dict[str, StartTls] = {"smtp": smtp, "imap": imap, "pop3": pop3}
"""Preamble by target scheme."""
