"""The mail lab: mail domains on the dns family's NSD lab, an MTA-STS policy host (nginx,
lab PKI) and STARTTLS MX hosts, all on loopback.

Domains (under the lab's ``test.``, signed unless said otherwise):

- ``mailgood.test``: everything right: MX on a STARTTLS server with a lab certificate and a
  DANE-EE TLSA record of its key, ``-all`` SPF through an include, DMARC ``p=reject``
  reporting to an external domain that authorises it (``reports.test``), a 2048-bit DKIM
  key, MTA-STS ``enforce`` covering the MX, TLS-RPT;
- ``mailflawed.test`` (unsigned): ``?all`` SPF over 11 lookups with void ones, DMARC
  ``p=none`` reporting to a domain that did not authorise it, a 1024-bit DKIM key,
  MTA-STS ``testing`` whose ``mx:`` does not cover the MX, no TLS-RPT;
- ``nomail.test``: a domain that sends and receives nothing, done right (null MX,
  ``v=spf1 -all``, ``p=reject``); ``nomailbad.test``: the same without any of it;
- ``mailnodane.test``: a signed zone whose MX publishes no TLSA record;
- ``mailtwin.test``: another domain served by ``mailgood.test``'s MX;
- ``mailout.test``: its MX ``mx.elsewhere.test`` resolves (in the lab) to
  :data:`OUTSIDE`, which a test scope leaves out: the listener there must see nothing;
- ``mxgone.test``: its MX names a host with no address: nothing is probed.

Nothing here is imported by a scan.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.labkit import DemoContext, DemoPart, Issued, Pki, closed_port, rsa_key

OUTSIDE = "127.0.0.2"
"""Where the out-of-scope MX resolves in the lab."""
SELECTOR = "s2025"
DOMAINS = (
    "mailgood.test",
    "mailflawed.test",
    "mailnodane.test",
    "mailtwin.test",
    "nomail.test",
    "nomailbad.test",
    "mailout.test",
    "mxgone.test",
)

GOOD_POLICY = "version: STSv1\nmode: enforce\nmx: mx.mailgood.test\nmax_age: 604800\n"
FLAWED_POLICY = "version: STSv1\nmode: testing\nmx: mail.example.net\nmax_age: 86400\n"


def txt(owner: str, text: str) -> str:
    """A TXT line whose text is split in strings of at most 255 bytes (RFC 1035 §3.3)."""
    chunks = [text[i : i + 255] for i in range(0, len(text), 255)] or [""]
    return f"{owner} IN TXT " + " ".join('"' + c.replace('"', '\\"') + '"' for c in chunks)


def dkim_record(bits: int) -> str:
    """A ``v=DKIM1`` record of a fresh RSA key of ``bits``."""
    from cryptography.hazmat.primitives import serialization

    key = rsa_key(bits).public_key()
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "v=DKIM1; k=rsa; p=" + base64.b64encode(der).decode()


def tlsa_of(issued: Issued) -> str:
    """``3 1 1`` (DANE-EE, SPKI, SHA-256) of a certificate's key (RFC 7672 §3.1.1)."""
    from cryptography.hazmat.primitives import serialization

    spki = issued.cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return "3 1 1 " + hashlib.sha256(spki).hexdigest()


def zone_records(good_mx: Issued) -> dict[str, list[str]]:
    """The zone-file lines of every lab mail domain (relative to each domain)."""
    flawed_spf = "v=spf1 a mx ptr " + " ".join(f"include:i{n}.mailflawed.test" for n in range(7))
    flawed = [
        "@ IN MX 10 mx.mailflawed.test.",
        "mx IN A 127.0.0.1",
        "mta-sts IN A 127.0.0.1",
        txt("@", flawed_spf + " ?all"),
        txt("_dmarc", "v=DMARC1; p=none; rua=mailto:dmarc@collector.test"),
        txt(f"{SELECTOR}._domainkey", dkim_record(1024)),
        txt("_mta-sts", "v=STSv1; id=2024flawed"),
    ]
    flawed += [txt(f"i{n}", f"v=spf1 a:gone{n}.mailflawed.test ~all") for n in range(7)]
    return {
        "mailgood.test": [
            "@ IN MX 10 mx.mailgood.test.",
            "mx IN A 127.0.0.1",
            f"_25._tcp.mx IN TLSA {tlsa_of(good_mx)}",
            "mta-sts IN A 127.0.0.1",
            txt("@", "v=spf1 mx include:_spf.mailgood.test -all"),
            txt("_spf", "v=spf1 ip4:127.0.0.0/8 ~all"),
            txt(
                "_dmarc",
                "v=DMARC1; p=reject; rua=mailto:dmarc@mailgood.test,mailto:agg@reports.test",
            ),
            txt(f"{SELECTOR}._domainkey", dkim_record(2048)),
            txt("_mta-sts", "v=STSv1; id=2025good"),
            txt("_smtp._tls", "v=TLSRPTv1; rua=mailto:tlsrpt@mailgood.test"),
        ],
        "reports.test": [txt("mailgood.test._report._dmarc", "v=DMARC1")],
        "mailtwin.test": [
            "@ IN MX 10 mx.mailgood.test.",
            txt("@", "v=spf1 mx -all"),
            txt("_dmarc", "v=DMARC1; p=reject; rua=mailto:dmarc@mailtwin.test"),
        ],
        "mailnodane.test": [
            "@ IN MX 10 mx.mailnodane.test.",
            "mx IN A 127.0.0.1",
            txt("@", "v=spf1 mx -all"),
        ],
        "mailflawed.test": flawed,
        "nomail.test": [
            "@ IN MX 0 .",
            txt("@", "v=spf1 -all"),
            txt("_dmarc", "v=DMARC1; p=reject"),
        ],
        "nomailbad.test": ["www IN A 127.0.0.1"],
        "mailout.test": [
            "@ IN MX 10 mx.elsewhere.test.",
            txt("@", "v=spf1 mx -all"),
            txt("_dmarc", "v=DMARC1; p=reject; rua=mailto:d@mailout.test"),
        ],
        "elsewhere.test": [f"mx IN A {OUTSIDE}"],
        "mxgone.test": ["@ IN MX 10 mx.mxgone.test.", txt("@", "v=spf1 -all")],
    }


INSECURE = ("mailflawed.test", "nomailbad.test", "elsewhere.test")

NGINX_CONF = """\
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    default_type text/plain;
{servers}
}}
"""
NGINX_SERVER = """\
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {name};
        ssl_certificate {chain};
        ssl_certificate_key {key};
        location = /.well-known/mta-sts.txt {{ alias {policy}; }}
        location / {{ return 404; }}
    }}
"""


@dataclass
class MtaStsHost:
    """nginx (from the distribution) serving MTA-STS policies by server name, over HTTPS
    with lab certificates: ``policies`` maps the policy host to (certificate, body).

    nginx cannot listen on port 0, so a free port is picked and nginx started again on
    another one if something took it first."""

    policies: Mapping[str, tuple[Issued, str]]
    port: int = 0
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rempart-sts-")))
    _process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MtaStsHost:
        for _ in range(3):
            self.port = closed_port()
            if self._start():
                return self
        error = (self.directory / "error.log").read_text(errors="replace")[-500:]
        self.__exit__()
        raise RuntimeError(f"nginx did not start: {error}")

    def set_policy(self, host: str, body: str) -> None:
        """Serve another policy body for ``host`` (nginx reads the file on each request)."""
        (self.directory / f"{host}.txt").write_text(body)

    def _start(self) -> bool:
        servers = []
        for host, (issued, body) in self.policies.items():
            self.set_policy(host, body)
            servers.append(
                NGINX_SERVER.format(
                    port=self.port,
                    name=host,
                    chain=issued.chain_file,
                    key=issued.key_file,
                    policy=self.directory / f"{host}.txt",
                )
            )
        conf = self.directory / "nginx.conf"
        conf.write_text(NGINX_CONF.format(dir=self.directory, servers="".join(servers)))
        binary = shutil.which("nginx") or "/usr/sbin/nginx"
        log = str(self.directory / "error.log")
        self._process = subprocess.Popen(
            [binary, "-p", f"{self.directory}/", "-c", str(conf), "-e", log],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self._wait()

    def _wait(self) -> bool:
        import socket

        assert self._process is not None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return True
            time.sleep(0.05)
        return False

    def __exit__(self, *exc: object) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def nginx_available() -> bool:
    """nginx is installed (``make sysdeps`` installs it)."""
    return shutil.which("nginx") is not None or Path("/usr/sbin/nginx").exists()


@dataclass
class MailLab:
    """Everything the mail tests scan: the DNS lab with the mail zones, the policy host,
    the two MX servers. :meth:`uri` gives a domain's target with the lab's ports;
    :attr:`options` the scan's settings (the dns lab's resolver and anchors)."""

    pki: Pki
    dns: Any
    sts: MtaStsHost
    smtp_ports: dict[str, int]

    def uri(self, domain: str, *, dkim: Sequence[str] = (SELECTOR,)) -> str:
        """``mail://DOMAIN`` with the selectors and the lab's ports (the good MX's SMTP
        port for domains whose MX is another's)."""
        port = self.smtp_ports.get(domain, self.smtp_ports["mailgood.test"])
        query = f"smtp_port={port}&mta_sts_port={self.sts.port}"
        if dkim:
            query = f"dkim={','.join(dkim)}&" + query
        return f"mail://{domain}?{query}"

    @property
    def options(self) -> dict[str, Any]:
        """The settings block a scan of the lab needs (the dns family's)."""
        return dict(self.dns.options)


@contextlib.contextmanager
def running(directory: Path, extra: Mapping[str, Sequence[str]] | None = None) -> Iterator[MailLab]:
    """Start the mail lab (needs nsd, ldnsutils and nginx); stop all of it on exit.
    ``extra``: more zone records, as the dns lab takes them."""
    from checks.dns.lab import DnsLab
    from checks.tls.lab import SmtpStartTlsServer, server_context

    pki = Pki(directory / "pki", name="Rempart Mail Lab")
    good_mx = pki.issue(("mx.mailgood.test",), key=rsa_key(2048))
    flawed_mx = pki.issue(("mx.mailflawed.test",), days_valid=(-400, -2))
    records = zone_records(good_mx)
    for name, lines in (extra or {}).items():
        records.setdefault(name, []).extend(lines)
    policies = {
        "mta-sts.mailgood.test": (pki.issue(("mta-sts.mailgood.test",)), GOOD_POLICY),
        "mta-sts.mailflawed.test": (pki.issue(("mta-sts.mailflawed.test",)), FLAWED_POLICY),
    }
    with contextlib.ExitStack() as stack:
        dns = stack.enter_context(DnsLab(records, insecure=INSECURE, directory=directory / "dns"))
        sts = stack.enter_context(MtaStsHost(policies))
        good = stack.enter_context(SmtpStartTlsServer(server_context(good_mx)))
        flawed = stack.enter_context(SmtpStartTlsServer(server_context(flawed_mx)))
        ports = {"mailgood.test": good.port, "mailflawed.test": flawed.port}
        yield MailLab(pki, dns, sts, ports)


# --------------------------------------------------------------------------- demo

DEMO_POLICIES = ("mail-auth",)


def demo_part(ctx: DemoContext) -> DemoPart:
    """The mail part of ``rempart demo``: a domain with flawed mail hygiene, its MX, its
    policy host; the fix publishes a DMARC ``p=reject`` and a strict SPF between scans.

    Needs the DNS lab's programs and nginx: without them, only the policies are given."""
    from audit.labkit.demo import BACKOFFICE

    part = DemoPart(order=40, policies=DEMO_POLICIES, domains=("mailflawed.test",))
    missing = [p for p in ("nsd", "ldns-signzone") if shutil.which(p) is None]
    if missing or not nginx_available():
        names = ", ".join(missing + ([] if nginx_available() else ["nginx"]))
        part.notes.append(f"{names} not installed: the mail domain was skipped")
        return part
    try:
        lab = ctx.stack.enter_context(running(ctx.directory))
    except (ImportError, RuntimeError) as exc:
        part.notes.append(f"the mail lab did not start ({exc}): the mail domain was skipped")
        return part
    part.add(BACKOFFICE, lab.uri("mailflawed.test"))
    part.ca_file = lab.pki.ca_file
    _with_options(part, lab.options)
    part.fix = lambda: _fix(lab)
    return part


def _with_options(part: DemoPart, options: Mapping[str, Any]) -> None:
    """The lab's resolver and anchors in the mail block (the dns family's own part keeps
    the dns block for its own lab)."""
    mail = {k: v for k, v in options["dns"].items() if k in ("resolvers", "dnssec_anchors")}
    part.options = {**part.options, "mail": mail}


def _fix(lab: MailLab) -> None:
    """Publish what the flawed domain lacked: DMARC p=reject, a strict SPF."""
    domain = lab.dns.domains["mailflawed.test"]
    domain.records[:] = [
        r for r in domain.records if not r.startswith(('@ IN TXT "v=spf1', "_dmarc IN TXT"))
    ]
    domain.records += [
        txt("@", "v=spf1 mx -all"),
        txt("_dmarc", "v=DMARC1; p=reject; rua=mailto:dmarc@mailflawed.test"),
        txt("_smtp._tls", "v=TLSRPTv1; rua=mailto:tlsrpt@mailflawed.test"),
    ]
    lab.dns.restart()
