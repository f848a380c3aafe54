"""Where checks run when one machine is not enough: a Dask cluster behind the Executor seam.

The engine submits one job per target to a :class:`concurrent.futures.Executor`;
``dask+tls://HOST:PORT`` (or ``dask://`` on loopback) swaps its thread pool for a
:class:`DaskExecutor` on a ``distributed.Client``. Workers only observe: a check is a
pure function of its target and the :class:`~audit.plugins.CheckContext` settings.
Evaluating rules and writing the store stay in the scanning process, so SQLite keeps a
single writer.

Trust runs both ways, and not evenly. The scheduler and workers run the code we send
them (pickled tasks). What they send back is narrowed here: a job's result is JSON
bytes (:mod:`audit.scale.wire`), the client accepts only msgpack from the cluster (no pickle,
no Dask type headers), the error of a failed task is never unpickled (the task counts
as lost), and the engine vets each observation against its target
(:mod:`audit.scale.vetting`). Distributed's own control stream from the scheduler still
unpickles some messages, so a rogue scheduler, or a worker that forges the protocol,
can still run code here: docs/scaling.md says how to deploy so that is acceptable.

Credentials never travel in a task: a target names at most an AWS *profile*, and each
worker resolves credentials through its own chain.

``distributed`` is an optional extra (``pip install 'rempart[dask]'``) imported only here,
and only when a Dask URL is given.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, InvalidStateError, ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from audit.errors import DependencyError, OptionError
from audit.models import Observation, Problem, Reason
from audit.scale.wire import decode_observation, encode_observation

DEFAULT_CONNECT_TIMEOUT_S = 10.0
MAX_CONNECT_TIMEOUT_S = 3600.0
INSTALL_HINT = "pip install 'rempart[dask]'"
SCHEMES = {"dask": "tcp", "dask+tls": "tls"}
SAFE_DESERIALIZERS = ("msgpack", "error")
"""What the client decodes from the cluster: msgpack (plain data) and Dask's "could not
serialize" marker. Not ``pickle``, and not ``dask``, whose header carries a pickled type."""
FETCH_THREADS = 8
"""Threads that gather finished results; concurrent gathers share one round trip."""
VERSION = re.compile(r"[\w.+!-]{1,64}")


@dataclass(frozen=True)
class DaskAddress:
    """A validated ``dask://HOST:PORT`` or ``dask+tls://HOST:PORT`` (``?timeout=S``)."""

    host: str
    port: int
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S
    tls: bool = False

    @property
    def scheduler(self) -> str:
        """The address ``distributed`` understands (IPv6 literals in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'tls' if self.tls else 'tcp'}://{host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """True for a loopback address or ``localhost``: plain TCP never leaves the host."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


@dataclass(frozen=True)
class ExecutorTrust:
    """How the scanning host and the scheduler authenticate each other (mutual TLS).

    ``insecure`` allows plain TCP to a non-loopback scheduler: anyone on the path can
    then read every target and answer for the cluster.
    """

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure: bool = False

    @property
    def has_files(self) -> bool:
        """True when any TLS file was given."""
        return any((self.ca_file, self.cert_file, self.key_file))


def parse_executor_url(url: str) -> DaskAddress:
    """Validate an executor URL; OptionError (one line) when it is not a Dask scheduler URL."""
    try:
        split = urlsplit(url.strip())
    except ValueError as exc:
        raise OptionError(f"executor {url!r}: {exc}") from None
    if split.scheme not in SCHEMES:
        raise OptionError(
            f"executor {url!r}: expected 'threads', 'processes[:N]', dask+tls://HOST:PORT or "
            "dask://HOST:PORT"
        )
    port = _port(url, split)
    if not split.hostname or port is None:
        raise OptionError(f"executor {url!r}: a Dask scheduler needs a host and a port")
    if split.username or split.password or split.path not in ("", "/") or split.fragment:
        raise OptionError(f"executor {url!r}: only {split.scheme}://HOST:PORT[?timeout=S]")
    host = _host(url, split.hostname)
    return DaskAddress(host, port, _timeout(url, split.query), SCHEMES[split.scheme] == "tls")


def check_trust(url: str, address: DaskAddress, trust: ExecutorTrust) -> None:
    """Refuse, before any packet, a connection that would not authenticate the cluster."""
    if address.tls:
        _check_tls_files(url, trust)
    elif trust.has_files:
        raise OptionError(
            f"executor {url}: --executor-ca/--executor-cert/--executor-key need dask+tls://"
        )
    elif not address.is_loopback and not trust.insecure:
        raise OptionError(
            f"executor {url}: plain TCP to {address.host} is neither encrypted nor "
            "authenticated; use dask+tls:// with --executor-ca/--executor-cert/"
            "--executor-key, or --executor-insecure"
        )


def _check_tls_files(url: str, trust: ExecutorTrust) -> None:
    files = {
        "--executor-ca": trust.ca_file,
        "--executor-cert": trust.cert_file,
        "--executor-key": trust.key_file,
    }
    missing = [option for option, path in files.items() if not path]
    if missing:
        raise OptionError(
            f"executor {url}: a TLS scheduler needs {', '.join(missing)} "
            "(the cluster's CA, and this host's certificate and key)"
        )
    for option, path in files.items():
        if path and not Path(path).is_file():
            raise OptionError(f"executor {url}: {option} {path!r} is not a file")


def _port(url: str, split: SplitResult) -> int | None:
    try:
        port = split.port
    except ValueError:
        port = 0
    if port == 0:
        raise OptionError(f"executor {url!r}: the port must be a number from 1 to 65535")
    return port


def _host(url: str, host: str) -> str:
    from audit.uri import is_hostname

    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        if is_hostname(host):
            return host.lower()
    raise OptionError(f"executor {url!r}: {host!r} is not a host name or an address")


def _timeout(url: str, query: str) -> float:
    params = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(params) - {"timeout"})
    if unknown:
        raise OptionError(f"executor {url!r}: unknown parameter {unknown[0]!r}")
    raw = params.get("timeout")
    if raw is None:
        return DEFAULT_CONNECT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not 0 < value <= MAX_CONNECT_TIMEOUT_S:
        raise OptionError(f"executor {url!r}: timeout must be seconds, above 0, at most 3600")
    return value


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise DependencyError(
            f"the Dask executor needs the 'distributed' package: {INSTALL_HINT}"
        ) from None
    return distributed


def _one_line(exc: BaseException) -> str:
    """An exception from distributed as a short single line (its messages span many)."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0][:200]}" if text else type(exc).__name__


# --- the executor ----------------------------------------------------------------------


class WorkerTaskError(Exception):
    """A task failed on the cluster: its worker died, or refused or broke the job.

    Jobs never raise on an honest worker (checks return problems as data), so the
    error Dask reports is not read: it travels pickled, and unpickling it would run
    whatever the worker chose. The engine treats the target as lost (retried once).
    """


class ResultRefused(Exception):
    """A worker's answer that is not plain data in our JSON form (a pickle, say)."""


class DaskExecutor(Executor):
    """An Executor whose jobs run on a Dask cluster and come back as vetted plain data.

    ``submit`` takes the engine's observation jobs: the worker runs
    ``fn(*args)`` and returns its observation as JSON bytes, decoded here.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._fetchers = ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="dask-fetch")
        self._remote: dict[Future[Any], Any] = {}
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run an observation job ``fn(*args)`` on the cluster."""
        if kwargs:
            raise TypeError("jobs on the cluster take positional arguments only")
        return self._submit(run_job, (fn, *args), decode_observation)

    def probe(self, worker: str) -> Future[str]:
        """Ask one worker which rempart it runs."""
        return self._submit(worker_version, (), decode_version, workers=[worker])

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Cancel what is still running on the cluster and stop gathering."""
        with self._lock:
            remote = list(self._remote.values())
            self._remote.clear()
        for task in remote:
            with suppress(Exception):
                task.cancel()
        self._fetchers.shutdown(wait=wait, cancel_futures=True)

    def _submit(
        self,
        job: Callable[..., bytes],
        args: tuple[Any, ...],
        decode: Callable[[object], Any],
        workers: list[str] | None = None,
    ) -> Future[Any]:
        local: Future[Any] = Future()
        remote = self._client.submit(job, *args, pure=False, workers=workers)
        with self._lock:
            self._remote[local] = remote
        local.add_done_callback(self._forget)
        remote.add_done_callback(lambda task: self._settle(task, local, decode))
        return local

    def _settle(self, remote: Any, local: Future[Any], decode: Callable[[object], Any]) -> None:
        """On Dask's callback thread: fetch a result, never read a failed task's error."""
        if remote.status == "finished":
            with suppress(RuntimeError):  # shut down: the scan is over
                self._fetchers.submit(self._fetch, remote, local, decode)
            return
        if remote.status == "cancelled":
            local.cancel()
            return
        _settle_error(local, WorkerTaskError(f"the task {remote.status} on the cluster"))

    def _fetch(self, remote: Any, local: Future[Any], decode: Callable[[object], Any]) -> None:
        try:
            values = self._client.gather([remote], errors="skip")
        except Exception as exc:
            _settle_error(
                local, ResultRefused(f"the worker's result was refused: {_one_line(exc)}")
            )
            return
        if not values:
            _settle_error(local, WorkerTaskError("the task failed on the cluster"))
            return
        try:
            result = decode(values[0])
        except ValueError as exc:
            _settle_error(local, ResultRefused(f"the worker's result was refused: {exc}"))
            return
        with suppress(InvalidStateError):
            local.set_result(result)

    def _forget(self, local: Future[Any]) -> None:
        with self._lock:
            remote = self._remote.pop(local, None)
        if remote is not None and local.cancelled():
            with suppress(Exception):
                remote.cancel()


def _settle_error(local: Future[Any], exc: Exception) -> None:
    with suppress(InvalidStateError):
        local.set_exception(exc)


def run_job(fn: Callable[..., Observation], *args: Any) -> bytes:
    """Run on a worker: the job's observation as JSON bytes, never a Python object."""
    observation = fn(*args)
    try:
        return encode_observation(observation)
    except (TypeError, ValueError) as exc:
        problem = Problem(Reason.BUG, f"the check returned facts that are not JSON: {exc}"[:500])
        return encode_observation(Observation(observation.target, problems=(problem,)))


def worker_version() -> bytes:
    """Run on each worker: the rempart version it imports (checks must match ours)."""
    from audit import __version__

    return __version__.encode()


def decode_version(payload: object) -> str:
    """A worker's version answer, as plain text of a version's shape."""
    if not isinstance(payload, bytes):
        raise ValueError(f"expected bytes, got {type(payload).__name__}")
    text = payload.decode("ascii", errors="replace")
    if not VERSION.fullmatch(text):
        raise ValueError(f"{text[:64]!r} is not a version")
    return text


# --- connecting --------------------------------------------------------------------------


@contextmanager
def open_executor(url: str, trust: ExecutorTrust | None = None) -> Iterator[Executor]:
    """Connect to the Dask scheduler at ``url`` and yield an Executor backed by it.

    The connection must authenticate (TLS, or plain TCP on loopback or when insecure is
    allowed); the scheduler must answer and have at least one worker running this
    version of rempart within the connect timeout; otherwise OptionError (exit 2).
    """
    trust = trust or ExecutorTrust()
    address = parse_executor_url(url)
    check_trust(url, address, trust)
    distributed = _import_distributed()
    client = _connect(distributed, url, address, trust)
    executor = DaskExecutor(client)
    try:
        _check_workers(client, executor, url, address.connect_timeout)
        yield executor
    finally:
        executor.shutdown(wait=False)
        with suppress(Exception):
            client.close()


def _security(distributed: Any, url: str, address: DaskAddress, trust: ExecutorTrust) -> Any:
    """Dask's Security: mutual TLS, encryption required, for ``dask+tls://``."""
    try:
        if not address.tls:
            return distributed.Security()
        return distributed.Security(
            tls_ca_file=trust.ca_file,
            tls_client_cert=trust.cert_file,
            tls_client_key=trust.key_file,
            require_encryption=True,
        )
    except Exception as exc:
        raise OptionError(f"executor {url}: TLS settings refused ({_one_line(exc)})") from None


def _connect(distributed: Any, url: str, address: DaskAddress, trust: ExecutorTrust) -> Any:
    """A client that decodes only plain data from the cluster; any failure is one line."""
    security = _security(distributed, url, address, trust)
    try:
        return _client_class(distributed)(
            address.scheduler,
            timeout=address.connect_timeout,
            set_as_default=False,
            security=security,
            deserializers=list(SAFE_DESERIALIZERS),
        )
    except (OSError, TimeoutError) as exc:
        raise OptionError(
            f"executor {url}: no Dask scheduler answered at {address.scheduler} "
            f"within {address.connect_timeout:g} s ({_one_line(exc)})"
        ) from None
    except Exception as exc:
        raise OptionError(f"executor {url}: cannot connect ({_one_line(exc)})") from None


def _client_class(distributed: Any) -> Any:
    """``distributed.Client`` that does not unpickle what workers report about tasks.

    A worker reports a finished task's result type and a failed task's exception and
    traceback as pickles, which the scheduler passes on; the stock client unpickles them
    as they arrive. A worker-chosen pickle must not run here: our results are always
    bytes, and a failed task counts as lost whatever its error says.
    """

    class PlainClient(distributed.Client):  # type: ignore[misc]
        def _handle_key_in_memory(self, key: Any = None, type: Any = None, **kw: Any) -> None:
            super()._handle_key_in_memory(key=key, type=None, **kw)

        def _handle_task_erred(self, key: Any = None, **kw: Any) -> None:
            unread = WorkerTaskError("the task failed on the cluster (its error is not read)")
            super()._handle_task_erred(key=key, exception=unread, traceback=None)

    return PlainClient


def _check_workers(client: Any, executor: DaskExecutor, url: str, timeout: float) -> None:
    """Refuse a cluster with no worker, or with workers that cannot run rempart's checks."""
    try:
        client.wait_for_workers(1, timeout=timeout)
        workers = sorted(client.scheduler_info(n_workers=-1)["workers"])
    except (OSError, TimeoutError):
        raise OptionError(
            f"executor {url}: the scheduler has no worker (none joined within {timeout:g} s)"
        ) from None
    except Exception as exc:
        raise OptionError(f"executor {url}: {_one_line(exc)}") from None
    probes = {worker: executor.probe(worker) for worker in workers}
    done, _ = wait(probes.values(), timeout=timeout)
    for worker, probe in probes.items():
        _check_probe(url, worker, probe, probe in done, timeout)


def _check_probe(url: str, worker: str, probe: Future[str], answered: bool, timeout: float) -> None:
    from audit import __version__

    if not answered:
        raise OptionError(
            f"executor {url}: worker {worker} did not say which rempart it runs "
            f"within {timeout:g} s"
        )
    error = WorkerTaskError("the probe was cancelled") if probe.cancelled() else probe.exception()
    if error is not None:
        raise OptionError(
            f"executor {url}: worker {worker} cannot run rempart checks "
            f"({type(error).__name__}: {error}); install rempart {__version__} on the workers"
        )
    if probe.result() != __version__:
        raise OptionError(
            f"executor {url}: worker {worker} runs rempart {probe.result()}, this is {__version__}"
        )
