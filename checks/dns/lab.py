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
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

NSD = "nsd"
ADDRESSES = ("127.0.0.1", "127.0.1.1", "127.0.2.1")
"""Where the lab's NSD listens: three /24 networks of loopback, one port."""
RECURSOR_ADDRESS = "127.0.3.1"
"""Where the lab's open recursor listens (a nameserver that recurses for anyone)."""


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


def zone_text(origin: str, records: Iterable[str], *, ns: Mapping[str, str], ttl: int = 300) -> str:
    """A zone file: SOA, NS (``ns``: name -> address, in-zone names get an A record) and
    ``records`` (zone-file lines, relative to the origin)."""
    apex = origin.rstrip(".") + "." if origin != "." else "."
    primary = next(iter(ns))
    mailbox = "hostmaster." + (apex if apex != "." else "")
    lines = [
        f"$ORIGIN {apex}",
        f"$TTL {ttl}",
        f"@ IN SOA {primary} {mailbox} 2026010101 7200 3600 1209600 300",
    ]
    for name, address in ns.items():
        lines.append(f"@ IN NS {name}")
        if name.endswith("." + apex) or apex == ".":
            lines.append(f"{name} IN A {address}")
    lines.extend(records)
    return "\n".join(lines) + "\n"
