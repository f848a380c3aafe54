"""Ask an FTP server whether it offers explicit TLS (``AUTH TLS``, RFC 4217).

nmap's service detection reads an FTP server's greeting and stops there: it names the
product but cannot say whether the server would protect a session with TLS, and an
FTP server fixed as the exposure baseline advises (explicit FTPS on port 21) looks
exactly like a cleartext one. So Rempart asks, as an FTPS client would (RFC 4217 §4):
it reads the greeting, sends ``AUTH TLS`` and reads the reply. ``234`` means the server
is ready to start TLS on the control connection; a refusal (``431``, ``5xx``) means it
is not. Nothing else is sent: no login, no handshake; the connection is closed after
the reply (with ``QUIT`` when the server stays in clear).

The exchange is small and bounded on purpose: one connection, to the address and port
nmap found open on the scanned target (so nothing outside what the scope guard admitted
is touched), at most :data:`PROBE_S` seconds and :data:`REPLY_LIMIT` bytes read. Any
other outcome (no greeting, a timeout, a reset, a reply that is not FTP) raises
:class:`ObservationError` with its reason: the fact is then unknown, never ``false``.
"""

from __future__ import annotations

import contextlib
import socket
import time

from audit.errors import ObservationError
from audit.models import Reason
from checks.ports.runner import sanitise

PROBE_S = 5.0
"""Time for the whole exchange: a loopback server answers in milliseconds, a distant one
in a few round trips; a server that has not answered in 5 s is not going to."""
REPLY_LIMIT = 4096
"""Bytes read for one reply (greetings are a few lines; a banner flood is cut short)."""
READY = 234
"""RFC 4217 §4: "234 AUTH TLS OK" — the server waits for the TLS handshake."""
REFUSALS = frozenset({431, 500, 501, 502, 503, 504, 530, 534})
"""Replies that say the server will not start TLS (RFC 2228 and RFC 959 codes)."""


def offers_auth_tls(address: str, port: int, timeout_s: float = PROBE_S) -> bool:
    """True when the server accepts ``AUTH TLS``, False when it refuses it.

    Raises ObservationError (timeout, refused, unreachable, undecidable) otherwise.
    """
    deadline = time.monotonic() + timeout_s
    try:
        with socket.create_connection((address, port), timeout=timeout_s) as sock:
            return _exchange(sock, deadline)
    except TimeoutError:
        raise ObservationError(Reason.TIMEOUT, f"no FTP reply within {timeout_s:.0f} s") from None
    except ConnectionRefusedError:
        raise ObservationError(Reason.REFUSED, "connection refused") from None
    except OSError as exc:
        raise ObservationError(Reason.UNREACHABLE, sanitise(str(exc))) from None


def _exchange(sock: socket.socket, deadline: float) -> bool:
    greeting = read_reply(sock, deadline)
    if greeting[0] != 220:
        raise ObservationError(
            Reason.UNDECIDABLE, f"the server did not greet (reply {greeting[0]})"
        )
    sock.sendall(b"AUTH TLS\r\n")
    code, _ = read_reply(sock, deadline)
    if code == READY:
        return True
    if code in REFUSALS:
        _quit(sock)
        return False
    raise ObservationError(Reason.UNDECIDABLE, f"unexpected reply {code} to AUTH TLS")


def _quit(sock: socket.socket) -> None:
    """Say goodbye to a server left in clear (it may have closed already)."""
    with contextlib.suppress(OSError):
        sock.sendall(b"QUIT\r\n")


def read_reply(sock: socket.socket, deadline: float) -> tuple[int, str]:
    """One FTP reply (RFC 959 §4.2: ``NNN text`` or ``NNN-`` lines up to ``NNN text``)."""
    buffer = b""
    while True:
        code = parse_reply(buffer)
        if code is not None:
            return code, sanitise(buffer.decode("latin-1"))
        if len(buffer) >= REPLY_LIMIT:
            raise ObservationError(Reason.UNDECIDABLE, "reply too long, or not FTP")
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = sock.recv(REPLY_LIMIT - len(buffer))
        if not chunk:
            raise ObservationError(Reason.UNREACHABLE, "the server closed the connection")
        buffer += chunk


def parse_reply(data: bytes) -> int | None:
    """The reply code once ``data`` holds a complete reply, else None.

    Raises ObservationError(UNDECIDABLE) when the first line is not an FTP reply.
    """
    lines = data.split(b"\n")
    complete = lines[:-1]
    if not complete and len(lines[0]) < 4:
        return None
    first = lines[0]
    if len(first) < 4 or not first[:3].isdigit() or first[3:4] not in (b" ", b"-", b"\r"):
        raise ObservationError(Reason.UNDECIDABLE, "the reply is not FTP")
    code = first[:3]
    for line in complete:
        if line[:3] == code and line[3:4] in (b" ", b"\r"):
            return int(code)
    return None
