"""Checks in several processes of this host: ``--executor processes[:N]``.

Why: Python runs one thread at a time in a process. A scan whose checks are mostly CPU
(DNS and mail against a nearby resolver: reading answers, validating signatures, parsing
SPF) is bound by one core however many threads it has, and a Dask cluster costs more per
target than it gives back on one host (bench/RESULTS.md, dask). Here N worker processes
(default: the host's cores) each run the jobs they get on a thread pool of their own, or,
for a family that starts there (tls, dns, mail), as coroutines on their own probe loop; the
scanning process still evaluates and writes every result, so the store keeps a single
writer.

The seam is the engine's Executor, as for Dask, and the results take the same road back:
a job's observation comes back as the JSON bytes of :mod:`audit.scale.wire`, decoded and
then vetted by the engine like a cluster's (a worker parses hostile input all day; what it
sends back is not unpickled). Jobs go to the workers pickled (the parent is trusted by its
own children); a registered family goes by name and each worker loads its own. A worker is
our interpreter running this module, joined by a socket pair, not a copy of the scanning
program (see :class:`_Worker`). A worker that dies fails its jobs with
:class:`WorkerTaskError`, which the engine retries once; the next job gets a fresh worker.
Workers ignore Ctrl-C (the scanning process handles it and stops them) and end when their
socket closes, so a killed scan leaves none behind.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future, InvalidStateError, ThreadPoolExecutor
from contextlib import suppress
from functools import partial
from multiprocessing.connection import Connection
from typing import Any

from audit.errors import OptionError
from audit.models import Observation, Target
from audit.plugins import CheckContext, CheckFamily
from audit.scale.executors import ResultRefused, WorkerTaskError, run_job
from audit.scale.wire import decode_observation

SCHEME = "processes"
MAX_PROCESSES = 256
_HEADER = struct.Struct("!Q?")
"""A reply's job number and whether the job ran (False: it raised in the worker)."""
STOP = b""
"""Sent to a worker to end it (a job is never empty)."""
DEFINE, JOB = b"D", b"J"
"""A message to a worker: an object its jobs refer to by number, or a job."""
_PROTOCOL = pickle.HIGHEST_PROTOCOL
_BY_NAME = (CheckFamily, CheckContext)
"""Job arguments sent once per worker and referred to by number afterwards."""


class _JobPickler(pickle.Pickler):
    """Pickles a job, naming the objects the worker already has."""

    def __init__(self, file: io.BytesIO, known: dict[int, Any]) -> None:
        super().__init__(file, _PROTOCOL)
        self.known = known

    def persistent_id(self, obj: Any) -> int | None:
        return id(obj) if type(obj) in _BY_NAME and id(obj) in self.known else None


class _JobUnpickler(pickle.Unpickler):
    def __init__(self, file: io.BytesIO, known: dict[int, Any]) -> None:
        super().__init__(file)
        self.known = known

    def persistent_load(self, pid: Any) -> Any:
        return self.known[pid]


def _definition(value: Any) -> bytes:
    """An object the jobs will name, pickled. A registered family goes by its name and
    the worker loads it from its own registry: a family's functions need not be
    importable by their qualified names (plain pickle's way), only the family by its
    entry point, as on a Dask worker. Any other family (a test's) goes by value."""
    if isinstance(value, CheckFamily) and _registered().get(value.name) is value:
        return pickle.dumps((id(value), _Registered(value.name)), _PROTOCOL)
    return pickle.dumps((id(value), value), _PROTOCOL)


@functools.cache
def _registered() -> dict[str, CheckFamily]:
    from audit.registry import load_families

    return dict(load_families().by_name)


class _Registered:
    """A registered family, by name: unpickled, it is the worker's own."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __reduce__(self) -> tuple[Callable[[str], CheckFamily], tuple[str]]:
        return (registered_family, (self.name,))


def registered_family(name: str) -> CheckFamily:
    """The family ``name`` of this process's registry (in a worker: for its jobs)."""
    return _registered()[name]


def parse_processes(url: str) -> int | None:
    """The number of worker processes ``processes[:N]`` asks for (the host's cores when
    N is not given); None when ``url`` names another executor. OptionError for a bad N."""
    name, _, count = url.strip().partition(":")
    if name != SCHEME:
        return None
    if not count:
        return max(1, os.cpu_count() or 1)
    if not count.isdigit() or not 1 <= int(count) <= MAX_PROCESSES:
        raise OptionError(
            f"executor {url!r}: processes:N takes a number of processes from 1 to {MAX_PROCESSES}"
        )
    return int(count)


class ProcessExecutor(Executor):
    """Jobs on N local worker processes, each with ``threads`` threads.

    A job goes to the worker with the fewest jobs in flight.
    """

    def __init__(self, processes: int, threads: int) -> None:
        self._threads = max(1, threads)
        self._lock = threading.Lock()
        self._next_job = 0
        self._closed = False
        self._workers = [_Worker(self._threads, i, self._lock) for i in range(max(1, processes))]

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run an observation job ``fn(*args)`` in a worker process."""
        if kwargs:
            raise TypeError("jobs in worker processes take positional arguments only")
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            worker = self._pick()
            job = self._next_job
            self._next_job += 1
            worker.inflight[job] = future
        try:
            worker.send_job(job, fn, args)
        except (OSError, ValueError, pickle.PicklingError) as exc:
            worker.inflight.pop(job, None)
            _settle(future, WorkerTaskError(f"the job could not reach its worker: {exc}"))
        return future

    def _pick(self) -> _Worker:
        """The least busy worker; a dead one is replaced first (under the lock)."""
        for index, worker in enumerate(self._workers):
            if not worker.alive:
                self._workers[index] = _Worker(self._threads, index, self._lock)
        return min(self._workers, key=lambda w: len(w.inflight))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """End every worker: told to stop, then terminated if it has not within 2 s."""
        with self._lock:
            self._closed = True
            workers = list(self._workers)
        for worker in workers:
            worker.stop()
        for worker in workers:
            worker.join(2.0 if wait else 0.2)


WORKER_MAIN = "from audit.scale.processes import worker_main; worker_main()"


class _Worker:
    """One worker process, its socket pair, and the thread that reads its replies.

    Why a plain ``python -c`` and not :mod:`multiprocessing`'s spawn: spawn runs the
    scanning program's own ``__main__`` again in every worker, and a script that calls
    Rempart without an ``if __name__ == "__main__"`` guard then starts a scan in each of
    them (every target ended ``worker_lost``). A worker needs only this module, the
    scanning process's ``sys.path`` and the function that serves it, sent first.
    """

    def __init__(self, threads: int, index: int, lock: threading.Lock) -> None:
        mine, theirs = socket.socketpair()
        try:
            self.process = subprocess.Popen(  # our own interpreter, module and arguments
                [sys.executable, "-c", WORKER_MAIN, str(theirs.fileno()), str(threads)],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self.conn = Connection(mine.detach())
        self.conn.send_bytes(pickle.dumps(list(sys.path), _PROTOCOL))
        self.conn.send_bytes(pickle.dumps(serve, _PROTOCOL))  # by reference: module, name
        self.inflight: dict[int, Future[Any]] = {}
        self.known: dict[int, Any] = {}
        self.alive = True
        self._lock = lock  # the executor's: no job is given to a worker found dead
        self._send_lock = threading.Lock()
        self._reader = threading.Thread(
            target=self._read, name=f"rempart-worker-{index}-replies", daemon=True
        )
        self._reader.start()

    def send(self, payload: bytes) -> None:
        with self._send_lock:
            self.conn.send_bytes(payload)

    def send_job(self, job: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """The job, its family and context sent once to this worker and named after
        (pickling a family for each of 2,000 jobs cost the scanning process 0.3 s)."""
        with self._send_lock:
            for value in args:
                if type(value) in _BY_NAME and id(value) not in self.known:
                    self.conn.send_bytes(DEFINE + _definition(value))
                    self.known[id(value)] = value  # kept, so its id is never reused
            buffer = io.BytesIO()
            buffer.write(JOB)
            _JobPickler(buffer, self.known).dump((job, fn, args))
            self.conn.send_bytes(buffer.getvalue())

    def _read(self) -> None:
        while True:
            try:
                data = self.conn.recv_bytes()
            except (EOFError, OSError):
                break
            self._settle(data)
        with self._lock:
            self.alive = False
            lost, self.inflight = list(self.inflight.values()), {}
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(0.5)
        for future in lost:
            code = self.process.returncode
            _settle(future, WorkerTaskError(f"the worker process ended (exit code {code})"))

    def _settle(self, data: bytes) -> None:
        """One reply: the job's observation, refused unless it is our JSON form."""
        if len(data) < _HEADER.size:
            return
        job, ran = _HEADER.unpack_from(data)
        future = self.inflight.pop(job, None)
        if future is None:
            return
        if not ran:
            _settle(future, WorkerTaskError("the job failed in its worker process"))
            return
        try:
            result = decode_observation(data[_HEADER.size :])
        except ValueError as exc:
            _settle(future, ResultRefused(f"the worker's result was refused: {exc}"))
            return
        with suppress(InvalidStateError):
            future.set_result(result)

    def stop(self) -> None:
        with suppress(OSError, ValueError):
            self.send(STOP)

    def join(self, timeout: float) -> None:
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.terminate()
            try:
                self.process.wait(1.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        with suppress(OSError):
            self.conn.close()
        self._reader.join(1.0)


def _settle(future: Future[Any], exc: Exception) -> None:
    with suppress(InvalidStateError):
        future.set_exception(exc)


# --- in the worker process -----------------------------------------------------------------


def worker_main() -> None:
    """A worker's entry point (``python -c``): its socket's descriptor and thread count
    in ``argv``, then the scanning process's ``sys.path`` and the function to serve with
    (pickles from the scanning process only, over the socket it handed down)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the scanning process
    conn = Connection(int(sys.argv[1]))
    threads = int(sys.argv[2])
    sys.path[:] = pickle.loads(conn.recv_bytes())  # noqa: S301
    entry = pickle.loads(conn.recv_bytes())  # noqa: S301
    entry(conn, threads)


def serve(conn: Connection, threads: int) -> None:
    """A worker's life: run each job received (:class:`Jobs`), send back its result,
    until told to stop or the socket closes (the scanning process is gone)."""
    pool = ThreadPoolExecutor(threads, thread_name_prefix="check")
    jobs = Jobs(threads, pool, partial(_reply, conn, threading.Lock()))
    known: dict[int, Any] = {}
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            break
        if data == STOP:
            break
        # pickles from the scanning process only (this process's parent, over its socket)
        if data[:1] == DEFINE:
            key, value = pickle.loads(data[1:])  # noqa: S301
            known[key] = value
            continue
        jobs.submit(*_JobUnpickler(io.BytesIO(data[1:]), known).load())
    pool.shutdown(wait=False, cancel_futures=True)
    os._exit(0)  # checks still waiting on the network are not waited for


_Job = tuple[int, Callable[..., Any], tuple[Any, ...]]


class Jobs:
    """A worker's jobs: at most ``bound`` at once (its share of ``--concurrency``), the
    others waiting in order. The observation of a family that starts on the probe loop
    (``CheckFamily.start``) runs there as a coroutine, any other job on the worker's
    threads; each result is sent as soon as it is done.

    Why the loop: a thousand domains are then coroutines on the worker's loop, not a
    thousand hand-offs between its threads and its loop. Why one bound for both: the
    worker observes no more targets at once than its share, whatever their families.
    """

    def __init__(
        self, bound: int, pool: Executor, send: Callable[[int, Future[bytes]], None]
    ) -> None:
        self.bound, self.pool, self.send = max(1, bound), pool, send
        self.lock = threading.Lock()
        self.running = 0
        self.waiting: deque[_Job] = deque()

    def submit(self, job: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        with self.lock:
            if self.running >= self.bound:
                self.waiting.append((job, fn, args))
                return
            self.running += 1
        self._run(job, fn, args)

    def _run(self, job: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        from audit.engine import loop_start

        start = loop_start(fn, args)
        if start is None:
            self.pool.submit(run_job, fn, *args).add_done_callback(partial(self._done, job))
        else:
            start().add_done_callback(partial(self._observed, job, args[1]))

    def _observed(self, job: int, target: Target, done: Future[Observation]) -> None:
        from audit.engine import outcome

        encoded: Future[bytes] = Future()
        encoded.set_result(run_job(outcome, done, target))  # a raise is a problem, sent
        self._done(job, encoded)

    def _done(self, job: int, result: Future[bytes]) -> None:
        self.send(job, result)
        with self.lock:
            following = self.waiting.popleft() if self.waiting else None
            if following is None:
                self.running -= 1
        if following is not None:
            self._run(*following)


def _reply(conn: Connection, lock: threading.Lock, job: int, done: Future[bytes]) -> None:
    try:
        body, ran = done.result(), True
    except BaseException:  # a job that raised (never an honest check: they return problems)
        body, ran = b"", False
    with lock, suppress(OSError, ValueError):
        conn.send_bytes(_HEADER.pack(job, ran) + body)
