"""Nothing is sent outside the declared scope: a listener outside it sees no connection.

The scope declares only 127.0.0.1/32. A listener on 127.0.0.2 (loopback, but outside
the scope) counts every connection it accepts while ``rempart scan`` is asked, through
each family that opens sockets, to reach it: by address, by a network that contains it,
and by a name (``localhost``) that resolves outside the scope.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import rempart

OUTSIDE = "127.0.0.2"


class CountingListener:
    """Accepts TCP connections on ``host`` and counts them (it never answers)."""

    def __init__(self, host: str) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = int(self.sock.getsockname()[1])
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


@pytest.fixture
def outside() -> Iterator[CountingListener]:
    listener = CountingListener(OUTSIDE)
    yield listener
    listener.close()


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text("scope:\n  networks: [127.0.0.1/32]\n")
    return path


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("tls://127.0.0.2:{port}", "not inside the declared scope"),
        ("smtp://127.0.0.2:{port}", "not inside the declared scope"),
        ("ports://127.0.0.2?ports={port}&sv=0", "not inside the declared scope"),
        ("ports://127.0.0.0/30?ports={port}&sv=0", "not inside the declared scope"),
    ],
)
def test_out_of_scope_address_or_network_gets_no_packet(
    tmp_path: Path, inventory: Path, outside: CountingListener, target: str, why: str
) -> None:
    # Given a scope of 127.0.0.1/32 and a listener on 127.0.0.2
    uri = target.format(port=outside.port)
    # When a scan is asked to reach it
    run = rempart("scan", uri, "-i", str(inventory), "--db", str(tmp_path / "r.db"))
    # Then it is refused before anything is sent
    assert run.code == 2 and why in run.err, run.err
    assert outside.connections == 0
    assert not (tmp_path / "r.db").exists()


def test_name_resolving_outside_the_scope_gets_no_packet(tmp_path: Path) -> None:
    # Given listeners on both loopback addresses ``localhost`` resolves to, and a scope
    # that holds neither
    listeners = [CountingListener("127.0.0.1")]
    if socket.has_ipv6:
        with contextlib.suppress(OSError):
            listeners.append(CountingListener("::1"))
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("scope:\n  networks: [127.0.0.2/32]\n  domains: [example.test]\n")
    try:
        for uri in (
            f"tls://localhost:{listeners[0].port}",
            f"ports://localhost?ports={listeners[0].port}&sv=0",
        ):
            run = rempart("scan", uri, "-i", str(inventory), "--db", str(tmp_path / "r.db"))
            # Then each is refused, naming the address that is outside
            assert run.code == 2 and "resolves outside the declared networks" in run.err
        assert [listener.connections for listener in listeners] == [0] * len(listeners)
    finally:
        for listener in listeners:
            listener.close()


def test_inventory_scope_applies_to_every_system(tmp_path: Path, outside: CountingListener) -> None:
    # Given an inventory with one target inside and one outside its scope
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "scope:\n  networks: [127.0.0.1/32]\n"
        "systems:\n"
        "  - name: inside\n    targets: ['tls://127.0.0.1:1']\n"
        f"  - name: outside\n    targets: ['tls://{OUTSIDE}:{outside.port}']\n"
    )
    # When it is scanned, then the whole scan is refused: nothing reaches either
    run = rempart("scan", "-i", str(inventory), "--db", str(tmp_path / "r.db"))
    assert run.code == 2 and OUTSIDE in run.err
    assert outside.connections == 0


def test_control_the_same_scan_inside_the_scope_does_connect(
    tmp_path: Path, inventory: Path
) -> None:
    # The listener is not deaf: inside the scope, the same kind of scan reaches it
    inside = CountingListener("127.0.0.1")
    try:
        run = rempart(
            "scan", f"tls://127.0.0.1:{inside.port}", "-i", str(inventory),
            "--db", str(tmp_path / "r.db"), "--timeout", "2", "--quiet",
        )  # fmt: skip
        assert run.code == 0, run.err
        assert inside.connections > 0
    finally:
        inside.close()
