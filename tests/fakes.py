"""The fake check families of the test suite and the bench, and their demo policy.

Two families that observe nothing on the network and exercise the same plugin contract
as the real ones, without standing in for any of our network code:

- ``facts://NAME`` returns the resources a test put in ``ctx.options['facts'][NAME]``
  (or a problem): the engine, store and CLI tests choose every fact;
- ``sim://NAME`` derives its facts from the name (and the ``round`` setting, so a later
  scan can change some of them), which keeps the check context tiny however many
  targets a scale test or a benchmark scans. Settings (``ctx.options['sim']``):
  ``round`` (int, shifts which items fail), ``latency`` (seconds of simulated I/O per
  target), ``sleep`` (``{name: seconds}``), ``crash`` (names whose collect ends the
  *worker process*, never the process given as ``parent_pid``), ``trace_dir`` (every
  collect attempt leaves a file there, so a test can count attempts across processes).
  Names starting with ``down`` are unreachable (a problem, not an exception);
- ``asim://NAME`` is ``sim://`` observed as a coroutine on the process's probe loop, as
  the tls, dns and mail families are: its ``start`` puts it there, its ``collect`` waits
  for it there. Settings (``ctx.options['asim']``): ``latency``, ``sleep``, ``raise``
  (names whose coroutine raises, as a bug would), ``refuse`` (names whose coroutine raises
  ObservationError, unreachable) and ``trace_dir`` (each coroutine leaves
  ``NAME.loop.PID.*`` there, each collect call ``NAME.collect.PID.*``). ``LOOP_TRACE``
  records the thread of each collect call and of each coroutine, and the coroutines
  that were cancelled, in this process.

All produce ``demo.item`` resources, which :func:`demo_policy` judges. Also here: the
:class:`CountingListener` the scope tests place outside the scope, which must see nothing.
This module is imported by its name, ``fakes``, with ``tests/`` on ``sys.path`` (and on
``PYTHONPATH`` for worker processes: Dask unpickles the families by module name). It is
test code: the wheel never carries it (``tests/test_packaging.py``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

from audit.errors import ObservationError, TargetError
from audit.models import Observation, Problem, Reason, Resource, Target
from audit.plugins import CheckContext, CheckFamily, FactDoc, ResourceTypeDoc

if TYPE_CHECKING:
    from audit.engine import ScanPlan
    from audit.registry import Families

TESTS_DIR = Path(__file__).resolve().parent
"""What goes on ``sys.path`` (and a worker's ``PYTHONPATH``) to import this module."""

DEMO_ITEM = ResourceTypeDoc(
    "demo.item",
    "An item",
    (FactDoc("port", "int", "a port"), FactDoc("tags", "list", "tags")),
)


def demo_policy(*, exempt_port: int = 25, version: str | None = None, prefix: str = "DEMO") -> str:
    """The two-rule policy over ``demo.item``: allowed ports, and an owner tag on every
    item but those on ``exempt_port`` (25 for ``facts``, 8080 for ``sim``, whose ports
    include it)."""
    head = "policy: demo\ntitle: Demo\n"
    if version is not None:
        head += f'version: "{version}"\n'
    return (
        head
        + f"""\
params:
  allowed: {{default: [80, 443]}}
rules:
  - id: {prefix}-PORT-001
    title: Only allowed ports
    resource: demo.item
    expect: {{key: port, op: in, param: allowed}}
    severity: high
    remediation: Close it.
  - id: {prefix}-TAG-001
    title: Tagged with owner
    resource: demo.item
    where: {{key: port, op: ne, value: {exempt_port}}}
    expect: {{key: tags, op: contains, value: owner}}
    severity: low
    remediation: Tag it.
"""
    )


# --- facts:// ---------------------------------------------------------------------------


def _parse_facts(split: SplitResult, raw: str) -> Target:
    if not split.hostname:
        raise TargetError(f"{raw!r}: missing name")
    return Target(uri=f"facts://{split.hostname}", scheme="facts", host="127.0.0.1")


def _collect_facts(target: Target, ctx: CheckContext) -> Observation:
    spec = ctx.family_options("facts").get(target.uri.removeprefix("facts://"), {})
    if "sleep" in spec:
        time.sleep(spec["sleep"])
    if "problem" in spec:
        return Observation(target, problems=(Problem(Reason(spec["problem"]), "planted"),))
    resources = tuple(
        Resource(
            type=r.get("type", "demo.item"),
            key=r["key"],
            target=target.uri,
            system=target.system,
            facts=r["facts"],
            unknown={k: Problem(Reason(v), f"{k} denied") for k, v in r.get("unknown", {}).items()},
        )
        for r in spec.get("resources", [])
    )
    return Observation(target, resources=resources)


FACTS_FAMILY = CheckFamily(
    name="facts",
    description="Resources given by the test",
    schemes=("facts",),
    resource_types=(DEMO_ITEM,),
    parse=_parse_facts,
    collect=_collect_facts,
)


# --- sim:// -----------------------------------------------------------------------------

PORTS = (22, 80, 443, 8080)


class Gauge:
    """How many collects run at once in this process, and the most there ever were."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.peak = 0
        self.total = 0

    def reset(self) -> None:
        with self.lock:
            self.now = self.peak = self.total = 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.total += 1
            self.peak = max(self.peak, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


RUNNING = Gauge()


def _parse_sim(split: SplitResult, raw: str) -> Target:
    if not split.hostname:
        raise TargetError(f"{raw!r}: missing name")
    return Target(uri=f"sim://{split.hostname}", scheme="sim", host="127.0.0.1")


def facts_for(name: str, round_: int = 1) -> dict[str, object]:
    """The facts ``sim://NAME`` reports in a given round (deterministic)."""
    digest = hashlib.sha256(name.encode()).digest()
    port = PORTS[(digest[0] + (round_ if digest[1] % 3 == 0 else 0)) % len(PORTS)]
    tags = ["owner"] if digest[2] % 4 else []
    return {"port": port, "tags": tags}


def _collect_sim(target: Target, ctx: CheckContext) -> Observation:
    options = ctx.family_options("sim")
    name = target.uri.removeprefix("sim://")
    RUNNING.enter()
    try:
        _trace(options.get("trace_dir"), name)
        _maybe_crash(options, name)
        delay = options.get("sleep", {}).get(name, options.get("latency", 0))
        if delay:
            time.sleep(delay)
        if name.startswith("down"):
            return Observation(target, problems=(Problem(Reason.UNREACHABLE, "no route"),))
        facts = facts_for(name, int(options.get("round", 1)))
        resource = Resource("demo.item", f"item://{name}", target.uri, target.system, facts)
        return Observation(target, resources=(resource,))
    finally:
        RUNNING.leave()


def _trace(directory: str | None, name: str) -> None:
    if directory:
        (Path(directory) / f"{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}").touch()


def _maybe_crash(options: Mapping[str, Any], name: str) -> None:
    if name in options.get("crash", ()) and os.getpid() != options.get("parent_pid"):
        os._exit(70)


SIM_FAMILY = CheckFamily(
    name="sim",
    description="Simulated targets whose facts derive from their name",
    schemes=("sim",),
    resource_types=(DEMO_ITEM,),
    parse=_parse_sim,
    collect=_collect_sim,
)


@dataclass
class LoopTrace:
    """Where ``asim://`` observations ran, and which were cancelled on the loop."""

    collect_threads: list[str] = field(default_factory=list)
    coroutine_threads: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def reset(self) -> None:
        for seen in (self.collect_threads, self.coroutine_threads, self.cancelled):
            seen.clear()


LOOP_TRACE = LoopTrace()


def _parse_asim(split: SplitResult, raw: str) -> Target:
    if not split.hostname:
        raise TargetError(f"{raw!r}: missing name")
    return Target(uri=f"asim://{split.hostname}", scheme="asim", host="127.0.0.1")


async def _observed_asim(target: Target, ctx: CheckContext) -> Observation:
    options = ctx.family_options("asim")
    name = target.uri.removeprefix("asim://")
    LOOP_TRACE.coroutine_threads.append(threading.current_thread().name)
    _trace(options.get("trace_dir"), f"{name}.loop")
    RUNNING.enter()
    try:
        await asyncio.sleep(options.get("sleep", {}).get(name, options.get("latency", 0)))
        if name in options.get("raise", ()):
            raise RuntimeError(f"a bug observing {name}")
        if name in options.get("refuse", ()):
            raise ObservationError(Reason.UNREACHABLE, f"no route to {name}")
        facts = facts_for(name)
        resource = Resource("demo.item", f"item://{name}", target.uri, target.system, facts)
        return Observation(target, resources=(resource,))
    except asyncio.CancelledError:
        LOOP_TRACE.cancelled.append(name)
        raise
    finally:
        RUNNING.leave()


def _start_asim(target: Target, ctx: CheckContext) -> Future[Observation]:
    from checks.tls import probe

    return probe.start(_observed_asim(target, ctx))


def _collect_asim(target: Target, ctx: CheckContext) -> Observation:
    from checks.tls import probe

    LOOP_TRACE.collect_threads.append(threading.current_thread().name)
    name = target.uri.removeprefix("asim://")
    _trace(ctx.family_options("asim").get("trace_dir"), f"{name}.collect")
    return probe.run(_observed_asim(target, ctx), ctx.timeout)


ASYNC_SIM_FAMILY = CheckFamily(
    name="asim",
    description="Simulated targets observed on the probe loop",
    schemes=("asim",),
    resource_types=(DEMO_ITEM,),
    parse=_parse_asim,
    collect=_collect_asim,
    start=_start_asim,
)


class Served:
    """A socket served by a daemon thread, one :meth:`serve_one` at a time, until
    :meth:`close` (the socket has a short timeout, so the thread sees the stop)."""

    sock: socket.socket

    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                self.serve_one()
            except OSError:  # the timeout, or the socket closed under us
                continue

    def serve_one(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self.sock.close()


class CountingListener(Served):
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
        self.start()

    def serve_one(self) -> None:
        connection, _ = self.sock.accept()
        self.connections += 1
        connection.close()


Judged = set[tuple[str, str, str | None]]
"""Every finding of a scan as (fingerprint, status, reason)."""


def judged_on_threads_and_processes(
    plan: ScanPlan, families: Families, directory: Path, threads: int
) -> tuple[Judged, Judged]:
    """The findings of ``plan`` scanned on the engine's thread pool, then on two worker
    processes of ``threads`` threads each (``--executor processes:2``); stores in
    ``directory``."""
    from audit.engine import run_scan
    from audit.scale.processes import ProcessExecutor
    from audit.store import Store

    def judged(store: Store, scan_id: int) -> Judged:
        return {(f.fingerprint, f.status.value, f.reason) for f in store.findings(scan_id)}

    threads_store = Store(directory / "threads.db")
    on_threads = judged(threads_store, run_scan(plan, families, threads_store).id)
    store = Store(directory / "processes.db")
    pool = ProcessExecutor(2, threads)
    try:
        summary = run_scan(plan, families, store, executor=pool)
    finally:
        pool.shutdown()
    return on_threads, judged(store, summary.id)


class SilentUdp:
    """A bound UDP port that reads nothing and answers nothing: a server that is there and
    silent (a closed port, by contrast, answers with an ICMP port unreachable)."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.port = int(self.sock.getsockname()[1])

    def __enter__(self) -> SilentUdp:
        return self

    def __exit__(self, *_: object) -> None:
        self.sock.close()
