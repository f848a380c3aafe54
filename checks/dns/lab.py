"""The DNS lab: NSD on loopback serving a signed lab root, a TLD and domains under it.

Why one NSD for everything: NSD is authoritative only, and a recursive resolver in a lab
would need the lab root as its hints, a second daemon and its own trust settings. One
NSD instance that serves the lab root ``.``, the TLD ``test.`` and every domain answers
every question a resolver would have answered, from the zone closest to the name (and
DS questions from the parent zone, RFC 4035 §3.1.4.1), so the family's client can use it
as its "resolver" while validation still walks the real chain root → ``test.`` →
domain from the lab's own anchor (:attr:`DnsLab.anchors_file`). The answers carry no AD
bit, which the family never reads anyway.

Zones are signed with ``ldns-signzone`` (keys from ``ldns-keygen``): a secure domain, an
insecure delegation (no DS in the parent), a domain whose signatures expired, an NSEC3
zone with extra iterations and a salt, a zone whose transfer is allowed and others where
it is refused. The lab listens on a high port of several loopback addresses, so the
nameservers of one domain can sit on distinct /24 networks; ``nameserver_port`` in the
family's options tells the checks to reach nameservers on that port instead of 53.

Callers (the mail family's tests) add their own records or zones:
``DnsLab(records={"mail.test": ["@ MX 10 mx.mail.test.", ...]})``; a zone named there
and not yet in the lab is created, delegated from ``test.`` and signed (unless listed in
``insecure``).

Nothing here is imported by a scan.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from audit.labkit.demo import DemoContext, DemoPart

NSD = "nsd"
ADDRESSES = ("127.0.0.1", "127.0.1.1")
"""Where the lab's NSD listens: two /24 networks of loopback, one port."""
RECURSOR_ADDRESS = "127.0.0.3"
"""Where the lab's open recursor listens (a nameserver that recurses for anyone), in the
same /24 as the first NSD address: a domain served by both has one network."""
GOOD_SOA = (7200, 3600, 1209600, 3600)
"""refresh, retry, expire, minimum: within RFC 1912 §2.2 and RFC 2308 §5."""


def free_port(addresses: Sequence[str] = ADDRESSES) -> int:
    """A port free for UDP and TCP on every address (bound then released)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((addresses[0], 0))
            port = int(probe.getsockname()[1])
        if all(_free(address, port) for address in addresses):
            return port
    raise RuntimeError("no free port on the lab addresses")


def _free(address: str, port: int) -> bool:
    for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
        with socket.socket(socket.AF_INET, kind) as probe:
            try:
                probe.bind((address, port))
            except OSError:
                return False
    return True


@dataclass
class Zone:
    """One zone NSD serves: its text, and who may transfer it."""

    name: str
    text: str
    transfer: bool = False


@dataclass
class NsdServer:
    """NSD in the foreground on loopback, serving ``zones`` from a private directory."""

    zones: Sequence[Zone]
    addresses: Sequence[str] = ADDRESSES
    port: int = 0
    start_timeout: float = 10.0
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="rempart-nsd-")))
    rate_limit: int = 0
    """Answers a second per /24 past which NSD drops them in silence (0: no limit; the
    bench's hostile case, where an answer lost must leave its fact unknown)."""
    _process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        if shutil.which(NSD) is None:
            raise RuntimeError("nsd is not installed (apt-get install nsd)")
        self.port = self.port or free_port(self.addresses)
        self._write()
        log = open(self.directory / "stdout", "wb")
        with log:
            self._process = subprocess.Popen(
                [NSD, "-d", "-c", str(self.directory / "nsd.conf")],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            self._wait()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _write(self) -> None:
        d = self.directory
        lines = [
            "server:",
            *[f"  ip-address: {a}@{self.port}" for a in self.addresses],
            f"  port: {self.port}",
            '  username: ""',
            '  chroot: ""',
            f'  zonesdir: "{d}"',
            '  database: ""',
            f'  pidfile: "{d}/nsd.pid"',
            f'  xfrdfile: "{d}/xfrd.state"',
            f'  zonelistfile: "{d}/zone.list"',
            f'  xfrdir: "{d}"',
            f'  logfile: "{d}/nsd.log"',
            "  server-count: 1",
            # Response rate limiting (on in Debian's build) drops answers past 200 a
            # second per /24: a scan of the lab's domains would see timeouts, not facts
            f"  rrl-ratelimit: {self.rate_limit}",
            *(["  rrl-slip: 0"] if self.rate_limit else []),
            "  hide-version: yes",
            "  verbosity: 1",
            "remote-control:",
            "  control-enable: no",
        ]
        for index, zone in enumerate(self.zones):
            path = d / f"zone{index}.db"
            path.write_text(zone.text)
            lines += ["zone:", f'  name: "{zone.name}"', f'  zonefile: "{path.name}"']
            if zone.transfer:
                lines += ["  provide-xfr: 0.0.0.0/0 NOKEY", "  provide-xfr: ::0/0 NOKEY"]
        (d / "nsd.conf").write_text("\n".join(lines) + "\n")

    def _wait(self) -> None:
        """Until every address answers a SOA question for the first zone over UDP."""
        import dns.message
        import dns.query

        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        first = self.zones[0].name if self.zones else "."
        pending = list(self.addresses)
        while pending and time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"nsd exited with {self._process.returncode}: {self.log()}")
            request = dns.message.make_query(first, "SOA")
            try:
                dns.query.udp(request, pending[0], timeout=0.2, port=self.port)
                pending.pop(0)
            except Exception:
                time.sleep(0.02)
        if pending:
            raise RuntimeError(f"nsd did not answer on {pending[0]}:{self.port}: {self.log()}")

    def log(self) -> str:
        """NSD's log and output so far (for failure messages)."""
        parts = [self.directory / "nsd.log", self.directory / "stdout"]
        return " | ".join(p.read_text(errors="replace")[-2000:] for p in parts if p.exists())

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


def zone_text(
    origin: str,
    records: Iterable[str],
    *,
    ns: Mapping[str, str],
    soa: tuple[int, int, int, int] = GOOD_SOA,
    ttl: int = 300,
) -> str:
    """A zone file: SOA, NS (``ns``: name -> address; an in-zone name gets its A record)
    and ``records`` (zone-file lines, relative to the origin)."""
    apex = "." if origin in {"", "."} else origin.rstrip(".") + "."
    primary = next(iter(ns))
    mailbox = "hostmaster." + ("" if apex == "." else apex)
    refresh, retry, expire, minimum = soa
    lines = [
        f"$ORIGIN {apex}",
        f"$TTL {ttl}",
        f"@ IN SOA {primary} {mailbox} 2026010101 {refresh} {retry} {expire} {minimum}",
    ]
    for name, address in ns.items():
        lines.append(f"@ IN NS {name}")
        if apex in {".", name} or name.endswith("." + apex):
            lines.append(f"{name} IN A {address}")
    lines.extend(records)
    return "\n".join(lines) + "\n"


@dataclass
class Domain:
    """A lab domain under ``test.``: how it is served and signed."""

    name: str
    records: list[str] = field(default_factory=list)
    ns: dict[str, str] = field(default_factory=dict)
    signed: bool = True
    algorithm: str = "ECDSAP256SHA256"
    ds_digest: int = 2
    nsec3: tuple[int, str] | None = None
    """(iterations, salt in hex) to sign with NSEC3; None: NSEC."""
    expired: bool = False
    wrong_ds: bool = False
    """The parent's DS names a key the zone does not publish (a botched key rollover)."""
    transfer: bool = False
    soa: tuple[int, int, int, int] = GOOD_SOA

    def __post_init__(self) -> None:
        if not self.ns:
            self.ns = {f"ns1.{self.name}.": ADDRESSES[0], f"ns2.{self.name}.": ADDRESSES[1]}


def builtin_domains() -> list[Domain]:
    """The lab's own domains, one per case the family and its policy must tell apart."""
    return [
        Domain(
            "secure.test",
            [
                '@ IN CAA 0 issue "letsencrypt.org"',
                '@ IN CAA 0 iodef "mailto:security@secure.test"',
                "www IN A 127.0.0.1",
                "host.ent IN A 127.0.0.1",
            ],
        ),
        Domain("insecure.test", ["www IN A 127.0.0.1"], signed=False),
        Domain("expired.test", ['@ IN CAA 0 issue "letsencrypt.org"'], expired=True),
        Domain("rollover.test", ['@ IN CAA 0 issue "letsencrypt.org"'], wrong_ds=True),
        Domain(
            "nsec3.test",
            ['@ IN CAA 0 issue ";"', "host.ent IN A 127.0.0.1"],
            nsec3=(10, "a1b2c3d4"),
        ),
        Domain("nsec3-bcp.test", ['@ IN CAA 0 issue ";"'], nsec3=(0, "")),
        Domain("lonely.test", ['@ IN CAA 0 issue ";"'], ns={"ns1.lonely.test.": ADDRESSES[0]}),
        Domain(
            "legacy.test", ['@ IN CAA 0 issue "letsencrypt.org"'], algorithm="RSASHA1", ds_digest=1
        ),
        Domain(
            "flawed.test",
            ["www IN A 127.0.0.1"],
            ns={"ns1.flawed.test.": ADDRESSES[0], "ns2.flawed.test.": RECURSOR_ADDRESS},
            signed=False,
            transfer=True,
            soa=(300, 600, 86400, 604800),
        ),
    ]


def _run(command: Sequence[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout


def sign(
    directory: Path,
    origin: str,
    text: str,
    *,
    algorithm: str = "ECDSAP256SHA256",
    ds_digest: int = 2,
    nsec3: tuple[int, str] | None = None,
    expired: bool = False,
    wrong_ds: bool = False,
) -> tuple[str, list[str]]:
    """Sign a zone with one key (a KSK that signs everything): the signed text and its DS
    records (zone-file lines). ``expired``: signatures valid from 2020-01-01 to 2020-02-01;
    ``wrong_ds``: the DS names another key, one the zone does not publish."""
    apex = "." if origin == "." else origin + "."
    bits = ["-b", "1024"] if algorithm.startswith("RSA") else []
    key = _run(["ldns-keygen", "-a", algorithm, *bits, "-k", apex], directory).strip()
    source = directory / f"{origin.strip('.') or 'root'}.zone"
    source.write_text(text)
    command = ["ldns-signzone", "-o", apex]
    if nsec3 is not None:
        command += ["-n", "-t", str(nsec3[0])]
        command += ["-s", nsec3[1]] if nsec3[1] else []
    if expired:
        command += ["-i", "20200101", "-e", "20200201"]
    _run([*command, str(source), key], directory)
    digest = "-1" if ds_digest == 1 else "-2"
    if wrong_ds:
        key = _run(["ldns-keygen", "-a", algorithm, *bits, "-k", apex], directory).strip()
    ds_name = _run(["ldns-key2ds", "-n", digest, f"{key}.key"], directory)
    ds = [line for line in ds_name.splitlines() if line.strip()]
    return Path(f"{source}.signed").read_text(), ds


class Recursor:
    """An open recursor on loopback (UDP): it answers anyone, with RA set, by asking the
    lab's NSD, as a nameserver that also recurses would. The recursion check needs one."""

    def __init__(
        self, upstream: tuple[str, int], host: str = RECURSOR_ADDRESS, port: int = 0
    ) -> None:
        self.upstream = upstream
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.sock.settimeout(0.1)
        self.address = (host, int(self.sock.getsockname()[1]))
        self.queries = 0
        """Questions received so far (a test proves an out-of-scope server got none)."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="lab-recursor", daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def _serve(self) -> None:
        import dns.flags
        import dns.message
        import dns.query

        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except OSError:
                continue
            self.queries += 1
            try:
                query = dns.message.from_wire(data)
                response = dns.query.udp(query, self.upstream[0], timeout=2, port=self.upstream[1])
                response.flags |= dns.flags.RA
                response.flags &= ~dns.flags.AA
                self.sock.sendto(response.to_wire(), peer)
            except Exception:  # noqa: S112 - a bad packet or a slow upstream: no answer, as on the wire
                continue

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self.sock.close()


LIVE: list[DnsLab] = []
"""The labs running in this process. The demo's parts may each start one (the mail part
does), and the demo's inventory names one resolver: a fix to a built-in domain is made
in every live lab, so it shows whichever lab the scans ask."""


class DnsLab:
    """The lab: the signed root, ``test.``, the built-in domains and the caller's.

    ``records``: domain -> zone-file lines (relative to the domain); a domain the lab
    already has gets them added, another is created under ``test.`` (signed, unless named
    in ``insecure``). ``transfer``: more domains whose AXFR is allowed. After ``with``,
    :attr:`resolver` answers every question, :attr:`anchors_file` holds the lab root's DS,
    :attr:`options` is the family's settings block for a scan of the lab.
    """

    def __init__(
        self,
        records: Mapping[str, Sequence[str]] | None = None,
        *,
        insecure: Iterable[str] = (),
        transfer: Iterable[str] = (),
        domains: Iterable[Domain] = (),
        directory: Path | None = None,
    ) -> None:
        self.directory = directory or Path(tempfile.mkdtemp(prefix="rempart-dnslab-"))
        self._owns_directory = directory is None
        self.domains = {d.name: d for d in [*builtin_domains(), *domains]}
        unsigned = {name.lower().rstrip(".") for name in insecure}
        for name, lines in (records or {}).items():
            key = name.lower().rstrip(".")
            if key not in self.domains:
                self.domains[key] = Domain(key, signed=key not in unsigned)
            self.domains[key].records.extend(lines)
        for name in transfer:
            self.domains[name.lower().rstrip(".")].transfer = True
        self.port = 0
        self.anchors_file = self.directory / "anchors.zone"
        self._nsd: NsdServer | None = None
        self._recursor: Recursor | None = None

    @property
    def recursor(self) -> Recursor | None:
        """The open recursor (``ns2.flawed.test``), while the lab runs."""
        return self._recursor

    @property
    def resolver(self) -> tuple[str, int]:
        """The address the family asks its questions (``--resolver``)."""
        return (ADDRESSES[0], self.port)

    @property
    def options(self) -> dict[str, dict[str, object]]:
        """The scan options that point the family at the lab."""
        return {
            "dns": {
                "resolvers": [f"{ADDRESSES[0]}:{self.port}"],
                "dnssec_anchors": str(self.anchors_file),
                "nameserver_port": self.port,
            }
        }

    def __enter__(self) -> Self:
        for program in (NSD, "ldns-keygen", "ldns-signzone", "ldns-key2ds"):
            if shutil.which(program) is None:
                raise RuntimeError(f"{program} is not installed (apt-get install nsd ldnsutils)")
        self.port = free_port((*ADDRESSES, RECURSOR_ADDRESS))
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _zones(self) -> list[Zone]:
        """Sign leaves first: each parent carries its children's DS."""
        keys = self.directory / "keys"
        shutil.rmtree(keys, ignore_errors=True)
        keys.mkdir(parents=True)
        zones: list[Zone] = []
        under_tld: list[str] = []
        under_root: list[str] = []
        for domain in self.domains.values():
            parent = under_tld if domain.name.endswith(".test") else under_root
            text = zone_text(domain.name, domain.records, ns=domain.ns, soa=domain.soa)
            for ns_name, address in domain.ns.items():
                parent.append(f"{domain.name}. IN NS {ns_name}")
                if ns_name.endswith("." + domain.name + "."):
                    parent.append(f"{ns_name} IN A {address}")
            if domain.signed:
                text, ds = sign(
                    keys,
                    domain.name,
                    text,
                    algorithm=domain.algorithm,
                    ds_digest=domain.ds_digest,
                    nsec3=domain.nsec3,
                    expired=domain.expired,
                    wrong_ds=domain.wrong_ds,
                )
                parent.extend(ds)
            zones.append(Zone(domain.name, text, transfer=domain.transfer))
        tld = zone_text("test", under_tld, ns={"ns.test.": ADDRESSES[0]})
        tld_signed, tld_ds = sign(keys, "test", tld)
        root = zone_text(
            ".", ["test. IN NS ns.test.", *tld_ds, *under_root], ns={"ns.test.": ADDRESSES[0]}
        )
        root_signed, root_ds = sign(keys, ".", root)
        self.anchors_file.write_text("\n".join(root_ds) + "\n")
        return [Zone(".", root_signed), Zone("test", tld_signed), *zones]

    def _start(self) -> None:
        self._nsd = NsdServer(self._zones(), port=self.port).__enter__()
        self._recursor = Recursor((ADDRESSES[0], self.port), port=self.port).__enter__()
        LIVE.append(self)

    def restart(self) -> None:
        """Serve the domains again as they now are (after a change, say the demo's fix)."""
        if self._nsd is not None:
            self._nsd.__exit__()
            self._nsd = None
        self._nsd = NsdServer(self._zones(), port=self.port).__enter__()

    def __exit__(self, *exc: object) -> None:
        if self in LIVE:
            LIVE.remove(self)
        if self._recursor is not None:
            self._recursor.__exit__()
            self._recursor = None
        if self._nsd is not None:
            self._nsd.__exit__()
            self._nsd = None
        if self._owns_directory:
            shutil.rmtree(self.directory, ignore_errors=True)


DEMO_POLICIES = ("dns-hygiene",)


def demo_part(ctx: DemoContext) -> DemoPart:
    """The DNS part of ``rempart demo``: a well-kept signed domain and a neglected one
    (unsigned, transferable to anyone, no CAA, one network, a recursing nameserver, SOA
    timers out of range). The fix between the scans repairs the servers and records but
    leaves the zone unsigned, as a body often does while it plans its DNSSEC rollout, so
    the committee report shows the DNS findings resolved and the one still open."""
    from audit.labkit.demo import PORTAL, DemoPart

    part = DemoPart(order=30, policies=DEMO_POLICIES, networks=("127.0.0.0/8",), domains=("test",))
    missing = [p for p in (NSD, "ldns-keygen", "ldns-signzone") if shutil.which(p) is None]
    if missing:
        part.notes.append(f"{missing[0]} is not installed: the DNS domains were skipped")
        return part
    lab = ctx.stack.enter_context(DnsLab(directory=ctx.directory / "dns"))
    part.options = lab.options
    part.add(PORTAL, "dns://secure.test")
    part.add(PORTAL, "dns://flawed.test")

    def fix() -> None:
        for live in list(LIVE):
            flawed = live.domains["flawed.test"]
            flawed.records.append('@ IN CAA 0 issue "letsencrypt.org"')
            flawed.transfer = False
            flawed.soa = GOOD_SOA
            flawed.ns = {"ns1.flawed.test.": ADDRESSES[0], "ns2.flawed.test.": ADDRESSES[1]}
            live.restart()

    part.fix = fix
    return part
