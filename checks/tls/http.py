"""One real TLS session through the local library: HSTS, and TLS 1.3 certificates.

Raw probes stop before encryption, so two things need a completed handshake: the
HTTP response headers (HSTS) and, on servers that speak only TLS 1.3, the
certificate chain (encrypted in 1.3). Both come from one connection made with
Python's ``ssl`` with verification off (we observe, we do not trust). When the local
library cannot talk to the server (an SSLv3-only relic), these facts stay null.

The plain-HTTP redirect is looked up on the same address, port 80 by default.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from checks.httpfacts import hsts_of, is_https_to
from checks.tls.probe import Endpoint
from checks.tls.starttls import STARTTLS

MAX_HEADER_BYTES = 32 * 1024
HTTP_WAIT = 2.0
"""How long a TLS service may take to answer our GET before we decide it is not HTTP."""
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True)
class Session:
    """What a completed handshake showed.

    ``resumable`` is the local library's session (``ssl.SSLSession``) and ``context`` the
    context that made it, for :mod:`checks.tls.resumption` to offer it again.
    """

    chain: tuple[bytes, ...] = ()
    status: int | None = None
    headers: tuple[tuple[str, str], ...] = ()
    error: str | None = None
    resumable: Any = None
    context: Any = None

    @property
    def speaks_http(self) -> bool:
        """The server answered our request with an HTTP status line."""
        return self.status is not None

    def header(self, name: str) -> str | None:
        """First value of a header (names compared case-insensitively)."""
        wanted = name.lower()
        return next((v for k, v in self.headers if k.lower() == wanted), None)


class ResumingContext(ssl.SSLContext):
    """A client context whose next handshakes offer ``resume``, a session it made.

    asyncio's ``start_tls`` has no session argument, but it builds its TLS object
    with ``wrap_bio``, which has one.
    """

    resume: ssl.SSLSession | None = None

    def wrap_bio(  # type: ignore[override]
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return super().wrap_bio(
            incoming, outgoing, server_side, server_hostname, session=session or self.resume
        )


def client_context(tickets: bool = True, legacy_only: bool = False) -> ResumingContext:
    """Verification off (we observe, we do not trust), every version and suite allowed."""
    context = ResumingContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if not tickets:
        context.options |= ssl.OP_NO_TICKET
    with contextlib.suppress(ssl.SSLError, ValueError), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # old versions are what we audit
        context.minimum_version = ssl.TLSVersion.TLSv1
        if legacy_only:
            context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("ALL:@SECLEVEL=0")
    return context


async def tls_session(endpoint: Endpoint, host_header: str, timeout: float, http: bool) -> Session:
    """Complete one handshake; fetch the peer chain and, if ``http``, the response head."""
    try:
        return await asyncio.wait_for(_session(endpoint, host_header, http, timeout), timeout * 2)
    except TimeoutError:
        return Session(error=f"no complete handshake within {timeout:g} s")
    except (OSError, ssl.SSLError, EOFError, ValueError) as error:
        return Session(error=f"handshake with the local TLS library failed: {error}"[:300])


async def _session(endpoint: Endpoint, host_header: str, http: bool, timeout: float) -> Session:
    context = client_context()
    async with handshake(endpoint, context, timeout) as (reader, writer):
        ssl_object = writer.get_extra_info("ssl_object")
        chain = peer_chain(ssl_object)
        status: int | None = None
        headers: tuple[tuple[str, str], ...] = ()
        if http:
            with contextlib.suppress(TimeoutError, OSError, ssl.SSLError):  # not HTTP
                status, headers = await asyncio.wait_for(
                    _request(reader, writer, host_header), min(timeout, HTTP_WAIT)
                )
        resumable = await session_of(ssl_object)
        return Session(chain, status, headers, resumable=resumable, context=context)


@contextlib.asynccontextmanager
async def handshake(
    endpoint: Endpoint, context: ssl.SSLContext, timeout: float
) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """A completed handshake with the local library (after STARTTLS when needed)."""
    reader, writer = await asyncio.open_connection(endpoint.address, endpoint.port)
    try:
        async with asyncio.timeout(timeout):
            if endpoint.starttls:
                await STARTTLS[endpoint.starttls](reader, writer)
            await writer.start_tls(context, server_hostname=endpoint.server_name)
        yield reader, writer
    finally:
        writer.close()
        with contextlib.suppress(OSError, TimeoutError, ssl.SSLError):
            await asyncio.wait_for(writer.wait_closed(), 1.0)


TICKET_WAIT = 0.3
"""How long to wait for a TLS 1.3 NewSessionTicket, which follows the handshake."""


async def session_of(ssl_object: ssl.SSLObject | None) -> ssl.SSLSession | None:
    """The session to resume; in TLS 1.3 only once the server's ticket has arrived."""
    if ssl_object is None:
        return None
    if ssl_object.version() == "TLSv1.3":
        for _ in range(int(TICKET_WAIT / 0.01)):
            session = ssl_object.session
            if session is not None and session.has_ticket:
                return session
            await asyncio.sleep(0.01)
    return ssl_object.session


def peer_chain(ssl_object: ssl.SSLObject | None) -> tuple[bytes, ...]:
    """DER chain as sent by the server (leaf first), not the verified one."""
    if ssl_object is None:
        return ()
    getter = getattr(ssl_object, "get_unverified_chain", None)
    if getter is None:  # Python < 3.13 keeps it on the inner object
        getter = getattr(getattr(ssl_object, "_sslobj", None), "get_unverified_chain", None)
    if getter is not None:
        chain = getter() or []
        return tuple(cert.public_bytes(ssl._ssl.ENCODING_DER) for cert in chain)  # type: ignore[attr-defined]
    leaf = ssl_object.getpeercert(binary_form=True)
    return (leaf,) if leaf else ()


async def _request(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
) -> tuple[int | None, tuple[tuple[str, str], ...]]:
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: rempart\r\nConnection: close\r\n\r\n"
    writer.write(request.encode("ascii", "replace"))
    await writer.drain()
    head = await _read_head(reader)
    return parse_head(head)


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    data = bytearray()
    while b"\r\n\r\n" not in data and len(data) < MAX_HEADER_BYTES:
        chunk = await reader.read(4096)
        if not chunk:
            break
        data += chunk
    return bytes(data[:MAX_HEADER_BYTES]).split(b"\r\n\r\n", 1)[0]


_STATUS = re.compile(r"^HTTP/\d(?:\.\d)? (\d{3})")


def parse_head(head: bytes) -> tuple[int | None, tuple[tuple[str, str], ...]]:
    """(status, headers) of an HTTP response head; status None when it is not HTTP."""
    lines = head.decode("latin-1").split("\r\n")
    match = _STATUS.match(lines[0]) if lines else None
    if match is None:
        return None, ()
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers.append((name.strip(), value.strip()))
    return int(match.group(1)), tuple(headers)


def hsts_facts(session: Session) -> dict[str, object] | None:
    """The ``hsts`` fact, or None when the endpoint does not speak HTTP."""
    if not session.speaks_http:
        return None
    return hsts_of(session.header("Strict-Transport-Security"))


async def http_redirect(address: str, port: int, host: str, timeout: float) -> bool | None:
    """True when plain HTTP redirects to https:// on the same host, None when nothing
    listens there.

    RFC 6797 §7.2: the plain-HTTP answer redirects to the HTTPS URI *of the same host*.
    A redirect to another host (``https://evil.example/``) does not upgrade this one's
    visitors, and may hand them to a third party: it is not counted."""
    try:
        return await asyncio.wait_for(_redirect(address, port, host), timeout)
    except (TimeoutError, OSError):
        return None


async def _redirect(address: str, port: int, host: str) -> bool | None:
    reader, writer = await asyncio.open_connection(address, port)
    try:
        status, headers = await _request(reader, writer, host)
    finally:
        writer.close()
    if status is None:
        return None
    location = next((v for k, v in headers if k.lower() == "location"), "")
    return status in _REDIRECTS and is_https_to(location, host)
