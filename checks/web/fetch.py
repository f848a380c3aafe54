"""One bounded HTTP client for the web family: httpx over pinned addresses.

httpx sends the requests; its connections come from :class:`PinnedBackend`, which
connects only to the addresses the scope guard pinned for a host (a host it was not
given is refused before any packet), while TLS verifies the certificate against the
host *name* (SNI and verification come from the URL, not the address) with the
system's anchors plus ``--ca-file``.

A hostile server must cost a bounded time and memory, never a hang:
- every read and write of a connection is cut at the target's deadline
  (:class:`DeadlineStream`), so a server that trickles one byte at a time ends at the
  deadline although no single read times out;
- the response head is bounded by h11 (100 KiB, httpcore's setting) and the header
  count by :data:`MAX_HEADERS`; bodies are read up to :data:`MAX_BODY` and the rest is
  never read (``truncated``), compressed bodies are inflated to the same bound;
- redirects are followed by the caller, one hop at a time, so each hop passes the scope
  guard first (:mod:`checks.web.collect`).
"""

from __future__ import annotations

import functools
import ssl
import time
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx

from checks.httpfacts import host_key

MAX_BODY = 1024 * 1024
"""Bytes of a body kept (the first HTML page, security.txt): a page larger than this is
parsed no further, and the facts read off it are unknown."""
MAX_HEADERS = 200
"""More header fields than this in one answer is hostile, not a web site."""
USER_AGENT = "rempart (web hygiene audit)"
PROBE_ORIGIN = "https://origin.rempart.invalid"
"""The ``Origin`` sent with the page request: a reserved name, so a server that
answers with it in Access-Control-Allow-Origin reflects any origin."""


class FetchError(Exception):
    """A request that got no usable answer: ``kind`` is timeout, refused, unreachable,
    certificate or protocol (an answer that broke HTTP or a bound)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Answer:
    """One HTTP response, bounded: status, raw header fields in order, body prefix."""

    url: str
    status: int
    fields: tuple[tuple[str, str], ...]
    body: bytes
    truncated: bool

    def values(self, name: str) -> list[str]:
        """Every value of a header field (names compared case-insensitively)."""
        wanted = name.lower()
        return [v for k, v in self.fields if k.lower() == wanted]

    def first(self, name: str) -> str | None:
        """The first value of a header field, or None."""
        found = self.values(name)
        return found[0] if found else None


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends by ``deadline`` (monotonic)."""

    def __init__(self, inner: httpcore.NetworkStream, deadline: float) -> None:
        self._inner = inner
        self._deadline = deadline

    def _left(self, timeout: float | None) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the target's time budget is spent")
        return left if timeout is None else min(timeout, left)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._left(timeout))
        return DeadlineStream(inner, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class PinnedBackend(httpcore.NetworkBackend):
    """Connects a host name only to the addresses pinned for it (``pins``)."""

    def __init__(self, pins: Mapping[str, tuple[str, ...]], deadline: float) -> None:
        self.pins = pins
        self.deadline = deadline
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self.pins.get(host_key(host))
        if not addresses:
            raise httpcore.ConnectError(f"{host} was not admitted by the scope guard")
        failure: Exception | None = None
        for address in addresses:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise httpcore.ConnectTimeout("the target's time budget is spent")
            try:
                stream = self._inner.connect_tcp(
                    address, port, min(timeout or left, left), socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
                continue
            return DeadlineStream(stream, self.deadline)
        raise failure or httpcore.ConnectError(f"{host}: no address to connect to")

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        raise httpcore.ConnectError("unix sockets are not targets")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class _Body(httpx.SyncByteStream):
    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _mapped():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class PinnedTransport(httpx.BaseTransport):
    """httpx's documented extension point, over an httpcore pool on :class:`PinnedBackend`."""

    def __init__(self, backend: PinnedBackend, context: ssl.SSLContext) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, network_backend=backend, max_connections=4, retries=0
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _mapped():
            answer = self._pool.handle_request(core)
        assert isinstance(answer.stream, Iterable)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class _mapped:
    """httpcore's errors as httpx's, as httpx's own transport maps them."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, _: Any
    ) -> None:
        if error is None or not isinstance(
            error, httpcore.TimeoutException | httpcore.NetworkError | httpcore.ProtocolError
        ):
            return
        if isinstance(error, httpcore.TimeoutException):
            raise httpx.TimeoutException(str(error)) from error
        if isinstance(error, httpcore.ConnectError):
            raise httpx.ConnectError(str(error)) from error
        if isinstance(error, httpcore.ProtocolError):
            raise httpx.RemoteProtocolError(str(error)) from error
        raise httpx.ReadError(str(error)) from error


@functools.lru_cache(maxsize=8)
def client_context(ca_file: str | None, verify: bool = True) -> ssl.SSLContext:
    """The system's anchors plus ``--ca-file``; or no verification, to observe a site
    whose certificate fails (the fact ``tls_verified`` says so).

    Made once per scan and shared by every target's connections (an SSLContext is safe to
    share between threads): loading the system's anchors costs about 28 ms, two thirds
    of what observing a site on loopback costs otherwise.
    """
    context = ssl.create_default_context()
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif ca_file:
        context.load_verify_locations(cafile=ca_file)
    context.set_alpn_protocols(["http/1.1"])
    return context


class Fetcher:
    """GET requests on one target's pinned connections, each answer bounded."""

    def __init__(
        self, pins: dict[str, tuple[str, ...]], deadline: float, context: ssl.SSLContext
    ) -> None:
        self.pins = pins
        self.deadline = deadline
        self._client = httpx.Client(
            transport=PinnedTransport(PinnedBackend(pins, deadline), context),
            follow_redirects=False,
            trust_env=False,
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def get(
        self, url: str, headers: Mapping[str, str] | None = None, budget: float | None = None
    ) -> Answer:
        """One GET, never followed; raises :class:`FetchError` with what went wrong."""
        return self.request("GET", url, headers, budget)

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        budget: float | None = None,
    ) -> Answer:
        """One request, never followed; raises :class:`FetchError` with what went wrong.

        ``budget`` caps how long one silent wait may last (connect, each read), so a side
        request that gets no answer (a plain-HTTP port that never speaks) leaves time for
        the next; the target's deadline bounds them all.
        """
        left = self.deadline - time.monotonic()
        if budget is not None:
            left = min(left, budget)
        if left <= 0:
            raise FetchError("timeout", "the target's time budget is spent")
        sent = {"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate", **(headers or {})}
        try:
            with self._client.stream(method, url, headers=sent, timeout=left) as response:
                return _bounded(url, response)
        except httpx.TimeoutException as error:
            raise FetchError("timeout", f"{url}: no complete answer in time ({error})") from None
        except httpx.ConnectError as error:
            raise FetchError(_connect_kind(error), f"{url}: {error}"[:300]) from None
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise FetchError("protocol", f"{url}: {error}"[:300]) from None
        finally:
            self._client.cookies.clear()  # cookie values are never kept, even in memory


def _connect_kind(error: Exception) -> str:
    text = str(error)
    if "CERTIFICATE_VERIFY_FAILED" in text or "certificate" in text.lower():
        return "certificate"
    if "refused" in text.lower():
        return "refused"
    return "unreachable"


def _bounded(url: str, response: httpx.Response) -> Answer:
    fields = tuple(
        (k.decode("latin-1"), v.decode("latin-1").strip()) for k, v in response.headers.raw
    )
    if len(fields) > MAX_HEADERS:
        raise FetchError("protocol", f"{url}: more than {MAX_HEADERS} header fields")
    body, truncated = _read(response, response.headers.get("content-encoding", ""))
    return Answer(url, response.status_code, fields, body, truncated)


def _read(response: httpx.Response, encoding: str) -> tuple[bytes, bool]:
    """The body up to :data:`MAX_BODY` (decoded from gzip or deflate within the bound)."""
    inflate = _inflater(encoding.strip().lower())
    kept = bytearray()
    for chunk in response.iter_raw(16384):
        data = inflate.decompress(chunk, MAX_BODY + 1 - len(kept)) if inflate else chunk
        kept += data
        if len(kept) > MAX_BODY or (inflate is not None and inflate.unconsumed_tail):
            return bytes(kept[:MAX_BODY]), True
    return bytes(kept), encoding.strip().lower() not in ("", "identity", "gzip", "deflate")


def _inflater(encoding: str) -> Any:
    if encoding == "gzip":
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    return None
