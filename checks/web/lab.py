"""Loopback web sites for the tests, the benchmark and ``rempart demo``.

:class:`NginxLab` runs the distribution's nginx (``apt-get install nginx``) in the
foreground, one process serving every :class:`Site` on a port of its own with the lab
PKI, all its files in a private directory; nginx sends the headers, so what is tested
is what a real server sends. :class:`HostileServer` covers what nginx will not do: a
head that never ends, endless redirects, a trickle, a body without end.

Nothing here is imported by a scan; it only ever binds loopback addresses.
"""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from audit.labkit import LOOPBACK, DemoContext, DemoPart, Issued, Pki, ThreadedServer, closed_port

HARDENED_CSP = (
    "default-src 'none'; script-src 'self' https://cdn.example.org; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
HARDENED_HEADERS = (
    ("Content-Security-Policy", HARDENED_CSP),
    ("Strict-Transport-Security", "max-age=63072000; includeSubDomains; preload"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    ("Permissions-Policy", "geolocation=(), camera=()"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
    ("Cross-Origin-Resource-Policy", "same-origin"),
    ("Set-Cookie", "__Host-session=secret-value; Path=/; Secure; HttpOnly; SameSite=Strict"),
)
HARDENED_PAGE = (
    "<!doctype html><html><head><title>Portail</title>"
    '<script src="https://cdn.example.org/app.js" integrity="sha384-'
    'oqVuAfXRKap7fdgcCY5uykM6+R9GqQ8K/uxy9rx7HNQlGYl1kPzQho1wx4JwY8wC" '
    'crossorigin="anonymous"></script>'
    '<link rel="stylesheet" href="/site.css"></head><body>Bonjour</body></html>'
)
BARE_PAGE = (
    "<!doctype html><html><head>"
    '<script src="https://cdn.example.org/jquery.js?v=3"></script>'
    '<link rel="stylesheet" href="https://fonts.example.net/css">'
    '<iframe src="https://video.example.com/embed/1"></iframe>'
    "</head><body>Bonjour</body></html>"
)


def security_txt(expires: str = "2099-12-31T23:59:59Z") -> str:
    """A security.txt with a contact and ``expires``."""
    return (
        "# Politique de divulgation\n"
        "Contact: mailto:securite@example.gouv.fr\n"
        f"Expires: {expires}\n"
        "Preferred-Languages: fr, en\n"
    )


@dataclass
class Site:
    """One nginx server block: headers, page, security.txt, or a redirect."""

    name: str
    headers: Sequence[tuple[str, str]] = ()
    page: str = "<!doctype html><html><body>Bonjour</body></html>"
    security_txt: str | None = None
    redirect: str | None = None
    """``return 302 VALUE`` for every path but security.txt; ``{port[NAME]}`` is the port
    of the lab's site NAME (or of ``NginxLab.ports``), nginx variables are allowed."""
    locations: Sequence[str] = ()
    """Extra nginx ``location`` blocks, verbatim."""
    tokens: bool = False
    """nginx's ``server_tokens``: the version in ``Server``."""
    plain: bool = False
    """Plain HTTP instead of TLS."""
    port: int = 0


@dataclass
class NginxLab:
    """One nginx process serving ``sites``, each on a loopback port; ``port(name)``."""

    issued: Issued
    sites: list[Site]
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rempart-web-")))
    ports: dict[str, int] = field(default_factory=dict)
    """Other ports the sites' redirects may name (a listener outside the scope, say)."""
    _process: subprocess.Popen[bytes] | None = None

    def port(self, name: str) -> int:
        """The port a site listens on."""
        return next(site.port for site in self.sites if site.name == name)

    def __enter__(self) -> NginxLab:
        for _ in range(3):
            self._pick_ports(every=True)
            if self._start():
                return self
        log = (self.directory / "error.log").read_text(errors="replace")[-500:]
        self.__exit__()
        raise RuntimeError(f"nginx did not start: {log}")

    def __exit__(self, *exc: object) -> None:
        self._stop()
        shutil.rmtree(self.directory, ignore_errors=True)

    def _start(self) -> bool:
        conf = self.directory / "nginx.conf"
        conf.write_text(self._config())
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self._process = subprocess.Popen(
            [binary, "-p", f"{self.directory}/", "-c", str(conf), "-e", "error.log"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            if all(_listening(site.port) for site in self.sites):
                return True
            time.sleep(0.05)
        self._stop()
        return False

    def reload(self) -> None:
        """Apply changed sites: stop nginx and start it again on the same ports (a site
        added since gets a port of its own)."""
        self._stop()
        self._pick_ports(every=False)
        if not self._start():
            raise RuntimeError("nginx did not restart")

    def _pick_ports(self, every: bool) -> None:
        """A distinct free port per site (``every``: all of them, else those without one):
        the system may give a released port again, and two sites on one port would be one."""
        taken = set() if every else {site.port for site in self.sites if site.port}
        for site in self.sites:
            if site.port and not every:
                continue
            port = closed_port()
            while port in taken:
                port = closed_port()
            site.port = port
            taken.add(port)

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _config(self) -> str:
        blocks = [self._server(site) for site in self.sites]
        return (
            f"daemon off;\nmaster_process off;\npid {self.directory}/nginx.pid;\n"
            "events { worker_connections 512; }\n"
            "http {\n access_log off;\n"
            f" client_body_temp_path {self.directory};\n proxy_temp_path {self.directory};\n"
            f" fastcgi_temp_path {self.directory};\n uwsgi_temp_path {self.directory};\n"
            f" scgi_temp_path {self.directory};\n"
            " types { text/html html; text/plain txt; text/css css; }\n"
            " default_type application/octet-stream;\n" + "\n".join(blocks) + "\n}\n"
        )

    def _server(self, site: Site) -> str:
        root = self.directory / site.name
        (root / ".well-known").mkdir(parents=True, exist_ok=True)
        (root / "index.html").write_text(site.page)
        if site.security_txt is not None:
            (root / ".well-known" / "security.txt").write_text(site.security_txt)
        tls = (
            ""
            if site.plain
            else f" ssl;\n ssl_certificate {self.issued.chain_file};\n"
            f" ssl_certificate_key {self.issued.key_file}"
        )
        headers = "".join(f" add_header {n} {_quote(v)} always;\n" for n, v in site.headers)
        ports = {**self.ports, **{s.name: s.port for s in self.sites}}
        target = _ports(site.redirect, ports) if site.redirect else None
        main = f"return 302 {target};" if target else "try_files $uri $uri/ =404;"
        return (
            f"server {{\n listen {LOOPBACK}:{site.port}{tls};\n server_name localhost;\n"
            f" server_tokens {'on' if site.tokens else 'off'};\n root {root};\n"
            f" index index.html;\n{headers}"
            " location = /.well-known/security.txt { }\n"
            f" location / {{ {main} }}\n"
            + "".join(f" {_ports(x, ports)}\n" for x in site.locations)
            + "}"
        )


def _ports(text: str, ports: dict[str, int]) -> str:
    """``{port[NAME]}`` replaced by that port (nginx's own braces left alone)."""
    return re.sub(r"\{port\[([\w-]+)\]\}", lambda m: str(ports[m.group(1)]), text)


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "${dollar}") + '"'


def _listening(port: int) -> bool:
    try:
        with socket.create_connection((LOOPBACK, port), timeout=0.2):
            return True
    except OSError:
        return False


class HostileServer(ThreadedServer):
    """TLS, then one misbehaviour: ``huge_headers`` (a head that never ends),
    ``many_headers`` (thousands of short fields), ``redirects`` (each answer redirects
    to the next path, forever), ``trickle`` (one byte of head every 50 ms) or
    ``endless_body`` (a 200 whose body never ends)."""

    connection_timeout = 30.0

    def __init__(self, context: ssl.SSLContext, mode: str) -> None:
        super().__init__()
        self.context = context
        self.mode = mode
        self.sent = 0

    def handle(self, connection: socket.socket) -> None:
        with self.context.wrap_socket(connection, server_side=True) as tls:
            while True:
                request = _read_head(tls)
                if not request:
                    return
                if not self._answer(tls, request):
                    return

    def _answer(self, tls: ssl.SSLSocket, request: bytes) -> bool:
        if self.mode == "redirects":
            path = request.split(b" ", 2)[1].decode("latin-1")
            step = int(path.rsplit("/", 1)[-1]) + 1 if path.rsplit("/", 1)[-1].isdigit() else 1
            tls.sendall(
                f"HTTP/1.1 302 Found\r\nLocation: /hop/{step}\r\nContent-Length: 0\r\n\r\n".encode()
            )
            return True
        if self.mode == "trickle":
            self._forever(tls, b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 100000, 1, 0.05)
        elif self.mode == "huge_headers":
            self._forever(tls, b"HTTP/1.1 200 OK\r\n", 0, 0, b"X-Filler: " + b"b" * 8000 + b"\r\n")
        elif self.mode == "many_headers":
            fields = b"".join(b"X-%d: v\r\n" % i for i in range(5000))
            tls.sendall(b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 0\r\n\r\n")
        elif self.mode == "endless_body":
            head = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>"
            self._forever(tls, head, 0, 0, b"<p>" + b"c" * 16000 + b"</p>")
        return False

    def _forever(
        self, tls: ssl.SSLSocket, first: bytes, step: int, pause: float, repeat: bytes = b""
    ) -> None:
        """Send ``first`` (``step`` bytes at a time when set), then ``repeat`` until stopped."""
        chunks = [first[i : i + step] for i in range(0, len(first), step)] if step else [first]
        for chunk in chunks:
            if self.stopped.is_set():
                return
            tls.sendall(chunk)
            self.sent += len(chunk)
            time.sleep(pause)
        while repeat and not self.stopped.is_set():
            tls.sendall(repeat)
            self.sent += len(repeat)


def _read_head(stream: ssl.SSLSocket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 16384:
        chunk = stream.recv(4096)
        if not chunk:
            return b""
        data += chunk
    return data


def server_context(issued: Issued) -> ssl.SSLContext:
    """A TLS server context for the hostile server."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.chain_file, issued.key_file)
    return context


# --------------------------------------------------------------------------- demo


def hardened_site(name: str = "hardened") -> Site:
    """Every header the web-headers pack asks for, flagged cookies, a security.txt."""
    return Site(name, HARDENED_HEADERS, HARDENED_PAGE, security_txt())


def weak_site(name: str = "weak") -> Site:
    """What a forgotten site sends: a version, a bare cookie, CORS open with credentials,
    a third-party script without SRI, an expired security.txt."""
    headers = (
        ("Set-Cookie", "PHPSESSID=abc123; Path=/"),
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Credentials", "true"),
        ("X-Powered-By", "PHP/7.4.3"),
    )
    return Site(name, headers, BARE_PAGE, security_txt("2021-01-01T00:00:00Z"), tokens=True)


def demo_part(ctx: DemoContext) -> DemoPart:
    """The web part of ``rempart demo``: a weak site next to a hardened one (nginx);
    the fix gives the weak site the hardened one's headers."""
    from audit.labkit.demo import PORTAL

    part = DemoPart(
        order=20,
        policies=("web-headers", "security-txt"),
        networks=("127.0.0.0/8",),
        domains=("localhost",),
    )
    if not shutil.which("nginx") and not Path("/usr/sbin/nginx").exists():
        part.notes.append("nginx is not installed: the web sites were skipped")
        return part
    pki = Pki(ctx.directory / "pki", name="Rempart Démo Web")
    part.ca_file = pki.ca_file
    issued = pki.issue(("localhost", "127.0.0.1"), days_valid=(-10, 80))
    web = NginxLab(issued, [hardened_site(), weak_site()], directory=ctx.directory / "nginx")
    ctx.stack.enter_context(web)
    part.add(PORTAL, f"https://localhost:{web.port('hardened')}/")
    part.add(PORTAL, f"https://localhost:{web.port('weak')}/")

    def fix() -> None:
        weak = web.sites[1]
        weak.headers = HARDENED_HEADERS
        weak.tokens = False
        weak.page = HARDENED_PAGE
        (web.directory / weak.name / "index.html").write_text(HARDENED_PAGE)
        web.reload()

    part.fix = fix
    return part
