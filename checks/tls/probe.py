"""Short asyncio handshakes: send one ClientHello, read the first flight, hang up.

A probe never completes a handshake: it learns what the server chose from the
ServerHello (and, when asked, the Certificate and ServerKeyExchange that follow in
clear in TLS ≤ 1.2) and closes. That is what makes enumeration cheap enough to run
hundreds of probes in a second, and what keeps the engine independent of the local
TLS library.

Every connection is bounded twice: by a per-endpoint semaphore (do not hammer one
server) and by a process-wide cap shared by every scan thread (do not exhaust file
descriptors when the engine runs many targets at once). Every wait has a timeout,
so a black-holed endpoint costs at most its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass

from checks.tls import wire
from checks.tls.starttls import STARTTLS, StartTlsError

GLOBAL_CONNECTIONS = 64
"""Connections open at once in this process, across every endpoint being scanned."""

_global_slots = threading.BoundedSemaphore(GLOBAL_CONNECTIONS)


@dataclass(frozen=True)
class Endpoint:
    """Where to connect: an address (never re-resolved), a port, the SNI to send."""

    address: str
    port: int
    server_name: str | None = None
    starttls: str | None = None


@dataclass(frozen=True)
class Outcome:
    """The result of one probe: a reply, or why there was none.

    ``failure`` is one of ``refused``, ``timeout``, ``reset``, ``closed`` (the peer hung
    up without a word), ``unreachable``, ``not_tls`` and ``starttls`` (the plain-text
    upgrade failed); ``message`` says it in words.
    """

    reply: wire.Reply | None = None
    failure: str | None = None
    message: str = ""

    @property
    def is_accepted(self) -> bool:
        """The server went on with what the probe offered."""
        return self.reply is not None and self.reply.is_accepted


class Prober:
    """Run probes against one endpoint, at most ``limit`` at a time."""

    def __init__(self, endpoint: Endpoint, timeout: float, limit: int = 8) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._slots = asyncio.Semaphore(limit)
        self.count = 0

    async def ask(self, hello: wire.Hello) -> Outcome:
        """Send ``hello`` and return what the server answered."""
        async with self._slots, _global_slot():
            self.count += 1
            try:
                return await asyncio.wait_for(self._exchange(hello), self.timeout)
            except TimeoutError:
                return Outcome(failure="timeout", message=f"no answer within {self.timeout:g} s")
            except OSError as error:
                return _os_failure(error)
            except StartTlsError as error:
                return Outcome(failure="starttls", message=str(error))
            except wire.NotTls as error:
                return Outcome(failure="not_tls", message=str(error))

    async def _exchange(self, hello: wire.Hello) -> Outcome:
        async with self.connection(abort=True) as (reader, writer):
            writer.write(wire.client_hello(hello))
            await writer.drain()
            return await _read_flight(reader, hello)

    @contextlib.asynccontextmanager
    async def connection(
        self, abort: bool = False
    ) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        """A plain TCP connection, upgraded with STARTTLS when the target needs it.

        With ``abort`` the connection ends with a reset rather than a FIN exchange: a
        probe has nothing left to say, and thousands of probes must not leave as many
        sockets in TIME_WAIT on the scanning host.
        """
        endpoint = self.endpoint
        reader, writer = await asyncio.open_connection(endpoint.address, endpoint.port)
        try:
            if endpoint.starttls:
                await STARTTLS[endpoint.starttls](reader, writer)
            yield reader, writer
        finally:
            if abort:
                _reset(writer)
            else:
                writer.close()
                with contextlib.suppress(OSError, TimeoutError):
                    await asyncio.wait_for(writer.wait_closed(), 1.0)


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _read_flight(reader: asyncio.StreamReader, hello: wire.Hello) -> Outcome:
    flight = wire.FlightReader(hello)
    while not flight.done:
        data = await reader.read(65536)
        if not data:
            return Outcome(failure="closed", message="the server closed the connection")
        flight.feed(data)
    return Outcome(reply=flight.reply)


def _os_failure(error: OSError) -> Outcome:
    if isinstance(error, ConnectionRefusedError):
        return Outcome(failure="refused", message="connection refused")
    if isinstance(error, ConnectionResetError | BrokenPipeError):
        return Outcome(failure="reset", message="connection reset by the server")
    if error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return Outcome(failure="unreachable", message=f"unreachable: {error.strerror}")
    return Outcome(failure="unreachable", message=f"connection failed: {error}")


@contextlib.asynccontextmanager
async def _global_slot() -> AsyncIterator[None]:
    """Take one of the process-wide connection slots without blocking the loop."""
    while not _global_slots.acquire(blocking=False):
        await asyncio.sleep(0.002)
    try:
        yield
    finally:
        _global_slots.release()
