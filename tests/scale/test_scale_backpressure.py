"""Backpressure: a long inventory streams through a bounded window of futures."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fakes import RUNNING
from scale_helpers import plan_for, sim_targets

from audit.engine import Progress, in_flight_bound, run_scan
from audit.models import Finding, Observation, Target
from audit.registry import Families
from audit.scale.executors import open_executor
from audit.store import Store


class CountingExecutor(Executor):
    """Delegates to a real executor and counts futures submitted but not yet stored."""

    def __init__(self, inner: Executor):
        self.inner = inner
        self.lock = threading.Lock()
        self.submitted = self.stored = self.peak = 0
        self.on_submit: Callable[[int], None] | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self.lock:
            self.submitted += 1
            self.peak = max(self.peak, self.submitted - self.stored)
            if self.on_submit is not None:
                self.on_submit(self.submitted)
        return self.inner.submit(fn, *args, **kwargs)

    def stored_one(self) -> None:
        with self.lock:
            self.stored += 1


def test_5000_targets_never_exceed_the_in_flight_bound(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    # Given 5,000 targets, concurrency 8, and a pool that counts what is in flight
    plan = plan_for(policy_file, sim_targets(5000), concurrency=8)
    store = Store(tmp_path / "r.db")
    reader = sqlite3.connect(tmp_path / "r.db")
    early: list[tuple[int, int]] = []

    def on_target(target: Target, observation: Observation, findings: Any) -> None:
        pool.stored_one()

    def on_submit(submitted: int) -> None:
        if submitted == 17:  # findings are in the store (committed) while most targets wait
            rows = reader.execute("SELECT COUNT(*) FROM findings").fetchone()[0]
            early.append((rows, pool.stored))

    # When the scan runs
    with ThreadPoolExecutor(max_workers=8) as threads:
        pool = CountingExecutor(threads)
        pool.on_submit = on_submit
        summary = run_scan(
            plan, families, store, executor=pool, progress=Progress(on_target=on_target)
        )
    # Then at most concurrency × 2 futures were ever in flight, the window was used,
    # at most 8 checks ran at once, and every target was observed once and stored
    assert pool.peak == in_flight_bound(8) == 16
    assert RUNNING.peak <= 8
    assert pool.submitted == pool.stored == RUNNING.total == 5000
    assert summary.status == "complete" and summary.counts["resources"] == 5000
    # And the first targets' findings were committed before the 17th target was submitted
    assert early and early[0][0] > 0 and 0 < early[0][1] <= 16
    reader.close()


def test_the_engine_pool_honours_concurrency(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    plan = plan_for(policy_file, sim_targets(300), concurrency=3, latency=0.001)
    run_scan(plan, families, Store(tmp_path / "r.db"))
    assert 1 <= RUNNING.peak <= 3 and RUNNING.total == 300


def test_the_bound_holds_on_dask(
    tmp_path: Path, policy_file: Path, families: Families, dask_inprocess: str
) -> None:
    # Given the Dask executor wrapped in the same counter
    plan = plan_for(policy_file, sim_targets(300), concurrency=4)
    counted: list[Finding] = []
    with open_executor(dask_inprocess) as executor:
        pool = CountingExecutor(executor)

        def on_target(target: Target, observation: Observation, findings: Any) -> None:
            pool.stored_one()
            counted.extend(findings)

        summary = run_scan(
            plan,
            families,
            Store(tmp_path / "r.db"),
            executor=pool,
            progress=Progress(on_target=on_target),
        )
    # Then the cluster never held more than concurrency × 2 targets of this scan
    assert pool.peak <= in_flight_bound(4)
    assert pool.stored == 300 and summary.status == "complete"
    assert len(counted) == summary.counts["pass"] + summary.counts["fail"] + summary.counts["skip"]
