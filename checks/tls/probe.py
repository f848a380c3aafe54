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

A probe that got no TLS verdict (a timeout, a reset, a close without an alert, bytes
that are not TLS) says nothing about what was offered: an IPS or a rate limiter in
front of the server looks exactly like that. Enumeration probes are therefore asked
*patiently* (:meth:`Prober.insist`): retried with exponential back-off and jitter,
within the scan's deadline, while the whole endpoint slows down (one connection at
a time, every probe waiting out the back-off). A healthy server never fails a probe
and never pays for any of it; a clean refusal (an alert) is an answer, never retried.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import inspect
import os
import secrets
import socket
import struct
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from audit.models import Observation, Problem, Reason, Target
from audit.plugins import CheckContext
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


def start(coroutine: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
    """Schedule ``coroutine`` on the shared probe loop; its future, for whoever waits.

    Cancelling the future cancels the coroutine on the loop.
    """
    return asyncio.run_coroutine_threadsafe(coroutine, _SHARED.loop())


def run(coroutine: Coroutine[Any, Any, _T], limit: float) -> _T:
    """Run ``coroutine`` on the shared probe loop and wait at most ``limit`` seconds.

    The coroutine bounds itself; ``limit`` is the backstop that cancels it if it did
    not, so a caller thread never waits forever.
    """
    future = start(coroutine)
    try:
        return future.result(timeout=limit)
    except TimeoutError:
        future.cancel()
        raise


def collect_on_loop(
    observed: Callable[[Target, CheckContext], Coroutine[Any, Any, Observation]],
    target: Target,
    ctx: CheckContext,
    backstop: float,
) -> Observation:
    """A family's ``collect`` for an observation made on the probe loop: waits for it, at
    most ``ctx.timeout + backstop``; past that (the loop did not get it done, a check
    blocked it) the target has a timeout problem, never a raise."""
    started = time.monotonic()
    try:
        return run(observed(target, ctx), ctx.timeout + backstop)
    except TimeoutError:
        problem = Problem(Reason.TIMEOUT, f"no complete observation within {ctx.timeout:g} s")
        return Observation(target, problems=(problem,), duration_s=time.monotonic() - started)


async def guarded(family: str, target: Target, work: Awaitable[Observation]) -> Observation:
    """``work``'s observation, timed; a bug in it is the target's problem, not a raise (it
    must not end the scan)."""
    started = time.monotonic()
    try:
        observation = await work
    except Exception as error:
        message = f"{family} check failed: {error.__class__.__name__}: {error}"
        observation = Observation(target, problems=(Problem(Reason.BUG, message),))
    return replace(observation, duration_s=time.monotonic() - started)


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
    up without a word), ``unreachable``, ``not_tls``, ``starttls`` (the plain-text
    upgrade failed) and ``unsent`` (not sent at all: the endpoint had stopped answering
    and the scan's time was spent); ``message`` says it in words.
    """

    reply: wire.Reply | None = None
    failure: str | None = None
    message: str = ""

    @property
    def is_accepted(self) -> bool:
        """The server went on with what the probe offered."""
        return self.reply is not None and self.reply.is_accepted

    @property
    def is_refused(self) -> bool:
        """A clean refusal: the server answered in TLS, with an alert."""
        return self.reply is not None and self.reply.kind == "alert"

    @property
    def is_undecided(self) -> bool:
        """No TLS verdict at all: the offer may be accepted or refused.

        A reset, a close without an alert or a block page is what a rate limiter or
        an IPS does to the connection, whatever was offered; reading it as "refused"
        would end an enumeration early and report a partial list as complete.
        """
        return self.reply is None


@dataclass(frozen=True)
class Patience:
    """How hard to insist on probes that get no verdict.

    After the n-th failure in a row *of the endpoint* (any probe), the endpoint rests
    about ``first_delay * factor**(n-1)`` seconds, n stopping at ``steps`` (between
    half and all of it: jitter keeps parallel chains from retrying in lockstep), and
    the failed probe is tried again. With the defaults the rests are 0.25, 0.5, 1 and
    2 s at most: a rate limiter's window (typically a second) refills meanwhile, and
    every chain gets its turn as the server lets a few handshakes through each time.
    An endpoint that answered nothing for ``give_up`` seconds while being asked is
    gone: no more retries, no more rests, each remaining probe is asked once. One
    probe is asked at most ``most`` times (an IPS matching on what is offered may
    refuse that one forever and let the others through).
    """

    steps: int = 4
    first_delay: float = 0.25
    factor: float = 2.0
    give_up: float = 2.0
    most: int = 12

    def delay(self, failures: int) -> float:
        """Seconds to rest after ``failures`` failures in a row, jittered."""
        ceiling = self.first_delay * self.factor ** (min(failures, self.steps) - 1)
        return ceiling * _JITTER.uniform(0.5, 1.0)


_JITTER = secrets.SystemRandom()
_NO_TIME_LEFT = "not sent: the endpoint stopped answering and the scan's time is spent"
PATIENCE = Patience()


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
    """Run probes against one endpoint, at most ``limit`` at a time.

    ``deadline`` (on the loop's clock) is when the observation must be done: no retry
    starts that could not finish before it. ``count`` counts the connections,
    ``retries`` the retries among them.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        timeout: float,
        limit: int = PER_ENDPOINT,
        *,
        patience: Patience = PATIENCE,
        deadline: float | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.timeout = timeout
        self.patience = patience
        self.deadline = deadline
        self._slots = asyncio.Semaphore(limit)
        self._one_at_a_time = asyncio.Lock()
        self._struggling = False
        self._quiet_until = 0.0
        self._failures = 0
        self._failing_since: float | None = None
        self.count = 0
        self.retries = 0

    async def ask(self, hello: wire.Hello, *, patient: bool = False) -> Outcome:
        """Send ``hello`` and return what the server answered (retried when ``patient``)."""
        if patient:
            answer = await self.insist(lambda: self._exchange(hello))
        else:
            answer = await self.guarded(self._exchange(hello))
        return answer

    async def insist(self, exchange: Callable[[], Coroutine[Any, Any, _T]]) -> _T | Outcome:
        """Run ``exchange()`` until it gets a TLS verdict, resting between attempts.

        Gives up as :class:`Patience` says, or when the next attempt could not end
        before the deadline; the last undecided outcome is returned then.
        """
        attempts = 0
        failed: Outcome | None = None
        while True:
            answer = await self.guarded(exchange())
            attempts += 1
            self._note(answer)
            if isinstance(answer, Outcome) and answer.failure != "unsent":
                failed = answer
            if not _undecided(answer) or attempts >= self.patience.most or self._is_gone():
                break
            delay = self.patience.delay(self._failures)
            if not self._has_time_for(delay):
                break
            self._rest(delay)
            self.retries += 1
        if isinstance(answer, Outcome) and answer.is_undecided:
            told = failed or answer  # what the server did beats "out of time"
            return replace(told, message=f"{told.message} ({attempts} attempt(s))")
        return answer

    def _is_gone(self) -> bool:
        """Nothing answered for ``patience.give_up`` seconds of asking."""
        since = self._failing_since
        now = asyncio.get_running_loop().time()
        return since is not None and now - since >= self.patience.give_up

    def _has_time_for(self, delay: float) -> bool:
        if self.deadline is None:
            return True
        return asyncio.get_running_loop().time() + delay + self.timeout <= self.deadline

    def _rest(self, delay: float) -> None:
        """From now on one connection at a time, and none before ``delay`` has passed."""
        self._struggling = True
        now = asyncio.get_running_loop().time()
        self._quiet_until = max(self._quiet_until, now + delay)

    async def guarded(self, exchange: Coroutine[Any, Any, _T]) -> _T | Outcome:
        """Run one probe exchange within the caps and the timeout; failures become data."""
        try:
            async with self._slots:
                if not self._struggling:  # the healthy path: nothing more than the caps
                    return await self._send(exchange)
                return await self._send_gently(exchange)
        finally:
            if inspect.getcoroutinestate(exchange) == inspect.CORO_CREATED:
                exchange.close()  # never sent: out of time, or cancelled while queued

    async def _send_gently(self, exchange: Coroutine[Any, Any, _T]) -> _T | Outcome:
        """Once the endpoint failed a probe and until it is gone, probes go one at a
        time, after the rests: queued probes would otherwise all fire into a rate
        limiter (or each wait their timeout on a silent server) the moment a rest
        ends. None is sent that could not end before the deadline."""
        gone = self._is_gone()
        async with contextlib.nullcontext() if gone else self._one_at_a_time:
            if not gone:
                await self._wait_quiet()
            if not self._has_time_for(0):
                return Outcome(failure="unsent", message=_NO_TIME_LEFT)
            return await self._send(exchange)

    async def _send(self, exchange: Coroutine[Any, Any, _T]) -> _T | Outcome:
        async with _SHARED.global_slots():
            self.count += 1
            return await self._attempt(exchange)

    async def _wait_quiet(self) -> None:
        while (left := self._quiet_until - asyncio.get_running_loop().time()) > 0:
            await asyncio.sleep(left)

    def _note(self, answer: object) -> None:
        """Keep the endpoint's failure streak (what the rests and giving up go by).

        Only patient probes count: a protocol probe's close or reset is how some
        servers refuse an old protocol, not a sign of trouble.
        """
        if _undecided(answer):
            self._failures += 1
            if self._failing_since is None:
                self._failing_since = asyncio.get_running_loop().time()
        else:
            self._failures = 0
            self._failing_since = None

    async def _attempt(self, exchange: Coroutine[Any, Any, _T]) -> _T | Outcome:
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


def _undecided(answer: object) -> bool:
    return isinstance(answer, Outcome) and answer.is_undecided


def _os_failure(error: OSError) -> Outcome:
    if isinstance(error, ConnectionRefusedError):
        return Outcome(failure="refused", message="connection refused")
    if isinstance(error, ConnectionResetError | BrokenPipeError):
        return Outcome(failure="reset", message="connection reset by the server")
    if error.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL):
        return Outcome(failure="unreachable", message=f"unreachable: {error.strerror}")
    return Outcome(failure="unreachable", message=f"connection failed: {error}")
