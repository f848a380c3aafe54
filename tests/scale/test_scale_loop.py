"""Families that start their observation on the probe loop (``CheckFamily.start``).

On the engine's own threads, such a target is a coroutine on the loop, not a thread
parked on its wait: the engine still runs at most ``--concurrency`` of them, gives up on
one past its hard limit (cancelling it there), cancels what is left when the scan is
interrupted, and turns a coroutine's exception into a problem. A worker process runs
them on its own loop, within its share of the concurrency. With another executor of the
caller's (a cluster, a given pool), the family's ``collect`` runs as before.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fakes import ASYNC_SIM_FAMILY, LOOP_TRACE, RUNNING, SIM_FAMILY, facts_for
from scale_helpers import outcomes, sim_targets, worker_pythonpath

from audit import engine
from audit.engine import Progress, ScanPlan, _Running, _timed_observe, run_scan
from audit.models import Observation, Target
from audit.plugins import CheckContext
from audit.policy import load_policy
from audit.registry import Families
from audit.scale.processes import Jobs, ProcessExecutor
from audit.scale.wire import decode_observation
from audit.store import Store

FAMILIES = Families(
    {"sim": SIM_FAMILY, "asim": ASYNC_SIM_FAMILY}, {"sim": SIM_FAMILY, "asim": ASYNC_SIM_FAMILY}
)


@pytest.fixture(autouse=True)
def fresh_trace() -> None:
    LOOP_TRACE.reset()


def asim_targets(count: int, prefix: str = "a") -> tuple[Target, ...]:
    return tuple(Target(f"asim://{prefix}{i}", "asim", "127.0.0.1") for i in range(count))


def plan(policy_file: Path, targets: tuple[Target, ...], concurrency: int, **asim: Any) -> ScanPlan:
    policy = load_policy(policy_file, {"demo.item"})
    return ScanPlan(
        targets=targets,
        policies=(policy,),
        context=CheckContext(timeout=5.0, options={"asim": asim, "sim": {"latency": 0.002}}),
        inventory="inventory.yaml",
        concurrency=concurrency,
    )


def test_on_the_engine_threads_they_run_on_the_loop_within_the_concurrency(
    tmp_path: Path, policy_file: Path
) -> None:
    # Given 200 targets of a family that starts on the loop, concurrency 3
    store = Store(tmp_path / "r.db")
    summary = run_scan(plan(policy_file, asim_targets(200), 3, latency=0.005), FAMILIES, store)
    # Then every one was observed once, as coroutines on the probe loop thread, never
    # through collect on a check thread, and exactly 3 at a time at most
    assert summary.status == "complete" and summary.counts["resources"] == 200
    assert RUNNING.total == 200 and RUNNING.peak == 3
    assert set(LOOP_TRACE.coroutine_threads) == {"tls-probes"}
    assert LOOP_TRACE.collect_threads == []
    # And the facts are the family's own, as collect would have given
    stored = {r.key: r.facts for r in store.resources(summary.id)}
    assert stored["item://a7"] == facts_for("a7")


def test_mixed_with_thread_targets_every_target_is_stored_once(
    tmp_path: Path, policy_file: Path
) -> None:
    # Given loop targets and thread targets interleaved, concurrency 4
    mixed = tuple(t for pair in zip(asim_targets(150), sim_targets(150), strict=True) for t in pair)
    store = Store(tmp_path / "r.db")
    seen: list[str] = []
    progress = Progress(on_target=lambda target, *_: seen.append(target.uri))
    summary = run_scan(
        plan(policy_file, mixed, 4, latency=0.003), FAMILIES, store, progress=progress
    )
    # Then each of the 300 was stored exactly once, neither kind starved the other,
    # and never more than 4 observed at once, threads and coroutines together
    assert sorted(seen) == sorted(t.uri for t in mixed)
    assert summary.status == "complete" and summary.counts["resources"] == 300
    assert len(LOOP_TRACE.coroutine_threads) == 150 and RUNNING.total == 300
    assert RUNNING.peak == 4


def test_an_executor_of_the_callers_runs_collect(tmp_path: Path, policy_file: Path) -> None:
    # Given the same family, with a thread pool the caller gives (as a cluster would be)
    with ThreadPoolExecutor(2, thread_name_prefix="given") as pool:
        summary = run_scan(
            plan(policy_file, asim_targets(20), 2), FAMILIES, Store(tmp_path / "r.db"),
            executor=pool,
        )  # fmt: skip
    # Then collect ran on that pool's threads (and waited for the loop), once a target
    assert summary.counts["resources"] == 20
    assert len(LOOP_TRACE.collect_threads) == 20
    assert all(name.startswith("given") for name in LOOP_TRACE.collect_threads)


def test_a_coroutine_that_raises_is_a_problem_not_a_crash(
    tmp_path: Path, policy_file: Path
) -> None:
    store = Store(tmp_path / "r.db")
    options = {"raise": ["a3"], "refuse": ["a1"]}
    summary = run_scan(plan(policy_file, asim_targets(5), 2, **options), FAMILIES, store)
    # Then the scan completed, three targets judged, a3's rules are errors (a bug)
    assert summary.status == "complete" and summary.counts["resources"] == 3
    errors = [f for f in store.findings(summary.id) if f.target == "asim://a3"]
    assert errors and all(f.status.value == "error" for f in errors)
    assert {f.reason.value for f in errors if f.reason} == {"bug"}
    assert "a bug observing a3" in errors[0].message
    # And an ObservationError keeps the reason it carries, as from collect
    refused = [f for f in store.findings(summary.id) if f.target == "asim://a1"]
    assert refused and {f.reason.value for f in refused if f.reason} == {"unreachable"}


def test_past_the_hard_limit_the_coroutine_is_cancelled_on_the_loop(
    tmp_path: Path, policy_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a target that would wait an hour, and an engine limit of half a second
    monkeypatch.setattr(engine, "hard_limit", lambda ctx: 0.5)
    store = Store(tmp_path / "r.db")
    started = time.monotonic()
    summary = run_scan(plan(policy_file, asim_targets(3), 2, sleep={"a1": 3600}), FAMILIES, store)
    # Then the scan ends within seconds, that target's rules are errors (timeout),
    # the others are judged, and its coroutine was cancelled on the loop, not left there
    assert time.monotonic() - started < 5
    assert outcomes(store, summary.id)
    late = [f for f in store.findings(summary.id) if f.target == "asim://a1"]
    assert late and {f.reason.value for f in late if f.reason} == {"timeout"}
    assert summary.counts["resources"] == 2
    _wait_for(lambda: LOOP_TRACE.cancelled == ["a1"] and RUNNING.now == 0)


def test_an_interrupted_scan_cancels_what_runs_on_the_loop(
    tmp_path: Path, policy_file: Path
) -> None:
    # Given 40 slow targets, 8 at once, and an interruption when the first is stored
    def interrupt(*_: object) -> None:
        raise KeyboardInterrupt

    slow = {f"a{i}": 3600 for i in range(1, 40)}
    store = Store(tmp_path / "r.db")
    with pytest.raises(KeyboardInterrupt):
        run_scan(
            plan(policy_file, asim_targets(40), 8, sleep=slow), FAMILIES, store,
            progress=Progress(on_target=interrupt),
        )  # fmt: skip
    # Then the scan is closed as interrupted and the 7 coroutines still waiting are
    # cancelled (none of the 32 held back was ever started)
    assert store.scan(store.latest_scan_id()).status == "interrupted"
    _wait_for(lambda: len(LOOP_TRACE.cancelled) == 7 and RUNNING.now == 0)
    assert RUNNING.total == 8


def _wait_for(condition: Any, within: float = 5.0) -> None:
    """The loop runs the cancellations a moment later, on its own thread."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "not cancelled on the loop"
        time.sleep(0.01)


def test_the_family_start_and_collect_give_the_same_observation() -> None:
    target = asim_targets(1)[0]
    ctx = CheckContext(timeout=5.0)
    assert ASYNC_SIM_FAMILY.start is not None
    started: Observation = ASYNC_SIM_FAMILY.start(target, ctx).result(5)
    collected = ASYNC_SIM_FAMILY.collect(target, ctx)
    assert started.resources == collected.resources and not started.problems


def test_worker_processes_run_them_on_their_own_loop(tmp_path: Path, policy_file: Path) -> None:
    # Given targets of the family on two worker processes (the family goes by value)
    trace = tmp_path / "trace"
    trace.mkdir()
    scan = plan(policy_file, asim_targets(30), 4, latency=0.005, trace_dir=str(trace))
    with worker_pythonpath():
        pool = ProcessExecutor(2, 2)
        try:
            summary = run_scan(scan, FAMILIES, Store(tmp_path / "r.db"), executor=pool)
        finally:
            pool.shutdown()
    # Then each was observed once, as a coroutine in a worker, never through collect
    marks = [p.name.split(".") for p in trace.iterdir()]
    assert summary.status == "complete" and summary.counts["resources"] == 30
    assert sorted(m[0] for m in marks) == sorted(f"a{i}" for i in range(30))
    assert {m[1] for m in marks} == {"loop"}
    assert len({m[2] for m in marks}) == 2 and str(os.getpid()) not in {m[2] for m in marks}


def test_a_workers_jobs_keep_one_bound_on_the_loop_and_threads_together() -> None:
    # Given a worker's jobs bounded at 2 (2 threads too): six observations of the loop
    # family, one a bug, and six of the thread family, interleaved
    sent: dict[int, bytes] = {}
    done = threading.Event()

    def send(job: int, result: Future[bytes]) -> None:
        sent[job] = result.result()
        if len(sent) == 12:
            done.set()

    options = {"asim": {"latency": 0.01, "raise": ["a4"]}, "sim": {"latency": 0.01}}
    ctx = CheckContext(timeout=5.0, options=options)
    pairs = zip(asim_targets(6), sim_targets(6), strict=True)
    mixed = [t for pair in pairs for t in pair]
    with ThreadPoolExecutor(2) as threads:
        jobs = Jobs(2, threads, send)
        for index, target in enumerate(mixed):
            family = FAMILIES.by_scheme[target.scheme]
            jobs.submit(index, _timed_observe, (family, target, ctx, _Running(target)))
        # Then never more than 2 ran at once, of both kinds, and every result was sent
        assert done.wait(10)
    assert RUNNING.peak == 2 and RUNNING.total == 12
    assert LOOP_TRACE.collect_threads == [] and len(LOOP_TRACE.coroutine_threads) == 6
    results = {job: decode_observation(body) for job, body in sent.items()}
    assert results[2].resources[0].facts == facts_for("a1")
    assert results[3].resources[0].facts == facts_for("t1")
    # And the loop coroutine's bug came back as the target's problem, not a lost job
    assert [p.reason.value for p in results[8].problems] == ["bug"]
    assert jobs.running == 0 and not jobs.waiting
