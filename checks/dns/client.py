"""The DNS client every DNS-reading family shares (``dns://``, ``mail://``).

Why a client of our own instead of ``dns.resolver``: a check must tell *unknown* from
*absent*. ``dns.resolver`` turns a timeout, a SERVFAIL and an empty answer into
exceptions of different kinds and retries behind our back; here every query returns an
:class:`Answer` that says either what the server said (its rcode and records) or why
nothing was said (``error``), so a rule reading the fact can end ``error`` instead of
passing on silence.

Every query carries EDNS0 with the DO bit, so the RRSIGs come with the answer (DNSSEC is
validated by :mod:`checks.dns.dnssec`, never by trusting the AD bit of a resolver), and a
question to a resolver sets CD, so a validating one passes bogus data on for us to judge
rather than answering SERVFAIL. A
truncated UDP answer is asked again over TCP, and an unanswered UDP question is sent
again (same ID) within its timeout, as a stub resolver retransmits: one lost datagram
must not make a fact unknown, while a server that stays silent still ends in a timeout
error. All queries of one scan run on one asyncio loop; semaphores per resolver bound
how many are in flight at each server, per target and across the scan.

Why not ``dns.asyncquery``: against a nearby resolver a question's cost is CPU, not the
network, and dnspython spent it on a socket per question and a full message object per
answer. Here the questions of a scan share a :class:`DnsSession` (answers kept for their
TTL, identical questions in flight asked once, one UDP socket per server renewed every
:data:`ROTATE` questions, random IDs, answers that do not echo the question dropped), and
the plain answers are read by :mod:`checks.dns.wire`; dnspython reads the rest (DNSSEC
material, SOA, CAA, TLSA, anything unusual), and a plain answer's ``message`` when asked.

Resolvers come from ``--resolver HOST[:PORT]`` or the inventory's ``dns: {resolvers:
[...]}`` (both reach the family as ``ctx.family_options("dns")["resolvers"]``), else from
the system's configuration (``/etc/resolv.conf``), read only when a query needs it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audit.plugins import CheckContext

DEFAULT_PORT = 53
EDNS_PAYLOAD = 1232
"""The EDNS buffer size of DNS Flag Day 2020: large enough for most signed answers,
small enough to avoid IP fragmentation; anything bigger comes over TCP."""
MAX_RECORDS = 1000
"""At most this many records are kept from one answer (untrusted input stays bounded)."""


@dataclass(frozen=True)
class Answer:
    """What one query got: the server's word, or why there was none.

    ``records`` are the rdata of the answer section's RRsets of the asked type, in
    presentation form (names keep their trailing dot); a TXT record is its strings
    joined, unquoted. ``rrsigs`` are the RRSIG rdatas covering them. ``message`` is the
    whole response (authority section included, for denial-of-existence proofs). Both
    are read from ``wire`` by dnspython when first asked for: most answers (a TXT, an MX)
    never need them, and an answer the plain reader saw no RRSIG in has no signatures to
    read.
    """

    name: str
    rdtype: str
    rcode: str | None
    records: tuple[str, ...] = ()
    error: str | None = None
    server: str | None = None
    """``host:port`` of the server that answered (or was last tried)."""
    flags: tuple[str, ...] = ()
    """Header flags of the response (``QR AA RD RA TC AD``...), for the recursion test."""
    wire: bytes | None = field(default=None, compare=False, repr=False)
    """The response as received (None when there is none)."""
    parsed: Any = field(default=None, compare=False, repr=False)
    """The response already read by dnspython, when it was (else read from ``wire``)."""
    signed: bool | None = field(default=None, compare=False, repr=False)
    """Whether the answer section holds an RRSIG, when the plain reader saw (None: not
    known, ask the message)."""

    @cached_property
    def message(self) -> Any:
        """The response as a ``dns.message.Message`` (None when there is none)."""
        if self.parsed is not None or self.wire is None:
            return self.parsed
        import dns.message

        return dns.message.from_wire(self.wire, ignore_trailing=True)

    @cached_property
    def rrsigs(self) -> tuple[Any, ...]:
        """The RRSIG rdatas of the answer section covering the asked type."""
        if not self.records or self.signed is False:
            return ()  # no record, or no RRSIG at all: no signature of them
        message = self.message
        if message is None:
            return ()
        import dns.rdatatype

        covered = dns.rdatatype.from_text(self.rdtype)
        found = [
            rd
            for rrset in message.answer
            if rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers == covered
            for rd in rrset
        ]
        return tuple(found[:MAX_RECORDS])

    @property
    def known(self) -> bool:
        """False when no server answered: the fact stays unknown, never "absent"."""
        return self.error is None

    @property
    def exists(self) -> bool:
        """The name exists (NOERROR, with or without records of this type; RFC 8020)."""
        return self.error is None and self.rcode == "NOERROR"


@lru_cache(maxsize=256)
def parse_server(text: str) -> tuple[str, int]:
    """``HOST[:PORT]``, ``[v6]:PORT`` or a bare IPv6 address, as (address, port).

    Resolvers are addresses, not names: resolving a resolver's name would need a
    resolver. Raises ValueError with a one-line message. Kept per text: each target
    reads the scan's resolvers again.
    """
    raw = text.strip()
    host, port = raw, DEFAULT_PORT
    if raw.startswith("["):
        end = raw.find("]")
        if end < 0:
            raise ValueError(f"resolver {text!r}: unbalanced '['")
        host, rest = raw[1:end], raw[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"resolver {text!r}: expected ':PORT' after ']'")
            port = _port(rest[1:], text)
    elif raw.count(":") == 1:
        host, port_text = raw.split(":")
        port = _port(port_text, text)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"resolver {text!r}: give an IP address, not a name") from None
    return str(address), port


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"resolver {whole!r}: port must be 1-65535")
    return int(text)


def resolvers_from(ctx: CheckContext) -> tuple[tuple[str, int], ...] | None:
    """The resolvers the user chose (``--resolver``, inventory ``dns.resolvers``), or
    None for the system's. Entries are ``HOST[:PORT]`` strings or (host, port) pairs."""
    value = ctx.family_options("dns").get("resolvers")
    if not value:
        return None
    servers: list[tuple[str, int]] = []
    for item in value:
        if isinstance(item, str):
            servers.append(parse_server(item))
        else:
            host, port = item
            servers.append((str(host), int(port)))
    return tuple(servers)


def system_resolvers() -> tuple[tuple[str, int], ...]:
    """The system's resolvers (``/etc/resolv.conf``), read when first needed."""
    import dns.resolver

    try:
        resolver = dns.resolver.Resolver(configure=True)
    except Exception:
        return ()
    servers = []
    for ns in resolver.nameservers:
        text = str(ns)
        try:
            servers.append((str(ipaddress.ip_address(text)), int(resolver.port)))
        except ValueError:
            continue  # a DoH/DoT nameserver object: not spoken here
    return tuple(servers)


def _name(name: str) -> str:
    return name.strip().lower().rstrip(".") or "."


def _record_text(rdata: Any) -> str:
    """Presentation form; TXT (and SPF) strings joined without quotes (RFC 7208 §3.3)."""
    strings = getattr(rdata, "strings", None)
    if strings is not None:
        return b"".join(strings).decode("utf-8", "replace")
    return str(rdata.to_text())


CACHE_MAX_S = 300.0
"""An answer is reused for at most its TTL, and never beyond this within one scan."""
CACHE_ENTRIES = 200_000
"""Answers kept per scan (the oldest go first): a scan of a large estate stays bounded."""
ROTATE = 256
"""Questions sent from one UDP socket before the next ones go from a fresh socket, so
the source port keeps changing (RFC 5452 §4.5) while sockets are not made per question."""
IN_FLIGHT = 64
"""UDP questions awaiting their answer at one server, across every target of the scan:
the answers to a burst land in one socket's receive buffer, and past it the kernel drops
them (a lost answer is an unknown fact, and a timeout's wait)."""
RECEIVE_BUFFER = 1 << 20
"""Bytes asked for the socket's receive buffer (the kernel caps it at ``rmem_max``):
room for the in-flight answers while the loop is busy elsewhere."""
RESEND_S = 1.0
"""A UDP question unanswered this long goes again (same ID), then after twice as long,
and so on within its timeout: one lost datagram does not make a fact unknown."""


class DnsSession:
    """What the DNS questions of one scan share, across targets and families.

    * The answers, by (server, name, type, RD), each for at most its TTL (capped by
      :data:`CACHE_MAX_S`): a thousand domains whose MX is one host ask its TLSA once;
      the ``dns`` and ``mail`` families of one scan ask a domain's MX once. A question
      that got no answer is not kept: the next domain asks again.
    * The questions in flight: a second asker awaits the first one's answer.
    * The signature checks that held on its answers (:attr:`proven`): a thousand domains
      under one TLD, or whose MX is one host, have the root's and the TLD's keys checked
      once, not once each.
    * One connected UDP socket per server and event loop (a :class:`_Link`), renewed
      every :data:`ROTATE` questions, queries told apart by their random ID and question;
      at most :data:`IN_FLIGHT` questions awaiting an answer on it.
    """

    def __init__(self) -> None:
        self.answers: dict[tuple[Any, ...], tuple[float, Answer]] = {}
        self.flight: dict[tuple[Any, ...], asyncio.Future[Answer]] = {}
        self.links: dict[tuple[int, tuple[str, int]], _Link] = {}
        self.proven: dict[tuple[str, str], Any] = {}
        """What a validator proved from this session's answers (see
        :mod:`checks.dns.dnssec`): reused only for the very same answer objects."""
        # a session let go (a scan over, a worker's old scan) closes its sockets: they
        # live on the process's loop, which outlives it
        weakref.finalize(self, _close_all, self.links)

    def cached(self, key: tuple[Any, ...]) -> Answer | None:
        hit = self.answers.get(key)
        if hit is None:
            return None
        if hit[0] < time.monotonic():
            self.answers.pop(key, None)
            return None
        return hit[1]

    def keep(self, key: tuple[Any, ...], answer: Answer, ttl: float | None) -> None:
        if not answer.known or not ttl or ttl <= 0:
            return
        if len(self.answers) >= CACHE_ENTRIES:
            for old in list(self.answers)[: CACHE_ENTRIES // 10]:
                self.answers.pop(old, None)
        self.answers[key] = (time.monotonic() + min(ttl, CACHE_MAX_S), answer)

    def link(self, server: tuple[str, int]) -> _Link:
        """What this session keeps for ``server`` on the running loop."""
        loop = asyncio.get_running_loop()
        key = (id(loop), server)
        found = self.links.get(key)
        if found is None or found.loop is not loop:
            found = self.links[key] = _Link(loop, asyncio.Semaphore(IN_FLIGHT))
        return found


@dataclass
class _Link:
    """A session's ties to one server on one event loop: the bound on UDP questions in
    flight there, and the channel they go through."""

    loop: asyncio.AbstractEventLoop
    slot: asyncio.Semaphore
    channel: _Channel | None = None

    def open_channel(self, server: tuple[str, int]) -> _Channel:
        """The open UDP channel to ``server``, a fresh one when the last is spent (opening
        one does not wait: a burst's questions all find the same)."""
        if self.channel is None or not self.channel.usable(self.loop):
            self.channel = _Channel(self.loop, server)
        return self.channel


def _close_all(links: dict[tuple[int, tuple[str, int]], _Link]) -> None:
    for link in list(links.values()):
        if link.channel is not None:
            link.channel.close_soon()


def session_for(ctx: CheckContext) -> DnsSession:
    """The scan's DNS session (in ``ctx.shared``, which every family of a scan shares)."""
    found = ctx.shared.get("dns.session")
    if found is None:
        found = ctx.shared.setdefault("dns.session", DnsSession())
    assert isinstance(found, DnsSession)
    return found


MAX_DATAGRAM = 65535
"""Bytes read for one answer: any UDP datagram whole, whatever payload was advertised."""


class _Channel:
    """One connected, non-blocking UDP socket watched by the loop; answers matched to
    questions by ID and question echo.

    Why not asyncio's datagram transport: it reads one datagram per turn of the loop, each
    into a fresh 256 KiB buffer. That size is past malloc's mmap threshold, so every
    answer cost a mapping, a remap and an unmapping of memory (with a TLB flush across
    the process's threads): about a fifth of the mail family's time on a loopback
    resolver. Here each turn reads every answer already queued (at most
    :data:`IN_FLIGHT` and its resends), each into a heap buffer of :data:`MAX_DATAGRAM`.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, server: tuple[str, int]) -> None:
        self.loop = loop
        self.pending: dict[int, tuple[bytes, asyncio.Future[bytes]]] = {}
        self.sent = 0
        self.closed = False
        sock = socket.socket(_family(server[0]), socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
            sock.connect(server)  # UDP: no packet sent; the kernel drops other sources
            loop.add_reader(sock.fileno(), self._readable)
        except BaseException:
            sock.close()
            raise
        self.sock = sock

    def usable(self, loop: asyncio.AbstractEventLoop) -> bool:
        return self.loop is loop and not self.closed and self.sent < ROTATE and not loop.is_closed()

    def close(self) -> None:
        """Stop watching the socket and close it; questions still waiting fail."""
        if self.closed:
            return
        self.closed = True
        if not self.loop.is_closed():
            self.loop.remove_reader(self.sock.fileno())  # before the number can be reused
        self.sock.close()
        self._fail(ConnectionResetError("the socket closed"))

    def close_soon(self) -> None:
        """Close the socket from whichever thread lets the session go (on its loop, where
        it is watched; at once when that loop is closed)."""
        if self.closed:
            return
        try:
            self.loop.call_soon_threadsafe(self.close)
        except RuntimeError:  # the loop is closed: nobody watches the socket any more
            self.closed = True
            self.sock.close()

    def _readable(self) -> None:
        """Read every answer queued on the socket (bounded, so that a flood of datagrams
        cannot hold the loop: the rest wait for its next turn)."""
        from checks.dns.wire import echoes

        pending, sock = self.pending, self.sock
        for _ in range(2 * IN_FLIGHT):
            try:
                data = sock.recv(MAX_DATAGRAM)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # an ICMP error for the server (port unreachable)
                self._fail(exc)
                return
            if len(data) < 2:
                continue
            qid = int.from_bytes(data[:2], "big")
            entry = pending.get(qid)
            if entry is None:
                continue  # late, or not ours: dropped, as dnspython's ignore_unexpected does
            question, future = entry
            if not future.done() and echoes(data, qid, question):
                future.set_result(data)

    def _send(self, message: bytes) -> None:
        """Send one question; a full send buffer is a datagram lost on the way (the resend
        timer sends it again), any other error fails the questions waiting here."""
        try:
            self.sock.send(message)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        for _, future in self.pending.values():
            if not future.done():
                future.set_exception(exc)

    async def ask(self, qid: int, message: bytes, question: bytes, timeout: float) -> bytes:
        while qid in self.pending:
            qid = (qid + 1) & 0xFFFF
            message = qid.to_bytes(2, "big") + message[2:]
        future: asyncio.Future[bytes] = self.loop.create_future()
        self.pending[qid] = (question, future)
        self.sent += 1
        # One timer per question, for its resends and its deadline: the deadline fails the
        # future itself (no asyncio.timeout, a context object, the task's cancellation and
        # its undoing, for each of a scan's ten thousand questions).
        waiting = _Waiting(future, message, self.loop.time() + timeout)
        self._plan(waiting, RESEND_S)
        try:
            self._send(message)
            return await future
        finally:
            if waiting.timer is not None:
                waiting.timer.cancel()
            del self.pending[qid]
            if self.sent >= ROTATE and not self.pending:
                self.close()

    def _plan(self, waiting: _Waiting, wait: float) -> None:
        """Set the question's one timer: a resend in ``wait`` seconds, or its deadline if
        that comes first."""
        resend = self.loop.time() + wait
        if resend < waiting.deadline:
            waiting.timer = self.loop.call_at(resend, self._resend, waiting, wait)
        else:
            waiting.timer = self.loop.call_at(waiting.deadline, _expire, waiting.future)

    def _resend(self, waiting: _Waiting, waited: float) -> None:
        """Send an unanswered question again (same ID), and plan the next time after
        twice as long."""
        if waiting.future.done():
            return
        if not self.closed:
            self._send(waiting.message)
        self._plan(waiting, 2 * waited)


class _Waiting:
    """A question awaiting its answer: what is sent again, until when, and its one timer
    (for its resends and its deadline)."""

    __slots__ = ("deadline", "future", "message", "timer")

    def __init__(self, future: asyncio.Future[bytes], message: bytes, deadline: float) -> None:
        self.future, self.message, self.deadline = future, message, deadline
        self.timer: asyncio.TimerHandle | None = None


def _expire(future: asyncio.Future[bytes]) -> None:
    """A question's deadline: its answer never came."""
    if not future.done():
        future.set_exception(TimeoutError())


class DnsClient:
    """Queries with the DO bit, a per-query timeout and TCP after truncation, bounded
    per resolver; every outcome is an :class:`Answer`, never an exception.

    Clients given the same :class:`DnsSession` (the families of one scan, through
    :func:`session_for`) share its answers and sockets; a client made without one has its
    own.
    """

    def __init__(
        self,
        resolvers: Sequence[tuple[str, int]] | None,
        timeout: float,
        concurrency: int = 32,
        session: DnsSession | None = None,
    ) -> None:
        self._resolvers = tuple(resolvers) if resolvers is not None else None
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        self.session = session if session is not None else DnsSession()
        self._limits: dict[tuple[str, int], asyncio.Semaphore] = {}

    @property
    def resolvers(self) -> tuple[tuple[str, int], ...]:
        """The resolvers asked, in order (the system's when none were given)."""
        if self._resolvers is None:
            self._resolvers = system_resolvers()
        return self._resolvers

    async def query(self, name: str, rdtype: str) -> Answer:
        """Ask the resolvers in turn (recursion desired) until one answers.

        A resolver that times out or cannot be reached passes the question to the next;
        an answer with any rcode (SERVFAIL included) is the answer. With none answering,
        the Answer carries the last error.
        """
        servers = self.resolvers
        if not servers:
            return Answer(_name(name), rdtype.upper(), None, error="no resolver configured")
        answer: Answer | None = None
        for server in servers:
            answer = await self.query_at(server, name, rdtype, recurse=True)
            if answer.known:
                return answer
        assert answer is not None
        return answer

    async def query_at(
        self, server: tuple[str, int], name: str, rdtype: str, *, recurse: bool = False
    ) -> Answer:
        """Ask one server directly (an authoritative server: AXFR, recursion, NS checks).

        ``recurse`` sets RD. AXFR goes over TCP and its records are the whole transfer
        (bounded by :data:`MAX_RECORDS`). Answers come from the session when it has them.
        """
        qname = _name(name)
        kind = rdtype.upper()
        if kind == "AXFR":
            async with self._limit(server):
                return await self._axfr(server, qname, f"{server[0]}:{server[1]}")
        key = (server, qname, kind, recurse)
        session = self.session
        hit = session.cached(key)
        if hit is not None:
            return hit
        loop = asyncio.get_running_loop()
        flying = session.flight.get(key)
        if flying is not None and flying.get_loop() is loop:
            return await asyncio.shield(flying)
        future: asyncio.Future[Answer] = loop.create_future()
        session.flight[key] = future
        try:
            answer, ttl = await self._ask(server, qname, kind, recurse)
            session.keep(key, answer, ttl)
            future.set_result(answer)
            return answer
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters see it, nobody logs it twice
            raise
        finally:
            if session.flight.get(key) is future:
                del session.flight[key]

    def _limit(self, server: tuple[str, int]) -> asyncio.Semaphore:
        return self._limits.setdefault(server, asyncio.Semaphore(self.concurrency))

    async def _ask(
        self, server: tuple[str, int], qname: str, kind: str, recurse: bool
    ) -> tuple[Answer, float | None]:
        from checks.dns import wire

        where = f"{server[0]}:{server[1]}"
        try:
            code = wire.TYPES.get(kind) or _type_code(kind)
            # CD: a validating resolver hands over what it would call bogus, instead of a
            # SERVFAIL that hides it; Rempart judges the signatures itself (RFC 4035 §3.2.2).
            flags = wire.RD | wire.CD if recurse else 0
            qid, message, question = wire.query(wire.encode_name(qname), code, flags, EDNS_PAYLOAD)
        except ValueError as exc:
            return Answer(qname, kind, None, error=f"bad question {qname} {kind}: {exc}"), None
        async with self._limit(server):
            try:
                data = await self._exchange(server, qid, message, question)
            except TimeoutError:
                error = f"timeout after {self.timeout:g} s from {where}"
                return Answer(qname, kind, None, server=where, error=error), None
            except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
                error = f"no answer from {where}: {_why(exc)}"
                return Answer(qname, kind, None, server=where, error=error), None
        return _reply(qname, kind, code, data, where)

    async def _exchange(
        self, server: tuple[str, int], qid: int, message: bytes, question: bytes
    ) -> bytes:
        """UDP, then TCP when truncated; one deadline covers both."""
        link = self.session.link(server)
        async with link.slot:
            deadline = time.monotonic() + self.timeout
            channel = link.open_channel(server)
            data = await channel.ask(qid, message, question, self.timeout)
        if data[2] & 0x02:  # TC
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            async with asyncio.timeout(left):
                data = await _tcp(server, message, question)
        return data

    async def _axfr(self, server: tuple[str, int], qname: str, where: str) -> Answer:
        """A zone transfer: REFUSED/NOTAUTH (or a closed port) is a refusal we saw; a
        timeout is unknown."""
        import dns.asyncquery
        import dns.exception
        import dns.message
        import dns.rcode
        import dns.rdatatype

        request = dns.message.make_query(qname + ".", dns.rdatatype.AXFR)
        records: list[str] = []
        rcode = "NOERROR"

        async def transfer() -> None:
            nonlocal rcode
            import dns.asyncbackend

            backend = dns.asyncbackend.get_default_backend()
            sock = await backend.make_socket(  # type: ignore[no-untyped-call]
                _family(server[0]), 1, 0, None, (server[0], server[1]), self.timeout
            )
            async with sock:
                await dns.asyncquery.send_tcp(sock, request, None)
                soa_seen = 0
                while True:
                    response, _ = await dns.asyncquery.receive_tcp(
                        sock, None, one_rr_per_rrset=True
                    )
                    code = dns.rcode.to_text(response.rcode())
                    if code != "NOERROR":
                        rcode = code
                        return
                    if not response.answer:
                        rcode = "EMPTY"
                        return
                    for rrset in response.answer:
                        for rdata in rrset:
                            if rrset.rdtype == dns.rdatatype.SOA:
                                soa_seen += 1
                            if len(records) < MAX_RECORDS:
                                records.append(
                                    f"{rrset.name} {dns.rdatatype.to_text(rrset.rdtype)} "
                                    f"{rdata.to_text()}"
                                )
                    if soa_seen >= 2 or len(records) >= MAX_RECORDS:
                        return  # the whole zone, or enough of it to know it is open

        try:
            await asyncio.wait_for(transfer(), self.timeout)
        except (TimeoutError, dns.exception.Timeout):
            return Answer(
                qname,
                "AXFR",
                None,
                server=where,
                error=f"timeout after {self.timeout:g} s from {where}",
            )
        except ConnectionRefusedError:
            return Answer(qname, "AXFR", "REFUSED", server=where)
        except (EOFError, ConnectionResetError):
            # Closing the connection on an AXFR request is a refusal (common in NSD/BIND).
            return Answer(qname, "AXFR", "REFUSED" if not records else "NOERROR", server=where)
        except (OSError, dns.exception.DNSException) as exc:
            return Answer(
                qname, "AXFR", None, server=where, error=f"no answer from {where}: {_why(exc)}"
            )
        return Answer(qname, "AXFR", rcode, records=tuple(records), server=where)


def _family(host: str) -> int:
    import socket

    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _why(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _type_code(kind: str) -> int:
    import dns.rdatatype

    try:
        return int(dns.rdatatype.from_text(kind))
    except Exception as exc:  # dnspython raises its own UnknownRdatatype
        raise ValueError(str(exc) or "unknown type") from None


async def _tcp(server: tuple[str, int], message: bytes, question: bytes) -> bytes:
    """The question again over TCP (RFC 7766), length-prefixed; the answer must echo it."""
    from checks.dns import wire

    reader, writer = await asyncio.open_connection(server[0], server[1])
    try:
        writer.write(len(message).to_bytes(2, "big") + message)
        await writer.drain()
        size = int.from_bytes(await reader.readexactly(2), "big")
        data = await reader.readexactly(size)
    finally:
        writer.close()
    if not wire.echoes(data, int.from_bytes(message[:2], "big"), question):
        raise EOFError("the TCP answer does not echo the question")
    return data


_AXFR = 252
_RCODES: dict[int, str] = {}
_FLAGS: dict[int, tuple[str, ...]] = {}


def _rcode_text(value: int) -> str:
    if value not in _RCODES:
        import dns.rcode

        _RCODES[value] = dns.rcode.to_text(dns.rcode.Rcode.make(value))
    return _RCODES[value]


def _flags_text(value: int) -> tuple[str, ...]:
    if value not in _FLAGS:
        import dns.flags

        _FLAGS[value] = tuple(dns.flags.to_text(value & 0x87B0).split())
    return _FLAGS[value]


def _reply(
    qname: str, kind: str, code: int, data: bytes, where: str
) -> tuple[Answer, float | None]:
    """The Answer in ``data``: read plainly for the plain types, by dnspython for the rest
    (or when the plain reader finds something unusual); unreadable is no answer."""
    from checks.dns import wire

    if code != _AXFR:
        try:
            reply = wire.read(data, code, MAX_RECORDS)
        except wire.Unusual:
            pass
        else:
            answer = Answer(
                name=qname,
                rdtype=kind,
                rcode=_rcode_text(reply.rcode),
                records=reply.records,
                server=where,
                flags=_flags_text(reply.flags),
                wire=data,
                signed=reply.signed,
            )
            return answer, reply.ttl
    return _parsed(qname, kind, code, data, where)


def _parsed(
    qname: str, kind: str, code: int, data: bytes, where: str
) -> tuple[Answer, float | None]:
    import dns.exception
    import dns.message

    try:
        response = dns.message.from_wire(data, ignore_trailing=True)
    except (dns.exception.DNSException, ValueError, EOFError) as exc:
        error = f"no answer from {where}: {_why(exc)}"
        return Answer(qname, kind, None, server=where, error=error), None
    records: list[str] = []
    for rrset in response.answer:
        if rrset.rdtype == code:
            records.extend(_record_text(rd) for rd in rrset)
    ttls = [rrset.ttl for section in (response.answer, response.authority) for rrset in section]
    answer = Answer(
        name=qname,
        rdtype=kind,
        rcode=_rcode_text(int(response.rcode())),
        records=tuple(records[:MAX_RECORDS]),
        server=where,
        flags=_flags_text(int(response.flags)),
        wire=data,
        parsed=response,
    )
    return answer, float(min(ttls)) if ttls else None
