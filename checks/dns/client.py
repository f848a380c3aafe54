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
truncated UDP answer is asked again over TCP. All queries of one scan run on one asyncio
loop; a semaphore per resolver bounds how many are in flight at each server.

Resolvers come from ``--resolver HOST[:PORT]`` or the inventory's ``dns: {resolvers:
[...]}`` (both reach the family as ``ctx.family_options("dns")["resolvers"]``), else from
the system's configuration (``/etc/resolv.conf``), read only when a query needs it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import dns.message

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
    whole response (authority section included, for denial-of-existence proofs).
    """

    name: str
    rdtype: str
    rcode: str | None
    records: tuple[str, ...] = ()
    rrsigs: tuple[Any, ...] = ()
    error: str | None = None
    server: str | None = None
    """``host:port`` of the server that answered (or was last tried)."""
    flags: tuple[str, ...] = ()
    """Header flags of the response (``QR AA RD RA TC AD``...), for the recursion test."""
    message: Any = field(default=None, compare=False, repr=False)
    """The response as a ``dns.message.Message`` (None when there is none)."""

    @property
    def known(self) -> bool:
        """False when no server answered: the fact stays unknown, never "absent"."""
        return self.error is None

    @property
    def exists(self) -> bool:
        """The name exists (NOERROR, with or without records of this type; RFC 8020)."""
        return self.error is None and self.rcode == "NOERROR"


def parse_server(text: str) -> tuple[str, int]:
    """``HOST[:PORT]``, ``[v6]:PORT`` or a bare IPv6 address, as (address, port).

    Resolvers are addresses, not names: resolving a resolver's name would need a
    resolver. Raises ValueError with a one-line message.
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


class DnsClient:
    """Queries with the DO bit, a per-query timeout and TCP after truncation, bounded
    per resolver; every outcome is an :class:`Answer`, never an exception."""

    def __init__(
        self,
        resolvers: Sequence[tuple[str, int]] | None,
        timeout: float,
        concurrency: int = 32,
    ) -> None:
        self._resolvers = tuple(resolvers) if resolvers is not None else None
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
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
        (bounded by :data:`MAX_RECORDS`).
        """
        import dns.exception
        import dns.flags
        import dns.message
        import dns.rdatatype

        qname = _name(name)
        kind = rdtype.upper()
        where = f"{server[0]}:{server[1]}"
        try:
            wire_type = dns.rdatatype.from_text(kind)
            request = dns.message.make_query(
                qname + ("" if qname == "." else "."),
                wire_type,
                use_edns=0,
                want_dnssec=True,
                payload=EDNS_PAYLOAD,
            )
        except (dns.exception.DNSException, ValueError) as exc:
            return Answer(qname, kind, None, error=f"bad question {qname} {kind}: {exc}")
        if recurse:
            # CD: a validating resolver hands over what it would call bogus, instead of a
            # SERVFAIL that hides it; Rempart judges the signatures itself (RFC 4035 §3.2.2).
            request.flags |= dns.flags.CD
        else:
            request.flags &= ~dns.flags.RD
        limit = self._limits.setdefault(server, asyncio.Semaphore(self.concurrency))
        async with limit:
            if kind == "AXFR":
                return await self._axfr(server, qname, where)
            try:
                response = await self._exchange(request, server)
            except (TimeoutError, dns.exception.Timeout):
                return Answer(
                    qname,
                    kind,
                    None,
                    server=where,
                    error=f"timeout after {self.timeout:g} s from {where}",
                )
            except (OSError, dns.exception.DNSException, EOFError) as exc:
                return Answer(
                    qname, kind, None, server=where, error=f"no answer from {where}: {_why(exc)}"
                )
        return _answer(qname, kind, wire_type, response, where)

    async def _exchange(self, request: dns.message.Message, server: tuple[str, int]) -> Any:
        """UDP, then TCP when truncated; one deadline covers both."""
        import dns.asyncquery
        import dns.flags

        deadline = time.monotonic() + self.timeout
        response = await dns.asyncquery.udp(
            request, server[0], timeout=self.timeout, port=server[1], ignore_trailing=True
        )
        if response.flags & dns.flags.TC:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            response = await dns.asyncquery.tcp(request, server[0], timeout=left, port=server[1])
        return response

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


def _answer(qname: str, kind: str, wire_type: Any, response: Any, where: str) -> Answer:
    import dns.flags
    import dns.rcode
    import dns.rdatatype

    records: list[str] = []
    rrsigs: list[Any] = []
    for rrset in response.answer:
        if rrset.rdtype == wire_type:
            records.extend(_record_text(rd) for rd in rrset)
        elif rrset.rdtype == dns.rdatatype.RRSIG and rrset.covers == wire_type:
            rrsigs.extend(rrset)
    return Answer(
        name=qname,
        rdtype=kind,
        rcode=dns.rcode.to_text(response.rcode()),
        records=tuple(records[:MAX_RECORDS]),
        rrsigs=tuple(rrsigs[:MAX_RECORDS]),
        server=where,
        flags=tuple(dns.flags.to_text(response.flags).split()),
        message=response,
    )
