"""Where checks run when one machine is not enough: a Dask cluster behind the Executor seam.

The engine submits one job per target to a :class:`concurrent.futures.Executor`;
``dask://HOST:PORT`` swaps its thread pool for ``distributed.Client(...).get_executor()``.
Workers only observe: a check is a pure function of its target and the
:class:`~audit.plugins.CheckContext` settings (plain, picklable data). Evaluating rules and
writing the store stay in the scanning process, so SQLite keeps a single writer.

Credentials never travel in a task: a target names at most an AWS *profile*, and each
worker resolves credentials through its own chain (environment, shared config files,
instance or pod role). Scheduling a scan on a cluster therefore grants nothing the
workers did not already hold.

``distributed`` is an optional extra (``pip install 'rempart[dask]'``) imported only here,
and only when a Dask URL is given.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlsplit

from audit.errors import DependencyError, OptionError

DEFAULT_CONNECT_TIMEOUT_S = 10.0
MAX_CONNECT_TIMEOUT_S = 3600.0
INSTALL_HINT = "pip install 'rempart[dask]'"


@dataclass(frozen=True)
class DaskAddress:
    """A validated ``dask://HOST:PORT[?timeout=S]``."""

    host: str
    port: int
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S

    @property
    def scheduler(self) -> str:
        """The address ``distributed`` understands (IPv6 literals in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


def parse_executor_url(url: str) -> DaskAddress:
    """Validate an executor URL; OptionError (one line) when it is not ``dask://HOST:PORT``."""
    try:
        split = urlsplit(url.strip())
    except ValueError as exc:
        raise OptionError(f"executor {url!r}: {exc}") from None
    if split.scheme != "dask":
        raise OptionError(f"executor {url!r}: expected 'threads' or dask://HOST:PORT")
    port = _port(url, split)
    if not split.hostname or port is None:
        raise OptionError(f"executor {url!r}: a Dask scheduler needs a host and a port")
    if split.username or split.password or split.path not in ("", "/") or split.fragment:
        raise OptionError(f"executor {url!r}: only dask://HOST:PORT[?timeout=S] is accepted")
    return DaskAddress(_host(url, split.hostname), port, _timeout(url, split.query))


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


@contextmanager
def open_executor(url: str) -> Iterator[Executor]:
    """Connect to the Dask scheduler at ``url`` and yield an Executor backed by it.

    The scheduler must answer and have at least one worker able to import rempart within
    the connect timeout; otherwise the scan stops before it starts (OptionError, exit 2).
    """
    address = parse_executor_url(url)
    distributed = _import_distributed()
    client = _connect(distributed, url, address)
    try:
        _check_workers(client, url, address.connect_timeout)
        # pure=False: every submission is its own task, so a resubmitted target (after a
        # lost worker) is run again rather than matched to the failed task's key.
        yield client.get_executor(pure=False)
    finally:
        client.close()


def _connect(distributed: Any, url: str, address: DaskAddress) -> Any:
    try:
        return distributed.Client(
            address.scheduler, timeout=address.connect_timeout, set_as_default=False
        )
    except (OSError, TimeoutError) as exc:
        raise OptionError(
            f"executor {url}: no Dask scheduler answered at {address.scheduler} "
            f"within {address.connect_timeout:g} s ({type(exc).__name__})"
        ) from None


def _check_workers(client: Any, url: str, timeout: float) -> None:
    """Refuse a cluster with no worker, or with workers that cannot run rempart's checks."""
    try:
        client.wait_for_workers(1, timeout=timeout)
    except (OSError, TimeoutError):
        raise OptionError(
            f"executor {url}: the scheduler has no worker (none joined within {timeout:g} s)"
        ) from None
    from audit import __version__

    for worker, version in client.run(worker_version, on_error="return").items():
        if isinstance(version, BaseException):
            raise OptionError(
                f"executor {url}: worker {worker} cannot run rempart checks "
                f"({type(version).__name__}: {version}); install rempart on the workers"
            )
        if version != __version__:
            raise OptionError(
                f"executor {url}: worker {worker} runs rempart {version}, this is {__version__}"
            )


def worker_version() -> str:
    """Run on each worker: the rempart version it imports (checks must match ours)."""
    from audit import __version__

    return __version__
