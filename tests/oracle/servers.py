"""The TLS configurations the oracle layer scans, and an nginx server to serve some of them.

Each :class:`TlsConfig` names a real server set up one way (protocol range, cipher string,
key, chain, validity, names). The point is breadth with few ports: every configuration is
started alone, observed by Rempart and by the independent tools, then stopped, so the
whole layer never holds more than one server port at a time.

nginx comes from the distribution (``apt-get install nginx``): it is the server most of
the audited estate runs, and its TLS settings (``ssl_protocols``, ``ssl_ciphers``,
``ssl_conf_command``) are applied by nginx itself rather than by our lab code.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from checks.tls import lab

LEGACY = "ALL:@SECLEVEL=0"
"""Every suite the local OpenSSL has, weak keys and SHA-1 allowed (TLS 1.0/1.1 need it)."""


@dataclass(frozen=True)
class Leaf:
    """How the served certificate is made (see :meth:`checks.tls.lab.Pki.issue`)."""

    key: str = "ec256"
    """ec256, ec384, ec521, ed25519, rsa1024, rsa2048 or rsa4096."""
    names: tuple[str, ...] = ("localhost",)
    days_valid: tuple[int, int] = (-1, 90)
    self_signed: bool = False
    send_intermediate: bool = True
    issuer: str = "intermediate"
    sha1_self_signed: bool = False
    """Made by the openssl command (cryptography refuses to sign with SHA-1)."""
    extra: str = "intermediate"
    """What follows the leaf: ``intermediate``, ``intermediate+root``, ``root+intermediate``
    (out of order)."""


@dataclass(frozen=True)
class TlsConfig:
    """One server configuration and the name a client asks it for."""

    name: str
    server: str
    """``openssl`` (s_server), ``nginx`` or ``python`` (:class:`lab.PythonTlsServer`)."""
    leaf: Leaf = field(default_factory=Leaf)
    args: tuple[str, ...] = ()
    """s_server options."""
    protocols: str = "TLSv1.2 TLSv1.3"
    """nginx ``ssl_protocols``."""
    ciphers: str = "HIGH:!aNULL"
    """nginx ``ssl_ciphers``."""
    tls13_suites: str | None = None
    """nginx ``ssl_conf_command Ciphersuites``."""
    sni: str | None = "localhost"
    """Name the clients send (None: the bare address, no SNI)."""

    def rempart_uri(self, port: int) -> str:
        """The target Rempart scans; port 80 is never looked at (``http_port=0``)."""
        if self.sni == "localhost":
            return f"tls://localhost:{port}?http_port=0"
        if self.sni is None:
            return f"tls://127.0.0.1:{port}?http_port=0"
        return f"tls://127.0.0.1:{port}?http_port=0&sni={self.sni}"


RSA = Leaf(key="rsa2048")
CONFIGS: tuple[TlsConfig, ...] = (
    TlsConfig("openssl-default-rsa", "openssl", RSA),
    TlsConfig("openssl-default-ec", "openssl"),
    TlsConfig("openssl-legacy-all", "openssl", RSA, ("-min_protocol", "TLSv1", "-cipher", LEGACY)),
    TlsConfig("openssl-tls10-only", "openssl", RSA, ("-tls1", "-cipher", LEGACY)),
    TlsConfig("openssl-tls11-only", "openssl", RSA, ("-tls1_1", "-cipher", LEGACY)),
    TlsConfig(
        "openssl-tls12-ecdsa-gcm",
        "openssl",
        Leaf(key="ec384"),
        ("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"),
    ),
    TlsConfig(
        "openssl-tls13-only-aes256",
        "openssl",
        args=("-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"),
    ),
    TlsConfig(
        "openssl-tls13-only-chacha",
        "openssl",
        RSA,
        ("-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"),
    ),
    TlsConfig(
        "openssl-tls10-12-cbc-sha1",
        "openssl",
        RSA,
        (
            *("-min_protocol", "TLSv1", "-max_protocol", "TLSv1.2"),
            *("-cipher", "ECDHE-RSA-AES128-SHA:AES256-SHA:@SECLEVEL=0"),
        ),
    ),
    TlsConfig(
        "openssl-static-rsa",
        "openssl",
        RSA,
        ("-tls1_2", "-cipher", "AES128-SHA:AES256-GCM-SHA384:AES128-SHA256"),
    ),
    TlsConfig(
        "openssl-dhe-only",
        "openssl",
        RSA,
        ("-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-CHACHA20-POLY1305"),
    ),
    TlsConfig(
        "openssl-camellia-aria",
        "openssl",
        RSA,
        ("-tls1_2", "-cipher", "CAMELLIA:ARIA:@SECLEVEL=0"),
    ),
    TlsConfig(
        "openssl-rsa1024", "openssl", Leaf(key="rsa1024"), ("-cipher", "DEFAULT:@SECLEVEL=0")
    ),
    TlsConfig("openssl-rsa4096", "openssl", Leaf(key="rsa4096")),
    TlsConfig("openssl-no-intermediate", "openssl", Leaf(send_intermediate=False)),
    TlsConfig("openssl-root-issued", "openssl", Leaf(issuer="root")),
    TlsConfig("openssl-root-sent", "openssl", Leaf(extra="intermediate+root")),
    TlsConfig("openssl-chain-out-of-order", "openssl", Leaf(extra="root+intermediate")),
    TlsConfig("openssl-ed25519", "openssl", Leaf(key="ed25519")),
    TlsConfig("openssl-p521", "openssl", Leaf(key="ec521")),
    TlsConfig("openssl-expired", "openssl", Leaf(days_valid=(-30, -1))),
    TlsConfig("openssl-not-yet-valid", "openssl", Leaf(days_valid=(3, 30))),
    TlsConfig("openssl-wrong-hostname", "openssl", Leaf(names=("www.example.test",))),
    TlsConfig("openssl-self-signed", "openssl", Leaf(self_signed=True)),
    TlsConfig(
        "openssl-sha1-self-signed",
        "openssl",
        Leaf(sha1_self_signed=True),
        ("-cipher", "DEFAULT:@SECLEVEL=0"),
    ),
    TlsConfig("openssl-ip-san", "openssl", Leaf(names=("127.0.0.1",)), sni=None),
    TlsConfig("openssl-wildcard", "openssl", Leaf(names=("*.lab.test",)), sni="www.lab.test"),
    TlsConfig(
        "openssl-wildcard-too-deep",
        "openssl",
        Leaf(names=("*.lab.test",)),
        sni="a.b.lab.test",
    ),
    TlsConfig("python-modern", "python"),
    TlsConfig(
        "nginx-modern-rsa",
        "nginx",
        RSA,
        ciphers="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-CHACHA20-POLY1305",
    ),
    TlsConfig(
        "nginx-legacy-rsa",
        "nginx",
        RSA,
        protocols="TLSv1 TLSv1.1 TLSv1.2",
        ciphers="HIGH:MEDIUM:!aNULL:@SECLEVEL=0",
    ),
    TlsConfig(
        "nginx-tls13-ec",
        "nginx",
        Leaf(key="ec384"),
        protocols="TLSv1.3",
        tls13_suites="TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256",
    ),
    TlsConfig(
        "nginx-no-intermediate",
        "nginx",
        Leaf(send_intermediate=False),
        ciphers="ECDHE-ECDSA-AES256-GCM-SHA384",
    ),
)


# --------------------------------------------------------------------------- certificates


def issue(pki: lab.Pki, leaf: Leaf, directory: Path) -> lab.Issued:
    """The certificate, key and served chain of ``leaf``."""
    if leaf.sha1_self_signed:
        return lab.openssl_self_signed(directory, leaf.names[0], "sha1")
    issued = pki.issue(
        list(leaf.names),
        key=_key(leaf.key),
        days_valid=leaf.days_valid,
        self_signed=leaf.self_signed,
        send_intermediate=leaf.send_intermediate,
        issuer=leaf.issuer,
    )
    if leaf.extra == "intermediate":
        return issued
    root = Path(pki.ca_file).read_text()
    intermediate = Path(issued.intermediates_file or "").read_text()
    sent = intermediate + root if leaf.extra == "intermediate+root" else root + intermediate
    extra = directory / "extra.pem"
    extra.write_text(sent)
    chain = directory / "chain.pem"
    chain.write_text(Path(issued.cert_file).read_text() + sent)
    return dataclasses.replace(issued, intermediates_file=str(extra), chain_file=str(chain))


def _key(kind: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519

    if kind.startswith("rsa"):
        return lab.rsa_key(int(kind[3:]))
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    curve = {"ec256": ec.SECP256R1(), "ec384": ec.SECP384R1(), "ec521": ec.SECP521R1()}[kind]
    return ec.generate_private_key(curve)


# --------------------------------------------------------------------------- servers


@contextlib.contextmanager
def serve(config: TlsConfig, issued: lab.Issued) -> Iterator[int]:
    """Run the server of ``config`` on 127.0.0.1; yield its port; stop it."""
    if config.server == "openssl":
        with lab.OpenSslServer(issued, config.args) as server:
            yield server.port
    elif config.server == "python":
        context = lab.server_context(issued)
        with lab.PythonTlsServer(context, hsts="max-age=63072000; includeSubDomains") as running:
            yield running.port
    else:
        with NginxServer(issued, config) as nginx:
            yield nginx.port


NGINX_CONF = """\
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        ssl_certificate {chain};
        ssl_certificate_key {key};
        ssl_protocols {protocols};
        ssl_ciphers {ciphers};
        ssl_prefer_server_ciphers on;
        {tls13}
        add_header Strict-Transport-Security "max-age=31536000; includeSubDomains" always;
        location / {{ return 200 "rempart oracle\\n"; }}
    }}
}}
"""


class NginxServer:
    """The distribution's nginx in the foreground, one process, all its files in a tmp dir.

    nginx cannot listen on port 0 and say which port it got, so a free port is picked by
    binding and releasing it; if another process takes it first, nginx fails to bind and
    is started again on another port.
    """

    def __init__(self, issued: lab.Issued, config: TlsConfig) -> None:
        self.issued = issued
        self.config = config
        self.port = 0
        self._dir = Path(tempfile.mkdtemp(prefix="rempart-nginx-"))
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NginxServer:
        for _ in range(3):
            self.port = lab.closed_port()
            if self._start():
                return self
        self._cleanup()
        raise RuntimeError(f"nginx did not start: {self._error_log()}")

    def __exit__(self, *exc: object) -> None:
        self._stop()
        self._cleanup()

    def _start(self) -> bool:
        conf = self._dir / "nginx.conf"
        tls13 = self.config.tls13_suites
        conf.write_text(
            NGINX_CONF.format(
                dir=self._dir,
                port=self.port,
                chain=self.issued.chain_file,
                key=self.issued.key_file,
                protocols=self.config.protocols,
                ciphers=self.config.ciphers,
                tls13=f"ssl_conf_command Ciphersuites {tls13};" if tls13 else "",
            )
        )
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        self._process = subprocess.Popen(
            [binary, "-p", f"{self._dir}/", "-c", str(conf), "-e", str(self._dir / "error.log")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection((lab.LOOPBACK, self.port), timeout=0.5),
            ):
                return True
            time.sleep(0.05)
        self._stop()
        return False

    def _stop(self) -> None:
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def _error_log(self) -> str:
        path = self._dir / "error.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else "(no error log)"

    def _cleanup(self) -> None:
        shutil.rmtree(self._dir, ignore_errors=True)


def nginx_available() -> bool:
    """Whether the distribution's nginx is installed (``make sysdeps`` installs it)."""
    return shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists()


def local_tls_versions() -> list[str]:
    """The TLS versions the local OpenSSL (through Python's ``ssl``) can speak."""
    names = {
        "TLSv1.0": ssl.TLSVersion.TLSv1,
        "TLSv1.1": ssl.TLSVersion.TLSv1_1,
        "TLSv1.2": ssl.TLSVersion.TLSv1_2,
        "TLSv1.3": ssl.TLSVersion.TLSv1_3,
    }
    return [name for name, version in names.items() if _can_speak(version)]


def _can_speak(version: ssl.TLSVersion) -> bool:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.minimum_version = version
        context.maximum_version = version
    except (ValueError, ssl.SSLError):
        return False
    return True
