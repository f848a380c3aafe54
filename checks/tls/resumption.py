"""Session resumption: does the server take back a session it handed out?

A raw probe cannot answer this: a server caches a session only once a handshake
completed. So both tests use the local library (Python's ``ssl``), each as a full
handshake followed by one offering its session again, and read ``session_reused``:

* session IDs (RFC 5246 §7.3): a TLS ≤ 1.2 context that refuses tickets, so only the
  server's session cache can resume it; not applicable to TLS 1.3-only servers;
* session tickets (RFC 5077, and TLS 1.3 PSK tickets, RFC 8446 §4.6.1): the session of
  the handshake that read the HTTP headers (:mod:`checks.tls.http`), offered again by
  the same context. No ticket issued means no resumption by ticket.

A null says the local library could not complete the handshakes (an SSLv3-only server).
"""

from __future__ import annotations

import ssl

from checks.tls.http import ResumingContext, Session, client_context, handshake, session_of
from checks.tls.probe import Endpoint

_FAILURES = (OSError, ssl.SSLError, EOFError, ValueError, TimeoutError)


async def ticket_resumption(endpoint: Endpoint, first: Session, timeout: float) -> bool | None:
    """True when the server resumes the session of ``first`` from the ticket it issued."""
    if first.resumable is None or not isinstance(first.context, ResumingContext):
        return None
    if not first.resumable.has_ticket:
        return False
    return await _resumed(endpoint, first.context, first.resumable, timeout)


async def session_id_resumption(endpoint: Endpoint, timeout: float) -> bool | None:
    """True when the server resumes a TLS ≤ 1.2 session from its session-ID cache."""
    context = client_context(tickets=False, legacy_only=True)
    try:
        async with handshake(endpoint, context, timeout) as (_, writer):
            session = await session_of(writer.get_extra_info("ssl_object"))
    except _FAILURES:
        return None
    if session is None or not session.id:
        return False  # the server gave no session ID to come back with
    return await _resumed(endpoint, context, session, timeout)


async def _resumed(
    endpoint: Endpoint, context: ResumingContext, session: ssl.SSLSession, timeout: float
) -> bool | None:
    context.resume = session
    try:
        async with handshake(endpoint, context, timeout) as (_, writer):
            ssl_object = writer.get_extra_info("ssl_object")
            return bool(ssl_object and ssl_object.session_reused)
    except _FAILURES:
        return None
    finally:
        context.resume = None
