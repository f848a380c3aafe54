"""Loopback servers that misbehave the way real hosts do, for the fault tests.

Each is a real TCP server on 127.0.0.1 (an ephemeral port, a thread per connection,
stopped with the ``with`` block that started it). They speak just enough TLS to get a
client past its first checks before going wrong.
"""

from __future__ import annotations

import socket
import time

from audit.labkit import ThreadedServer

ONE_MIB = 1024 * 1024


def record(content_type: int, fragment: bytes) -> bytes:
    """A TLS 1.2 record."""
    return bytes([content_type, 3, 3]) + len(fragment).to_bytes(2, "big") + fragment


def server_hello(suite: bytes = b"\xc0\x2f") -> bytes:
    """A TLS 1.2 ServerHello handshake message choosing ``suite``."""
    body = b"\x03\x03" + b"\x5a" * 32 + b"\x00" + suite + b"\x00"
    return b"\x02" + len(body).to_bytes(3, "big") + body


def read_hello(connection: socket.socket) -> bytes:
    """Wait for the client's first bytes (its ClientHello)."""
    return connection.recv(65536)


class AlertMidHandshake(ThreadedServer):
    """Starts a ServerHello, then sends a fatal handshake_failure alert."""

    def handle(self, connection: socket.socket) -> None:
        read_hello(connection)
        connection.sendall(record(22, server_hello()[:20]) + record(21, b"\x02\x28"))
        time.sleep(0.2)


class Trickle(ThreadedServer):
    """Announces a 16 KiB record, then sends it one byte a second."""

    def handle(self, connection: socket.socket) -> None:
        read_hello(connection)
        connection.sendall(b"\x16\x03\x03\x40\x00")
        for _ in range(120):
            if self.stopped.wait(1.0):
                return
            connection.sendall(b"\x0b")


class EndlessChain(ThreadedServer):
    """A ServerHello, then a Certificate message that never ends."""

    def handle(self, connection: socket.socket) -> None:
        read_hello(connection)
        connection.sendall(record(22, server_hello() + b"\x0b\xff\xff\xff"))
        chunk = record(22, b"\x30\x82\x3f\xf8" + b"\x00" * 16000)
        deadline = time.monotonic() + 60
        while not self.stopped.is_set() and time.monotonic() < deadline:
            connection.sendall(chunk)


class HugeBanner(ThreadedServer):
    """Sends a 1 MiB banner as soon as a client connects, then waits."""

    def handle(self, connection: socket.socket) -> None:
        connection.sendall(b"220 " + b"A" * ONE_MIB + b"\r\n")
        self.stopped.wait(10)


class Silent(ThreadedServer):
    """Accepts TCP and never says a word."""

    def handle(self, connection: socket.socket) -> None:
        self.stopped.wait(60)
