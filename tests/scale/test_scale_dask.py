"""The Dask executor: same findings as threads, lost workers, refusals with one line."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from scale_helpers import distributed, outcomes, plan_for, sim_targets

from audit.cli import app as cli
from audit.engine import Progress, run_scan
from audit.errors import DependencyError, OptionError
from audit.models import Target
from audit.registry import Families
from audit.scale.executors import open_executor, parse_executor_url
from audit.store import Store

TARGETS = (*sim_targets(40), Target("sim://down1", "sim", "127.0.0.1"))


def scan_both(
    tmp_path: Path, policy_file: Path, families: Families, url: str, **options: Any
) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The same plan run with threads and on the cluster at ``url``."""
    plan = plan_for(policy_file, TARGETS, **options)
    threads = Store(tmp_path / "threads.db")
    expected = outcomes(threads, run_scan(plan, families, threads).id)
    store = Store(tmp_path / "dask.db")
    with open_executor(url) as executor:
        summary = run_scan(plan, families, store, executor=executor)
    return expected, outcomes(store, summary.id), summary.status


# --- same findings ---------------------------------------------------------------------


def test_dask_in_process_cluster_matches_threads(
    tmp_path: Path, policy_file: Path, families: Families, dask_inprocess: str
) -> None:
    # Given a scheduler on loopback TCP with worker threads, when the same scan runs there
    expected, observed, status = scan_both(tmp_path, policy_file, families, dask_inprocess)
    # Then fingerprints and statuses are those of the thread pool, errors included
    assert status == "complete"
    assert observed == expected
    assert ("error", "unreachable") in observed.values()


def test_cli_scan_on_the_cluster(
    tmp_path: Path,
    policy_file: Path,
    families: Families,
    dask_inprocess: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an inventory, and a loopback cluster named on the command line
    monkeypatch.setattr(cli, "_families", lambda: families)
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("systems:\n  - name: Lab\n    targets: [sim://a, sim://b, sim://c]\n")
    # When rempart scan runs there
    with pytest.raises(SystemExit) as exited:
        cli.main(["scan", "-i", str(inventory), "-p", str(policy_file), "--db",
                  str(tmp_path / "r.db"), "-q", "--executor", dask_inprocess])  # fmt: skip
    # Then it completes, with every target observed
    assert exited.value.code == 0, capsys.readouterr().err
    store = Store(tmp_path / "r.db")
    assert {f.target for f in store.findings(store.latest_scan_id())} == {
        "sim://a",
        "sim://b",
        "sim://c",
    }


@pytest.mark.slow
def test_dask_worker_processes_match_threads(
    tmp_path: Path, policy_file: Path, families: Families, dask_processes: str
) -> None:
    # Given two worker processes that import the family by module path
    expected, observed, status = scan_both(tmp_path, policy_file, families, dask_processes)
    # Then the findings are identical to the thread pool's
    assert status == "complete"
    assert observed == expected


# --- lost workers ----------------------------------------------------------------------


class LosingExecutor(ThreadPoolExecutor):
    """Futures for some targets fail with distributed's ``KilledWorker``: what Dask
    reports when workers died running a task. ``first`` lose once, ``always`` every time."""

    def __init__(self, first: set[str], always: set[str]):
        super().__init__(max_workers=4)
        self.first, self.always = first, always
        self.attempts: Counter[str] = Counter()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        from distributed.scheduler import KilledWorker

        uri = args[1].uri
        self.attempts[uri] += 1
        if uri in self.always or (uri in self.first and self.attempts[uri] == 1):
            future: Future[Any] = Future()
            worker: Any = SimpleNamespace(address="tcp://127.0.0.1:1")
            future.set_exception(KilledWorker(uri, worker, 0))
            return future
        return super().submit(fn, *args, **kwargs)


def test_lost_worker_is_retried_once_then_an_error(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    # Given an executor that loses t1 once and t2 every time
    plan = plan_for(policy_file, sim_targets(5))
    pool = LosingExecutor(first={"sim://t1"}, always={"sim://t2"})
    store = Store(tmp_path / "r.db")
    # When the scan runs on it
    with pool:
        summary = run_scan(plan, families, store, executor=pool)
    # Then t1 was resubmitted and observed; t2 twice, then error findings with worker_lost
    assert summary.status == "complete"
    assert pool.attempts["sim://t1"] == 2 and pool.attempts["sim://t2"] == 2
    assert pool.attempts["sim://t0"] == 1
    by_target: dict[str, set[tuple[str, str | None]]] = {}
    for f in store.findings(summary.id):
        by_target.setdefault(f.target, set()).add((f.status.value, f.reason and f.reason.value))
    assert by_target["sim://t2"] == {("error", "worker_lost")}
    assert ("error", "worker_lost") not in by_target["sim://t1"]


@pytest.mark.slow
def test_worker_killed_mid_scan(
    tmp_path: Path, policy_file: Path, families: Families, dask_processes: str
) -> None:
    # Given a slow scan on two worker processes, and a worker killed once 8 targets are in
    trace = tmp_path / "trace"
    trace.mkdir()
    names = sim_targets(40)
    plan = plan_for(policy_file, names, latency=0.3, trace_dir=str(trace), concurrency=4)
    address = dask_processes.replace("dask://", "tcp://")
    with distributed().Client(address, set_as_default=False) as control:
        victim = next(iter(control.run(os.getpid).values()))
    stored = Counter[str]()

    def on_target(target: Target, observation: Any, findings: Any) -> None:
        stored["n"] += 1
        if stored["n"] == 8:
            os.kill(victim, signal.SIGKILL)

    store = Store(tmp_path / "dask.db")
    # When the scan runs
    with open_executor(dask_processes) as executor:
        summary = run_scan(
            plan, families, store, executor=executor, progress=Progress(on_target=on_target)
        )
    # Then it completes: every target has findings, each observed or marked worker_lost
    assert summary.status == "complete"
    findings = store.findings(summary.id)
    assert {f.target for f in findings} == {t.uri for t in names}
    assert all(f.status.value != "error" or f.reason == "worker_lost" for f in findings)
    # And the targets the dead worker held were attempted again
    attempts = Counter(p.name.split(".")[0] for p in trace.iterdir())
    assert any(n > 1 for n in attempts.values())
    _wait_for_workers(address, 2)


@pytest.mark.slow
def test_target_that_crashes_its_worker_becomes_worker_lost(
    tmp_path: Path, policy_file: Path, families: Families, dask_processes: str
) -> None:
    # Given a target whose check ends the worker process every time
    trace = tmp_path / "trace"
    trace.mkdir()
    plan = plan_for(
        policy_file,
        sim_targets(6),
        crash=["t3"],
        parent_pid=os.getpid(),
        trace_dir=str(trace),
    )
    store = Store(tmp_path / "dask.db")
    # When the scan runs on the cluster
    with open_executor(dask_processes) as executor:
        summary = run_scan(plan, families, store, executor=executor)
    # Then the scan completes; t3 was tried twice and is an error with worker_lost
    assert summary.status == "complete"
    errors = {(f.target, str(f.reason)) for f in store.findings(summary.id, status="error")}
    assert ("sim://t3", "worker_lost") in errors
    assert len(list(trace.glob("t3.*"))) == 2
    # And a target sharing the dying worker may be lost with it, never wrongly judged
    assert {reason for _, reason in errors} == {"worker_lost"}
    assert {f.target for f in store.findings(summary.id)} == {t.uri for t in sim_targets(6)}
    _wait_for_workers(dask_processes.replace("dask://", "tcp://"), 2)


def _wait_for_workers(address: str, count: int) -> None:
    """Let the nannies bring killed workers back before the next test uses the cluster."""
    with distributed().Client(address, set_as_default=False) as control:
        control.wait_for_workers(count, timeout=60)


@pytest.mark.slow
def test_workers_of_another_version_are_refused(
    dask_processes: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    import audit

    monkeypatch.setattr(audit, "__version__", "0.0.0-other")
    with (
        pytest.raises(OptionError, match=r"runs rempart .* this is 0\.0\.0-other"),
        open_executor(dask_processes),
    ):
        pass


# --- refusals --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("dask://", "needs a host and a port"),
        ("dask://127.0.0.1", "needs a host and a port"),
        ("dask://127.0.0.1:99999", "port must be a number from 1 to 65535"),
        ("dask://127.0.0.1:port", "port must be a number from 1 to 65535"),
        ("dask://127.0.0.1:0", "port must be a number from 1 to 65535"),
        ("tcp://127.0.0.1:8786", "expected 'threads', 'processes\\[:N\\]', dask\\+tls://HOST:PORT"),
        ("ray://127.0.0.1:8786", "expected 'threads', 'processes\\[:N\\]', dask\\+tls://HOST:PORT"),
        ("dask://user:pw@127.0.0.1:8786", "only dask://HOST:PORT"),
        ("dask://127.0.0.1:8786/path", "only dask://HOST:PORT"),
        ("dask://127.0.0.1:8786?workers=3", "unknown parameter 'workers'"),
        ("dask://127.0.0.1:8786?timeout=-1", "timeout must be seconds"),
        ("dask://127.0.0.1:8786?timeout=soon", "timeout must be seconds"),
        ("dask://bad_host!:8786", "not a host name or an address"),
    ],
)
def test_bad_executor_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(OptionError, match=message) as raised:
        parse_executor_url(url)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "scheduler"),
    [
        ("dask://127.0.0.1:8786", "tcp://127.0.0.1:8786"),
        ("dask://[::1]:8786?timeout=2.5", "tcp://[::1]:8786"),
        ("dask://Scheduler.Example.gouv.fr:8786", "tcp://scheduler.example.gouv.fr:8786"),
        ("dask+tls://10.1.2.3:8786", "tls://10.1.2.3:8786"),
    ],
)
def test_good_executor_urls(url: str, scheduler: str) -> None:
    assert parse_executor_url(url).scheduler == scheduler


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_scheduler_exits_2_with_one_line(
    tmp_path: Path,
    policy_file: Path,
    families: Families,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given nothing listening on a loopback port
    monkeypatch.setattr(cli, "_families", lambda: families)
    url = f"dask://127.0.0.1:{_free_port()}?timeout=1"
    started = time.monotonic()
    # When a scan is pointed at it
    with pytest.raises(SystemExit) as exited:
        cli.main(["scan", "sim://a", "-p", str(policy_file), "--db", str(tmp_path / "r.db"),
                  "-q", "--executor", url])  # fmt: skip
    # Then exit 2, one line naming the scheduler, within the connect timeout (and change)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert "no Dask scheduler answered at tcp://127.0.0.1:" in err
    assert err.count("\n") == 1
    assert time.monotonic() - started < 15


def test_scheduler_without_workers_is_refused() -> None:
    with distributed().LocalCluster(
        n_workers=0,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        url = "dask://" + cluster.scheduler_address.removeprefix("tcp://") + "?timeout=0.5"
        with pytest.raises(OptionError, match="has no worker"), open_executor(url):
            pass


def test_missing_distributed_is_a_dependency_error(
    tmp_path: Path,
    policy_file: Path,
    families: Families,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an environment where 'distributed' cannot be imported
    monkeypatch.setitem(sys.modules, "distributed", None)
    with (
        pytest.raises(DependencyError, match=r"pip install 'rempart\[dask\]'"),
        open_executor("dask://127.0.0.1:8786"),
    ):
        pass
    # And through the CLI: exit 2, one line, nothing scanned
    monkeypatch.setattr(cli, "_families", lambda: families)
    with pytest.raises(SystemExit) as exited:
        cli.main(["scan", "sim://a", "-p", str(policy_file), "--db", str(tmp_path / "r.db"),
                  "-q", "--executor", "dask://127.0.0.1:8786"])  # fmt: skip
    assert exited.value.code == 2
    assert "rempart[dask]" in capsys.readouterr().err
    assert not (tmp_path / "r.db").exists() or not Store(tmp_path / "r.db").scans()


class PayloadExecutor(ThreadPoolExecutor):
    """Serialises every task the way Dask ships it (cloudpickle) and keeps the bytes."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.payloads: list[bytes] = []

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        import cloudpickle

        self.payloads.append(cloudpickle.dumps((fn, args, kwargs)))
        return super().submit(fn, *args, **kwargs)


def test_task_payloads_carry_no_credentials(
    tmp_path: Path, policy_file: Path, families: Families, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given credentials in the scanning process's environment
    secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYSENTINEL"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    monkeypatch.setenv("AWS_SESSION_TOKEN", secret)
    plan = plan_for(policy_file, sim_targets(3), profile="audit-readonly")
    # When a scan's tasks are serialised as a cluster would receive them
    with PayloadExecutor() as pool:
        run_scan(plan, families, Store(tmp_path / "r.db"), executor=pool)
    # Then they name the settings (a profile) but carry no secret
    assert len(pool.payloads) == 3
    assert all(b"audit-readonly" in p for p in pool.payloads)
    assert not any(secret.encode() in p for p in pool.payloads)
