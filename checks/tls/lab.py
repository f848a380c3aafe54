"""Loopback TLS servers for the tests, the benchmark and ``rempart demo``.

Every server here is a context manager that listens on 127.0.0.1 (or ::1) port 0,
yields its port and stops everything it started on exit. The server base, the PKI
(:class:`Pki`) and process management come from :mod:`audit.labkit`; legacy protocols
and suites come from a real ``openssl s_server`` (:class:`OpenSslServer`), modern ones
from Python's ``ssl`` (:class:`PythonTlsServer`, which also answers HTTP with a chosen
HSTS header). The rest are the failure modes a scanner must survive: a port that accepts and never
speaks (:class:`BlackHoleServer`), one that resets (:class:`ResetServer`), one that
speaks something else (:class:`BannerServer`), one that stops answering after a few
handshakes, as behind a rate limiter or an IPS (:class:`ThrottledHelloServer`), and
tiny SMTP, IMAP and POP3 servers with STARTTLS.

Nothing here is imported by a scan; it only ever binds loopback addresses.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from audit.labkit import (
    LOOPBACK,
    DemoContext,
    DemoPart,
    Issued,
    LabProcess,
    Pki,
    ThreadedServer,
    closed_port,
    rsa_key,
)

__all__ = [  # the base's names too: the TLS tests say ``lab.Pki``, ``lab.ThreadedServer``
    "LOOPBACK",
    "BannerServer",
    "BlackHoleServer",
    "ImapStartTlsServer",
    "Issued",
    "OpenSslServer",
    "Pki",
    "PlainHttpServer",
    "Pop3StartTlsServer",
    "PythonTlsServer",
    "RawHelloServer",
    "ResetServer",
    "SmtpStartTlsServer",
    "ThreadedServer",
    "Throttle",
    "ThrottledHelloServer",
    "closed_port",
    "demo_part",
    "lab_directory",
    "openssl_accepts",
    "openssl_self_signed",
    "rsa_key",
    "server_context",
]


# --------------------------------------------------------------------------- certificates


def openssl_self_signed(
    directory: str | Path, name: str = "localhost", digest: str = "sha1"
) -> Issued:
    """A self-signed RSA certificate made by the openssl command, for digests
    ``cryptography`` refuses to sign with (SHA-1, MD5)."""
    base = Path(directory) / f"openssl-{digest}-{name}"
    cert, key = f"{base}.pem", f"{base}.key"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            f"-{digest}",
            "-days",
            "30",
            "-subj",
            f"/CN={name}",
            "-addext",
            f"subjectAltName=DNS:{name}",
            "-keyout",
            key,
            "-out",
            cert,
        ],
        check=True,
        capture_output=True,
    )
    from cryptography import x509

    return Issued(cert, key, cert, x509.load_pem_x509_certificate(Path(cert).read_bytes()))


# --------------------------------------------------------------------------- servers


def server_context(
    issued: Issued,
    *,
    minimum: ssl.TLSVersion = ssl.TLSVersion.TLSv1_2,
    maximum: ssl.TLSVersion = ssl.TLSVersion.MAXIMUM_SUPPORTED,
    ciphers: str | None = None,
) -> ssl.SSLContext:
    """A server context for ``issued``; a ``@SECLEVEL=0`` suffix allows weak keys."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if ciphers:
        context.set_ciphers(ciphers)
    context.minimum_version = minimum
    context.maximum_version = maximum
    context.load_cert_chain(issued.chain_file, issued.key_file)
    return context


class PythonTlsServer(ThreadedServer):
    """A TLS server on Python's ``ssl``; answers HTTP when ``http`` is true.

    ``hsts`` is the Strict-Transport-Security value sent (None: no header).
    """

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        http: bool = True,
        hsts: str | None = None,
        host: str = LOOPBACK,
    ) -> None:
        super().__init__(host)
        self.context = context
        self.http = http
        self.hsts = hsts

    def handle(self, connection: socket.socket) -> None:
        with self.context.wrap_socket(connection, server_side=True) as tls:
            if self.http:
                _read_request(tls)
                tls.sendall(_response(200, self.hsts))
            else:
                tls.recv(1024)


def _read_request(stream: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 16384:
        chunk = stream.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _response(status: int, hsts: str | None, location: str | None = None) -> bytes:
    lines = [
        f"HTTP/1.1 {status} {'OK' if status == 200 else 'Moved'}",
        "Content-Length: 0",
        "Connection: close",
    ]
    if hsts is not None:
        lines.append(f"Strict-Transport-Security: {hsts}")
    if location is not None:
        lines.append(f"Location: {location}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class PlainHttpServer(ThreadedServer):
    """Plain HTTP answering every request with ``status`` (and ``location``)."""

    def __init__(self, status: int = 301, location: str | None = "https://localhost/") -> None:
        super().__init__()
        self.status = status
        self.location = location

    def handle(self, connection: socket.socket) -> None:
        first = connection.recv(4096)
        if not first[:1].isalpha():  # like nginx: garbage gets a 400 at once
            connection.sendall(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
            return
        if b"\r\n\r\n" not in first:
            _read_request(connection)
        connection.sendall(_response(self.status, None, self.location))


class _StartTlsServer(ThreadedServer):
    """A plaintext mail server that upgrades to TLS with ``context`` when asked."""

    def __init__(self, context: ssl.SSLContext, *, offer_starttls: bool = True) -> None:
        super().__init__()
        self.context = context
        self.offer_starttls = offer_starttls

    def upgrade(self, connection: socket.socket) -> None:
        """Complete the TLS handshake the client starts, read its first record, stop."""
        with self.context.wrap_socket(connection, server_side=True) as tls:
            tls.recv(1024)


class SmtpStartTlsServer(_StartTlsServer):
    """An SMTP server that offers STARTTLS and then speaks TLS with ``context``."""

    def handle(self, connection: socket.socket) -> None:
        reader = connection.makefile("rb")
        connection.sendall(b"220 lab.invalid ESMTP ready\r\n")
        while line := reader.readline(1024):
            verb = line.strip().upper()
            if verb.startswith((b"EHLO", b"HELO")):
                extra = b"250-STARTTLS\r\n" if self.offer_starttls else b""
                connection.sendall(b"250-lab.invalid\r\n" + extra + b"250 8BITMIME\r\n")
            elif verb == b"STARTTLS" and self.offer_starttls:
                connection.sendall(b"220 go ahead\r\n")
                self.upgrade(connection)
                return
            elif verb == b"QUIT":
                connection.sendall(b"221 bye\r\n")
                return
            else:
                connection.sendall(b"502 unknown command\r\n")


class ImapStartTlsServer(_StartTlsServer):
    """An IMAP server that answers STARTTLS (RFC 3501) and then speaks TLS with ``context``."""

    def handle(self, connection: socket.socket) -> None:
        reader = connection.makefile("rb")
        connection.sendall(b"* OK [CAPABILITY IMAP4rev1 STARTTLS] lab.invalid ready\r\n")
        while line := reader.readline(1024):
            tag, _, command = line.strip().partition(b" ")
            if command.upper() == b"STARTTLS" and self.offer_starttls:
                connection.sendall(b"* CAPABILITY IMAP4rev1\r\n" + tag + b" OK begin TLS\r\n")
                self.upgrade(connection)
                return
            connection.sendall(tag + b" BAD unknown command\r\n")


class Pop3StartTlsServer(_StartTlsServer):
    """A POP3 server that answers STLS (RFC 2595) and then speaks TLS with ``context``."""

    def handle(self, connection: socket.socket) -> None:
        reader = connection.makefile("rb")
        connection.sendall(b"+OK lab.invalid POP3 ready\r\n")
        while line := reader.readline(1024):
            if line.strip().upper() == b"STLS" and self.offer_starttls:
                connection.sendall(b"+OK begin TLS\r\n")
                self.upgrade(connection)
                return
            connection.sendall(b"-ERR unknown command\r\n")


class BlackHoleServer(ThreadedServer):
    """Accepts TCP and never says a word (a stalled or firewalled service)."""

    def handle(self, connection: socket.socket) -> None:
        connection.settimeout(None)
        while not self.stopped.is_set():
            try:
                connection.settimeout(0.2)
                if not connection.recv(4096):
                    return
            except TimeoutError:
                continue


class ResetServer(ThreadedServer):
    """Accepts, reads the ClientHello, then resets the connection (RST)."""

    def handle(self, connection: socket.socket) -> None:
        connection.recv(4096)
        connection.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )


class BannerServer(ThreadedServer):
    """Speaks first with a non-TLS banner (an SSH server on the wrong port)."""

    def __init__(self, banner: bytes = b"SSH-2.0-OpenSSH_9.6\r\n") -> None:
        super().__init__()
        self.banner = banner

    def handle(self, connection: socket.socket) -> None:
        connection.sendall(self.banner)
        connection.recv(4096)


class RawHelloServer(ThreadedServer):
    """A first-flight-only TLS server written from the RFCs, for what no local library serves.

    OpenSSL 3 and Python's ``ssl`` cannot speak SSLv2 or SSLv3 nor answer heartbeats,
    so positive detection of those is tested against this: it reads one ClientHello,
    answers ServerHello (the highest of ``versions`` the client allows, the first of
    the client's suites it has in ``suites``), Certificate and ServerHelloDone, or an
    alert, and never completes a handshake. With ``heartbeat`` it acknowledges RFC 6520;
    with ``bleed`` it answers an over-long heartbeat request as CVE-2014-0160 did (with
    zeros: there is nothing to leak here). ``sslv2`` answers SSLv2 CLIENT-HELLOs.
    """

    def __init__(
        self,
        cert_der: bytes,
        *,
        versions: Sequence[int] = (0x0300,),
        suites: Sequence[int] = (0x002F, 0x000A),
        heartbeat: bool = False,
        bleed: bool = False,
        sslv2: bool = False,
    ) -> None:
        super().__init__()
        self.cert_der = cert_der
        self.versions = tuple(versions)
        self.suites = tuple(suites)
        self.heartbeat = heartbeat
        self.bleed = bleed
        self.sslv2 = sslv2

    def handle(self, connection: socket.socket) -> None:
        first = _recv_exactly(connection, 2)
        if first[0] & 0x80:
            if self.sslv2:
                connection.sendall(_sslv2_server_hello(self.cert_der))
            return
        header = first + _recv_exactly(connection, 3)
        body = _recv_exactly(connection, int.from_bytes(header[3:5], "big"))
        hello = _parse_client_hello(body)
        version = max((v for v in self.versions if v <= hello["version"]), default=None)
        suite = next((c for c in hello["suites"] if c in self.suites), None)
        if version is None or suite is None:
            alert = 70 if version is None else 40
            connection.sendall(b"\x15\x03\x01\x00\x02\x02" + bytes((alert,)))
            return
        heartbeat = self.heartbeat and 0x000F in hello["extensions"]
        connection.sendall(self._flight(version, suite, heartbeat))
        if heartbeat:
            self._after_flight(connection, version)

    def _flight(self, version: int, suite: int, heartbeat: bool) -> bytes:
        extensions = b""
        if version >= 0x0301:
            extensions = b"\xff\x01\x00\x01\x00" + (b"\x00\x0f\x00\x01\x01" if heartbeat else b"")
            extensions = len(extensions).to_bytes(2, "big") + extensions
        hello = (
            version.to_bytes(2, "big")
            + os.urandom(32)
            + b"\x00"
            + suite.to_bytes(2, "big")
            + b"\x00"
        )
        entry = len(self.cert_der).to_bytes(3, "big") + self.cert_der
        certificate = len(entry).to_bytes(3, "big") + entry
        messages = (
            _handshake(2, hello + extensions) + _handshake(11, certificate) + _handshake(14, b"")
        )
        return b"\x16" + version.to_bytes(2, "big") + len(messages).to_bytes(2, "big") + messages

    def _after_flight(self, connection: socket.socket, version: int) -> None:
        while True:
            header = _recv_exactly(connection, 5)
            body = _recv_exactly(connection, int.from_bytes(header[3:5], "big"))
            if header[0] == 0x18 and body[:1] == b"\x01" and self.bleed:
                claimed = int.from_bytes(body[1:3], "big")
                response = b"\x02" + body[1:3] + bytes(claimed) + bytes(16)
                record = b"\x18" + version.to_bytes(2, "big") + len(response).to_bytes(2, "big")
                connection.sendall(record + response)
            elif header[0] == 0x14:
                connection.sendall(b"\x15" + version.to_bytes(2, "big") + b"\x00\x02\x02\x0a")
                return


class Throttle:
    """Admit ``answers`` connections per ``window`` seconds (a fixed window, as most
    rate limiters count); with ``window`` None, the first ``answers`` and never again."""

    def __init__(self, answers: int, window: float | None = None) -> None:
        self.answers = answers
        self.window = window
        self.admitted = 0
        self.turned_away = 0
        self._lock = threading.Lock()
        self._count = 0
        self._started = time.monotonic()

    def admit(self) -> bool:
        """Whether this connection is served (counted either way)."""
        with self._lock:
            now = time.monotonic()
            if self.window is not None and now - self._started >= self.window:
                self._started, self._count = now, 0
            self._count += 1
            if self._count <= self.answers:
                self.admitted += 1
                return True
            self.turned_away += 1
            return False


class ThrottledHelloServer(RawHelloServer):
    """A :class:`RawHelloServer` behind a rate limiter or an IPS.

    It answers as long as ``throttle`` admits the connection; beyond that, it reads
    the ClientHello and then, by ``then``: ``reset`` (RST), ``close`` (FIN without a
    word), ``silence`` (keeps the connection open and says nothing) or ``garbage``
    (an HTTP 429 page, as a web application firewall sends). None of these is a TLS
    refusal: a scanner that reads them as "no more suites" reports a partial list.
    """

    def __init__(
        self, cert_der: bytes, throttle: Throttle, *, then: str = "reset", **options: Any
    ) -> None:
        super().__init__(cert_der, **options)
        self.throttle = throttle
        self.then = then

    def handle(self, connection: socket.socket) -> None:
        if self.throttle.admit():
            super().handle(connection)
            return
        connection.recv(4096)
        if self.then == "reset":
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        elif self.then == "garbage":
            connection.sendall(b"HTTP/1.1 429 Too Many Requests\r\nRetry-After: 1\r\n\r\n")
        elif self.then == "silence":
            self._hold(connection)

    def _hold(self, connection: socket.socket) -> None:
        """Say nothing until the client gives up or the server stops."""
        connection.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                if not connection.recv(4096):
                    return
            except TimeoutError:
                continue


_LINGER_RESET = b"\x01\x00\x00\x00\x00\x00\x00\x00"


def _recv_exactly(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise OSError("peer closed")
        data += chunk
    return data


def _handshake(kind: int, body: bytes) -> bytes:
    return bytes((kind,)) + len(body).to_bytes(3, "big") + body


def _parse_client_hello(body: bytes) -> dict[str, Any]:
    """client_version (or the best of supported_versions), suites and extension types."""
    position = 4 + 2 + 32
    position += 1 + body[position]
    suites_length = int.from_bytes(body[position : position + 2], "big")
    suites = [
        int.from_bytes(body[i : i + 2], "big")
        for i in range(position + 2, position + 2 + suites_length, 2)
    ]
    position += 2 + suites_length
    position += 1 + body[position]
    extensions: dict[int, bytes] = {}
    if position + 2 <= len(body):
        end = position + 2 + int.from_bytes(body[position : position + 2], "big")
        position += 2
        while position + 4 <= end:
            kind = int.from_bytes(body[position : position + 2], "big")
            length = int.from_bytes(body[position + 2 : position + 4], "big")
            extensions[kind] = body[position + 4 : position + 4 + length]
            position += 4 + length
    version = int.from_bytes(body[4:6], "big")
    if 0x002B in extensions:
        listed = extensions[0x002B][1:]
        version = max(int.from_bytes(listed[i : i + 2], "big") for i in range(0, len(listed), 2))
    return {"version": version, "suites": suites, "extensions": extensions}


def _sslv2_server_hello(cert_der: bytes) -> bytes:
    """An SSLv2 SERVER-HELLO offering SSL_CK_RC4_128_WITH_MD5."""
    connection_id = os.urandom(16)
    body = (
        b"\x04\x00\x01\x00\x02"
        + len(cert_der).to_bytes(2, "big")
        + b"\x00\x03"
        + len(connection_id).to_bytes(2, "big")
        + cert_der
        + b"\x01\x00\x80"
        + connection_id
    )
    return (0x8000 | len(body)).to_bytes(2, "big") + body


# --------------------------------------------------------------------------- openssl


class OpenSslServer(LabProcess):
    """``openssl s_server`` for what Python's ``ssl`` will not serve (TLS 1.0, legacy suites).

    With ``www`` it answers HTTP requests with a status page, as a web server would.
    ``args`` are extra s_server options, e.g. ``["-min_protocol", "TLSv1", "-cipher",
    "ALL:@SECLEVEL=0"]``. The port is read from s_server's own ``ACCEPT`` line.
    """

    def __init__(
        self, issued: Issued, args: Sequence[str] = (), *, host: str = LOOPBACK, www: bool = True
    ) -> None:
        binary = shutil.which("openssl")
        if binary is None:
            raise RuntimeError("openssl is not installed")
        command = [
            binary,
            "s_server",
            "-accept",
            f"{host}:0" if ":" not in host else f"[{host}]:0",
            "-cert",
            issued.cert_file,
            "-key",
            issued.key_file,
            *(["-cert_chain", issued.intermediates_file] if issued.intermediates_file else []),
            *(["-www"] if www else []),
            *args,
        ]
        super().__init__(command, read_port=_accept_port, host=host, prefix="rempart-sserver-")


def _accept_port(output: str) -> int | None:
    """The port of s_server's ``ACCEPT host:port`` line, once printed."""
    for line in output.splitlines():
        if line.startswith("ACCEPT"):
            return int(line.rsplit(":", 1)[1])
    return None


def openssl_accepts(spec: str, protocol: str) -> list[str]:
    """OpenSSL names of the suites ``openssl ciphers -s`` selects for ``spec``.

    ``protocol`` is ``tls1``, ``tls1_1``, ``tls1_2`` or ``tls1_3``. Tests compare
    the engine's findings with this ground truth.
    """
    output = subprocess.run(
        ["openssl", "ciphers", "-V", "-s", f"-{protocol}", spec],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "LC_ALL": "C"},
    ).stdout
    return [line.split()[2] for line in output.splitlines() if line.strip()]


@contextlib.contextmanager
def lab_directory() -> Iterator[Path]:
    """A temporary directory removed on exit."""
    directory = tempfile.mkdtemp(prefix="rempart-lab-")
    try:
        yield Path(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


# --------------------------------------------------------------------------- demo

GOOD_HSTS = "max-age=63072000; includeSubDomains"
DEMO_POLICIES = ("anssi-tls", "certificates", "mozilla-intermediate", "web-tls")
"""One Mozilla profile only: modern and intermediate give contradictory advice (modern
refuses the TLS 1.2 suites intermediate asks for), and a public body's estate serves
clients that need intermediate."""


def demo_part(ctx: DemoContext) -> DemoPart:
    """The TLS part of ``rempart demo``: a good endpoint, an expired one, a self-signed
    one, a legacy one (``openssl s_server``, when installed) and SMTP with STARTTLS."""
    from audit.labkit.demo import BACKOFFICE, PORTAL

    pki = Pki(ctx.directory / "pki", name="Rempart Démo")
    part = DemoPart(
        order=10, policies=DEMO_POLICIES, networks=("127.0.0.0/8",), domains=("localhost",)
    )
    part.ca_file = pki.ca_file
    good = pki.issue(("localhost",), days_valid=(-10, 80))
    servers = [
        PythonTlsServer(server_context(good), hsts=GOOD_HSTS),
        PythonTlsServer(server_context(pki.issue(("localhost",), days_valid=(-400, -3)))),
        PythonTlsServer(server_context(pki.issue(("portail.invalid",), self_signed=True))),
    ]
    for server in servers:
        ctx.stack.enter_context(server)
        part.add(PORTAL, f"tls://localhost:{server.port}")
    _demo_legacy(ctx, pki, part)
    smtp = ctx.stack.enter_context(SmtpStartTlsServer(server_context(good)))
    part.add(BACKOFFICE, f"smtp://localhost:{smtp.port}")
    return part


def _demo_legacy(ctx: DemoContext, pki: Pki, part: DemoPart) -> None:
    """TLS 1.0 and every suite, as an old appliance serves them (needs openssl)."""
    from audit.labkit.demo import PORTAL

    if not shutil.which("openssl"):
        part.notes.append("openssl is not installed: the legacy TLS endpoint was skipped")
        return
    legacy = pki.issue(("localhost",), key=rsa_key(2048))
    old = ctx.stack.enter_context(
        OpenSslServer(legacy, ["-min_protocol", "TLSv1", "-cipher", "ALL:@SECLEVEL=0"])
    )
    part.add(PORTAL, f"tls://localhost:{old.port}")
