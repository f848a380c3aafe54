"""Short asyncio handshakes: send one ClientHello, read the first flight, hang up.

A probe never completes a handshake: it learns what the server chose from the
ServerHello (and, when asked, the Certificate and ServerKeyExchange that follow in
clear in TLS ≤ 1.2) and closes. That is what makes enumeration cheap enough to run
hundreds of probes in a second, and what keeps the engine independent of the local
TLS library.

Every probe of the process runs on one event loop, in a thread of its own
(:func:`run`): the engine's worker threads each hand it a target and wait. One loop
multiplexes every endpoint's sockets in a single ``epoll`` and never hands the GIL
back and forth between threads that each want to run a few microseconds of
callbacks, which is where a loop per thread spent its time. Direct-TLS probes use
bare non-blocking sockets (``loop.sock_*``), not streams: a probe is one send and a
few reads, and the stream machinery cost more CPU than the probe.

Every connection is bounded twice: by a per-endpoint semaphore (do not hammer one
server) and by a process-wide cap (do not exhaust file descriptors when the engine
runs many targets at once). Every wait has a timeout, so a black-holed endpoint
costs at most its timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import socket
import struct
import threading
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from checks.tls import wire
from checks.tls.starttls import STARTTLS, StartTlsError

GLOBAL_CONNECTIONS = 128
"""Connections open at once in this process, across every endpoint being scanned."""

PER_ENDPOINT = 8
"""Connections open at once to one endpoint."""

_T = TypeVar("_T")
_RESET = struct.pack("ii", 1, 0)


# --------------------------------------------------------------------------- the loop


class _SharedLoop:
    """The process's probe loop and its connection cap, started on first use.

    A forked child (a process-pool worker) finds the parent's loop without its
    thread; the pid check gives it a loop of its own.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pid = -1
        self._loop: asyncio.AbstractEventLoop | None = None
        self.slots: asyncio.Semaphore | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._pid != os.getpid() or self._loop.is_closed():
                self._loop = asyncio.new_event_loop()
                self._pid = os.getpid()
                self.slots = None
                thread = threading.Thread(
                    target=self._loop.run_forever, name="tls-probes", daemon=True
                )
                thread.start()
            return self._loop

    def global_slots(self) -> asyncio.Semaphore:
        """The process-wide cap (created on the loop, where it is used)."""
        if self.slots is None:
            self.slots = asyncio.Semaphore(GLOBAL_CONNECTIONS)
        return self.slots


_SHARED = _SharedLoop()


def run(coroutine: Coroutine[Any, Any, _T], limit: float) -> _T:
    """Run ``coroutine`` on the shared probe loop and wait at most ``limit`` seconds.

    The coroutine bounds itself; ``limit`` is the backstop that cancels it if it did
    not, so a caller thread never waits forever.
    """
    future = asyncio.run_coroutine_threadsafe(coroutine, _SHARED.loop())
    try:
        return future.result(timeout=limit)
    except TimeoutError:
        future.cancel()
        raise


# --------------------------------------------------------------------------- probes


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


class Channel:
    """One probe connection: a bare socket, or streams once STARTTLS was spoken."""

    def __init__(
        self,
        sock: socket.socket | None = None,
        streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None,
    ) -> None:
        self._sock = sock
        self._streams = streams
        self._loop = asyncio.get_running_loop()

    async def send(self, data: bytes) -> None:
        """Send all of ``data``."""
        if self._sock is not None:
            await self._loop.sock_sendall(self._sock, data)
        elif self._streams is not None:
            self._streams[1].write(data)
            await self._streams[1].drain()

    async def recv(self) -> bytes:
        """What arrived next (empty once the peer closed)."""
        if self._sock is not None:
            return await self._loop.sock_recv(self._sock, 65536)
        assert self._streams is not None
        return await self._streams[0].read(65536)

    def reset(self) -> None:
        """End with a reset rather than a FIN exchange.

        A probe has nothing left to say, and thousands of probes must not leave as
        many sockets in TIME_WAIT on the scanning host.
        """
        sock = self._sock or (self._streams[1].get_extra_info("socket") if self._streams else None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        if self._sock is not None:
            self._sock.close()
        elif self._streams is not None:
            self._streams[1].transport.abort()


class Prober:
    """Run probes against one endpoint, at most ``limit`` at a time."""

    def __init__(self, endpoint: Endpoint, timeout: float, limit: int = PER_ENDPOINT) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self._slots = asyncio.Semaphore(limit)
        self.count = 0

    async def ask(self, hello: wire.Hello) -> Outcome:
        """Send ``hello`` and return what the server answered."""
        outcome: Outcome = await self.guarded(self._exchange(hello))
        return outcome

    async def guarded(self, exchange: Coroutine[Any, Any, _T]) -> _T | Outcome:
        """Run one probe exchange within the caps and the timeout; failures become data."""
        async with self._slots, _SHARED.global_slots():
            self.count += 1
            try:
                return await asyncio.wait_for(exchange, self.timeout)
            except TimeoutError:
                return Outcome(failure="timeout", message=f"no answer within {self.timeout:g} s")
            except OSError as error:
                return _os_failure(error)
            except StartTlsError as error:
                return Outcome(failure="starttls", message=str(error))
            except wire.NotTls as error:
                return Outcome(failure="not_tls", message=str(error))

    async def _exchange(self, hello: wire.Hello) -> Outcome:
        async with self.channel() as channel:
            await channel.send(wire.client_hello(hello))
            return await read_flight(channel, hello)

    @contextlib.asynccontextmanager
    async def channel(self) -> AsyncIterator[Channel]:
        """A connection ready for a ClientHello (STARTTLS spoken first when needed)."""
        endpoint = self.endpoint
        if endpoint.starttls:
            reader, writer = await asyncio.open_connection(endpoint.address, endpoint.port)
            channel = Channel(streams=(reader, writer))
            try:
                await STARTTLS[endpoint.starttls](reader, writer)
                yield channel
            finally:
                channel.reset()
            return
        family = socket.AF_INET6 if ":" in endpoint.address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        channel = Channel(sock=sock)
        try:
            await asyncio.get_running_loop().sock_connect(sock, (endpoint.address, endpoint.port))
            yield channel
        finally:
            channel.reset()


async def read_flight(channel: Channel, hello: wire.Hello) -> Outcome:
    """Read the server's first flight for ``hello`` until it is decided."""
    flight = wire.FlightReader(hello)
    while not flight.done:
        data = await channel.recv()
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
