"""Loopback listeners that nmap's service detection recognises, for tests and demos.

Each listener is a context manager that starts a small threaded server on a loopback
address (``127.0.0.1`` by default, or ``::1``) and an ephemeral port, yields a
:class:`Listener` saying what nmap 7.93 reports for it (checked by the tests), and stops
the server on exit. They speak just enough of each protocol for nmap's probes:

============  ===========================  =========================================
listener      what it sends                nmap -sV reports (service / product / version)
============  ===========================  =========================================
http          HTTP/1.0 replies             http / SimpleHTTPServer / 0.6
ssh           ``SSH-2.0-OpenSSH_5.3``      ssh / OpenSSH / 5.3
mysql         a MySQL 5.5.62 greeting      mysql / MySQL / 5.5.62-log
redis         Redis error replies          redis / Redis key-value store / (none)
tls           HTTP inside TLS              http, tunnel ssl / SimpleHTTPServer / 0.6
telnet        telnet option negotiation    telnet / Linux telnetd / (none)
ftp           pyftpdlib, FTP in clear      ftp / pyftpdlib / 2.2.0 (AUTH TLS refused)
ftps          pyftpdlib TLS_FTPHandler     ftp / pyftpdlib / 2.2.0 (AUTH TLS accepted)
============  ===========================  =========================================

The FTP servers are real ones (pyftpdlib, a test dependency, imported only when they are
started): ``ftps`` offers explicit TLS (``AUTH TLS``, RFC 4217) as the exposure baseline
advises, ``ftp`` does not, and ``mute_ftp_server`` greets like an FTP server and then
never answers a command, so whether it offers AUTH TLS cannot be known.

Services that wait for the client to speak first (HTTP, Redis) cost nmap about 6 s:
its first probe waits that long for a banner. ``silent`` accepts connections and never
answers, the slowest case for service detection (used to test time budgets);
``closed_port`` holds a port number bound but not listening, so a scan sees it closed;
``filtered_port`` fills a listener's accept queue so the kernel drops new connections
and a scan sees the port filtered, as behind a firewall.
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import socket
import socketserver
import ssl
import struct
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from audit.labkit import DemoContext, DemoPart, HandlerServer, key_pem, pem, self_signed
from audit.uri import format_host

OLD_OPENSSH_BANNER = b"SSH-2.0-OpenSSH_5.3\r\n"
MYSQL_VERSION = "5.5.62-log"
TELNET_NEGOTIATION = b"\xff\xfd\x18\xff\xfd \xff\xfd#\xff\xfd'"
MUTE_FTP_GREETING = b"220 Lab FTP server ready\r\n"
FTP_VERSION = "2.2.0"
"""The pyftpdlib release the dev extra installs (nmap reads it from the greeting)."""
HOLD_S = 5.0
"""How long a connection is kept open waiting for the client (then closed)."""


@dataclass(frozen=True)
class Listener:
    """A running lab server and what nmap's service detection says about it."""

    name: str
    host: str
    port: int
    service: str | None = None
    product: str | None = None
    version: str | None = None
    tunnel: str | None = None

    @property
    def key(self) -> str:
        """The ``net.service`` resource key a scan gives this listener."""
        return f"tcp://{format_host(self.host)}:{self.port}"


# --- servers ----------------------------------------------------------------------------


@contextmanager
def _serving(
    handler: type[socketserver.BaseRequestHandler],
    host: str,
    settings: Mapping[str, Any] | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> Iterator[int]:
    """Run ``handler`` on ``host`` and an ephemeral port; yield the port; stop it."""
    with HandlerServer(handler, host, settings, tls_context) as server:
        yield server.port


class _BannerHandler(socketserver.BaseRequestHandler):
    """Sends a fixed greeting, then waits for the client to hang up."""

    def handle(self) -> None:
        settings = self.server.settings  # type: ignore[attr-defined]
        self.request.sendall(settings["banner"])
        _drain(self.request, settings.get("hold", HOLD_S))


class _SilentHandler(socketserver.BaseRequestHandler):
    """Accepts and never says a word (the slowest case for service detection)."""

    def handle(self) -> None:
        _drain(self.request, self.server.settings.get("hold", HOLD_S))  # type: ignore[attr-defined]


def _drain(sock: socket.socket, hold: float = HOLD_S) -> None:
    sock.settimeout(hold)
    try:
        while sock.recv(4096):
            pass
    except OSError:
        pass


class _HTTPHandler(BaseHTTPRequestHandler):
    """A fixed page for every GET; nothing is served from disk."""

    server_version = "SimpleHTTP/0.6"
    protocol_version = "HTTP/1.0"
    timeout = HOLD_S

    def do_GET(self) -> None:
        body = b"<html><head><title>Rempart lab</title></head><body>lab</body></html>\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: scanners make a lot of requests."""


class _RedisHandler(socketserver.StreamRequestHandler):
    """Inline Redis commands: PING, INFO, GET (and errors for the rest)."""

    timeout = HOLD_S

    def handle(self) -> None:
        try:
            for line in self.rfile:
                reply = _redis_reply(line.decode("latin-1").split())
                if reply:
                    self.wfile.write(reply)
        except OSError:
            pass


def _redis_reply(words: list[str]) -> bytes:
    """Redis's answer to an inline command (empty lines get no answer)."""
    if not words:
        return b""
    command = words[0].lower()
    if command == "ping":
        return b"+PONG\r\n"
    if command == "info":
        body = b"# Server\r\nredis_version:3.2.12\r\n"
        return b"$%d\r\n%s\r\n" % (len(body), body)
    if command == "get" and len(words) != 2:
        return b"-ERR wrong number of arguments for 'get' command\r\n"
    if command == "get":
        return b"$-1\r\n"
    return b"-ERR unknown command '%s'\r\n" % words[0][:32].encode("latin-1")


def mysql_greeting(version: str = MYSQL_VERSION) -> bytes:
    """A MySQL protocol-10 handshake packet, as a server sends on connect."""
    payload = (
        b"\x0a"
        + version.encode()
        + b"\x00"
        + struct.pack("<I", 42)
        + b"abcdefgh\x00"
        + struct.pack("<HBHH", 0xF7FF, 0x21, 0x0002, 0x800F)
        + b"\x15"
        + b"\x00" * 10
        + b"ijklmnopqrst\x00"
        + b"mysql_native_password\x00"
    )
    return struct.pack("<I", len(payload))[:3] + b"\x00" + payload


# --- listeners --------------------------------------------------------------------------


@contextmanager
def http_server(host: str = "127.0.0.1") -> Iterator[Listener]:
    """A plain HTTP server."""
    with _serving(_HTTPHandler, host) as port:
        yield Listener("http", host, port, "http", "SimpleHTTPServer", "0.6")


@contextmanager
def ssh_banner_server(
    host: str = "127.0.0.1", banner: bytes = OLD_OPENSSH_BANNER
) -> Iterator[Listener]:
    """A fake SSH server announcing an old OpenSSH (5.3 by default); no key exchange."""
    version = banner.decode("latin-1").strip().rpartition("OpenSSH_")[2] or None
    with _serving(_BannerHandler, host, {"banner": banner}) as port:
        yield Listener("ssh", host, port, "ssh", "OpenSSH", version)


@contextmanager
def mysql_server(host: str = "127.0.0.1", version: str = MYSQL_VERSION) -> Iterator[Listener]:
    """A fake MySQL server: sends the greeting and nothing else."""
    with _serving(_BannerHandler, host, {"banner": mysql_greeting(version)}) as port:
        yield Listener("mysql", host, port, "mysql", "MySQL", version)


@contextmanager
def redis_server(host: str = "127.0.0.1") -> Iterator[Listener]:
    """A fake Redis answering inline commands (nmap spots it from its GET reply)."""
    with _serving(_RedisHandler, host) as port:
        yield Listener("redis", host, port, "redis", "Redis key-value store", None)


@contextmanager
def telnet_server(host: str = "127.0.0.1") -> Iterator[Listener]:
    """A fake telnet server: the option negotiation Linux telnetd opens with."""
    with _serving(_BannerHandler, host, {"banner": TELNET_NEGOTIATION}) as port:
        yield Listener("telnet", host, port, "telnet", "Linux telnetd", None)


@contextmanager
def tls_server(host: str = "127.0.0.1") -> Iterator[Listener]:
    """HTTP inside TLS, with a throw-away self-signed certificate for ``localhost``."""
    with tempfile.TemporaryDirectory(prefix="rempart-lab-") as directory:
        context = _tls_context(Path(directory), host)
        with _serving(_HTTPHandler, host, tls_context=context) as port:
            yield Listener("tls", host, port, "http", "SimpleHTTPServer", "0.6", "ssl")


@contextmanager
def silent_server(host: str = "127.0.0.1", hold: float = 60.0) -> Iterator[Listener]:
    """Accepts connections and never answers (holds each one ``hold`` seconds)."""
    with _serving(_SilentHandler, host, {"hold": hold}) as port:
        yield Listener("silent", host, port)


@contextmanager
def closed_port(host: str = "127.0.0.1") -> Iterator[Listener]:
    """A port number held bound but not listening: connections are refused."""
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        yield Listener("closed", host, int(sock.getsockname()[1]))


@contextmanager
def filtered_port(host: str = "127.0.0.1", fill: int = 3) -> Iterator[Listener]:
    """A port that never replies: its accept queue is full, so the kernel drops SYNs.

    On loopback nothing else looks like a firewalled port; a scan sees it ``filtered``.
    """
    family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    with ExitStack() as stack:
        server = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
        server.bind((host, 0))
        server.listen(0)
        address = server.getsockname()[:2]
        for _ in range(fill):
            client = stack.enter_context(socket.socket(family, socket.SOCK_STREAM))
            client.setblocking(False)
            client.connect_ex(address)
        time.sleep(0.2)
        yield Listener("filtered", host, int(address[1]))


def _tls_context(directory: Path, host: str) -> ssl.SSLContext:
    """A server context with a fresh EC P-256 self-signed certificate (``cert.pem`` and
    ``key.pem`` in ``directory``, which the FTPS server loads too)."""
    cert, key = self_signed(("localhost", host), days_valid=(-1, 2))
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(pem(cert))
    key_path.write_bytes(key_pem(key))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


@contextmanager
def ftp_server(host: str = "127.0.0.1", tls: bool = False) -> Iterator[Listener]:
    """A real FTP server (pyftpdlib, anonymous read-only on an empty directory).

    With ``tls`` it offers explicit TLS (``AUTH TLS``) with a throw-away certificate.
    """
    from pyftpdlib.authorizers import DummyAuthorizer
    from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
    from pyftpdlib.ioloop import IOLoop
    from pyftpdlib.servers import FTPServer

    _quiet_pyftpdlib()
    with tempfile.TemporaryDirectory(prefix="rempart-ftp-") as directory:
        root = Path(directory)
        authorizer = DummyAuthorizer()
        authorizer.add_anonymous(str(root))
        base = TLS_FTPHandler if tls else FTPHandler
        attributes: dict[str, Any] = {"authorizer": authorizer, "timeout": HOLD_S}
        if tls:
            _tls_context(root, host)
            attributes |= {"certfile": str(root / "cert.pem"), "keyfile": str(root / "key.pem")}
        handler = type("LabFTPHandler", (base,), attributes)
        server = FTPServer((host, 0), handler, ioloop=IOLoop())  # its own loop: no sharing
        port = int(server.address[1])
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"timeout": 0.1, "handle_exit": False},
            name="lab-ftp",
            daemon=True,
        )
        thread.start()
        try:
            yield Listener("ftps" if tls else "ftp", host, port, "ftp", "pyftpdlib", FTP_VERSION)
        finally:
            server.close_all()
            thread.join(timeout=5)


def _quiet_pyftpdlib() -> None:
    """Keep pyftpdlib from configuring logging itself (a line per connection on stderr,
    and process-wide logging flags changed) by giving its logger a handler first."""
    log = logging.getLogger("pyftpdlib")
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    log.setLevel(logging.WARNING)


@contextmanager
def mute_ftp_server(host: str = "127.0.0.1", hold: float = 30.0) -> Iterator[Listener]:
    """Greets as an FTP server, then never answers a command (holds the line ``hold`` s).

    nmap 7.93 takes the greeting for ProFTPD (a soft match on "FTP server ready").
    """
    settings = {"banner": MUTE_FTP_GREETING, "hold": hold}
    with _serving(_BannerHandler, host, settings) as port:
        yield Listener("mute_ftp", host, port, "ftp", "ProFTPD")


# --- the whole lab ----------------------------------------------------------------------

LISTENERS: Mapping[str, Callable[[str], Any]] = {
    "http": http_server,
    "ssh": ssh_banner_server,
    "mysql": mysql_server,
    "redis": redis_server,
    "tls": tls_server,
    "telnet": telnet_server,
}


@dataclass(frozen=True)
class Lab:
    """Running listeners by name, plus a closed port, on one loopback address."""

    host: str
    listeners: Mapping[str, Listener]
    closed: Listener

    def ports(self) -> list[int]:
        """Every port of the lab, the closed one included, sorted."""
        return sorted([*(item.port for item in self.listeners.values()), self.closed.port])

    def uri(self, **params: str) -> str:
        """A ``ports://`` URI scanning exactly the lab's ports."""
        query = "&".join(
            [f"ports={','.join(map(str, self.ports()))}", *(f"{k}={v}" for k, v in params.items())]
        )
        return f"ports://{format_host(self.host)}?{query}"


@contextmanager
def exposure_lab(
    host: str = "127.0.0.1", names: tuple[str, ...] = tuple(LISTENERS)
) -> Iterator[Lab]:
    """Start the named listeners (all by default) and a closed port; stop them on exit."""
    with ExitStack() as stack:
        listeners = {name: stack.enter_context(LISTENERS[name](host)) for name in names}
        closed = stack.enter_context(closed_port(host))
        yield Lab(host, listeners, closed)


# --- the demo ---------------------------------------------------------------------------

DEMO_LISTENERS = ("http", "ssh", "mysql", "redis")


def demo_part(ctx: DemoContext) -> DemoPart:
    """The exposure part of ``rempart demo``: services nmap recognises, of which only 443
    is allowed, and the demo accepts one exposed service, as a committee would."""
    from audit.labkit.demo import PORTAL

    part = DemoPart(
        order=20,
        policies=("exposure-baseline",),
        params={"exposure-baseline": {"allowed_ports": [443]}},
        networks=("127.0.0.0/8",),
        accept="net.service",
    )
    if shutil.which("nmap") is None:
        part.notes.append(
            "nmap is not installed: the exposure part was skipped (apt-get install nmap)"
        )
        return part
    lab = ctx.stack.enter_context(exposure_lab("127.0.0.1", DEMO_LISTENERS))
    part.add(PORTAL, lab.uri(sv="1"))
    return part
