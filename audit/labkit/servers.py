"""A threaded TCP server on a loopback address, the base of every lab server.

Lab servers must survive what scanners do (resets, half-open connections, garbage) and
stop at once when a test ends, whatever their clients are doing: the accept loop polls a
stop event, every connection has a daemon thread of its own, and stopping closes the
connections still open rather than waiting for them.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import threading
from collections.abc import Mapping
from typing import Any, Self

LOOPBACK = "127.0.0.1"


class ThreadedServer:
    """Accept loop in a thread; one daemon thread per connection; clean stop.

    Subclasses implement :meth:`handle`; the port is known as soon as the object exists
    (bound to port 0), the server answers once entered as a context manager.
    """

    connection_timeout: float | None = 5.0
    """Set on every accepted connection, so a silent client cannot hold a thread forever."""

    def __init__(self, host: str = LOOPBACK) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, 0))
        self._listener.listen(128)
        self._listener.settimeout(0.1)
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self.stopped = threading.Event()
        """Set when the server is asked to stop: handlers that wait poll it."""
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(
            target=self._serve, name=f"lab-{type(self).__name__}", daemon=True
        )

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self._thread.join(timeout=2)
        self._listener.close()
        for connection in list(self._connections):
            with contextlib.suppress(OSError):
                connection.close()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                connection, address = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            self._connections.append(connection)
            threading.Thread(target=self._guarded, args=(connection, address), daemon=True).start()

    def _guarded(self, connection: socket.socket, address: Any) -> None:
        connection.settimeout(self.connection_timeout)
        try:
            self.serve_connection(connection, address)
        except (OSError, ssl.SSLError, ValueError):
            pass  # scanners reset and hang up all the time: nothing worth reporting
        finally:
            with contextlib.suppress(OSError):
                connection.close()
            with contextlib.suppress(ValueError):
                self._connections.remove(connection)

    def serve_connection(self, connection: socket.socket, address: Any) -> None:
        """Serve one connection; the peer's address is there for servers that want it."""
        self.handle(connection)

    def handle(self, connection: socket.socket) -> None:
        """Serve one connection (subclasses)."""
        raise NotImplementedError


class HandlerServer(ThreadedServer):
    """Runs a :mod:`socketserver` request handler (``http.server``'s, say) per connection.

    The standard library's handlers already speak HTTP and line protocols; this lets a
    lab reuse them on the same server base as everything else. ``settings`` is what the
    handler reads as ``self.server.settings``; with ``tls_context``, the connection is
    wrapped in TLS first, the handshake running in the connection's own thread.
    """

    connection_timeout = None

    def __init__(
        self,
        handler: type[socketserver.BaseRequestHandler],
        host: str = LOOPBACK,
        settings: Mapping[str, Any] | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(host)
        self.handler = handler
        self.settings: Mapping[str, Any] = dict(settings or {})
        self.tls_context = tls_context

    def serve_connection(self, connection: socket.socket, address: Any) -> None:
        if self.tls_context is not None:
            connection = self.tls_context.wrap_socket(
                connection, server_side=True, do_handshake_on_connect=False
            )
        try:
            self.handler(connection, address, self)  # type: ignore[arg-type]
        except Exception:  # a handler's failure ends its connection, not the lab
            return
        finally:
            connection.close()  # the TLS wrapper owns the descriptor once it exists


def closed_port(host: str = LOOPBACK) -> int:
    """A loopback port with nothing listening (bound then released)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
    return port
