"""Many loopback TLS endpoints from one process: one selector accepting on N ports.

    python many_tls.py N DIRECTORY

Issues a lab certificate for ``localhost`` and 127.0.0.1 into DIRECTORY, listens on N
ephemeral ports of 127.0.0.1 with TLS 1.2 and 1.3, prints ``{"ca": PEM, "ports": [...]}``
on one line, and serves until its stdin closes. Each connection's handshake runs on a
worker thread with a blocking socket, as a TLS server library does: a hello it shares
nothing with gets OpenSSL's alert (asyncio's TLS transport hangs up without one, which a
scanner must read as "no verdict", not as the refusal it is). Once the handshake is done
the connection gets a one-line HTTP answer; a probe that stops mid-handshake is dropped.
"""

from __future__ import annotations

import contextlib
import json
import selectors
import socket
import ssl
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from checks.tls import lab

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
WORKERS = 128
"""Handshakes served at once: the scanner opens at most 8 per endpoint, 128 in all."""


def handle(connection: socket.socket, context: ssl.SSLContext) -> None:
    """One connection: the handshake (alerts included), then one HTTP answer."""
    connection.settimeout(5)
    try:
        with context.wrap_socket(connection, server_side=True) as tls:
            tls.recv(4096)
            tls.sendall(ANSWER)
    except (OSError, ssl.SSLError, ValueError):
        pass
    finally:
        with contextlib.suppress(OSError):
            connection.close()


def listen(count: int) -> list[socket.socket]:
    listeners = []
    for _ in range(count):
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        listener.setblocking(False)
        listeners.append(listener)
    return listeners


def accept_forever(
    listeners: list[socket.socket], context: ssl.SSLContext, stop: threading.Event
) -> None:
    selector = selectors.DefaultSelector()
    for listener in listeners:
        selector.register(listener, selectors.EVENT_READ)
    with ThreadPoolExecutor(WORKERS) as pool:
        while not stop.is_set():
            for key, _ in selector.select(timeout=0.2):
                with contextlib.suppress(BlockingIOError, OSError):
                    connection, _ = key.fileobj.accept()  # type: ignore[union-attr]
                    connection.setblocking(True)
                    pool.submit(handle, connection, context)


def main() -> None:
    count, directory = int(sys.argv[1]), Path(sys.argv[2])
    pki = lab.Pki(directory)
    context = lab.server_context(pki.issue(["localhost", "127.0.0.1"]))
    listeners = listen(count)
    ports = [listener.getsockname()[1] for listener in listeners]
    print(json.dumps({"ca": pki.ca_file, "ports": ports}), flush=True)
    stop = threading.Event()
    acceptor = threading.Thread(target=accept_forever, args=(listeners, context, stop))
    acceptor.start()
    sys.stdin.read()
    stop.set()
    acceptor.join(timeout=10)
    for listener in listeners:
        listener.close()


if __name__ == "__main__":
    main()
