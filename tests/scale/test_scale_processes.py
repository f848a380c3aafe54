"""The local processes executor: same findings as threads, a worker that dies, refusals,
and no worker left behind by a killed scan."""

from __future__ import annotations

import importlib
import json
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import rogue_worker
from fakes import SIM_FAMILY, judged_on_threads_and_processes
from scale_helpers import HERE, outcomes, plan_for, sim_targets

from audit.engine import run_scan
from audit.errors import OptionError
from audit.models import Target
from audit.registry import Families, load_families
from audit.scale import processes
from audit.scale.processes import ProcessExecutor, parse_processes
from audit.store import Store

TARGETS = (*sim_targets(40), Target("sim://down1", "sim", "127.0.0.1"))


def test_worker_processes_match_threads(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    # Given the same plan, once on the thread pool and once on two worker processes
    plan = plan_for(policy_file, TARGETS, latency=0.01)
    threads = Store(tmp_path / "threads.db")
    expected = outcomes(threads, run_scan(plan, families, threads).id)
    store = Store(tmp_path / "processes.db")
    pool = ProcessExecutor(2, 4)
    try:
        summary = run_scan(plan, families, store, executor=pool)
        pids = {w.process.pid for w in pool._workers}
    finally:
        pool.shutdown()
    # Then fingerprints and statuses are the same, errors included
    assert summary.status == "complete"
    assert outcomes(store, summary.id) == expected
    assert ("error", "unreachable") in expected.values()
    # And the checks ran in the two workers, which are gone once the pool is shut down
    assert len(pids) == 2 and os.getpid() not in pids
    assert not any(_alive(pid) for pid in pids)


def test_a_target_that_kills_its_worker_is_retried_once_then_worker_lost(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    # Given a target whose check ends its worker process every time
    trace = tmp_path / "trace"
    trace.mkdir()
    targets = sim_targets(6)
    plan = plan_for(
        policy_file, targets, crash=["t3"], parent_pid=os.getpid(), trace_dir=str(trace)
    )
    store = Store(tmp_path / "r.db")
    # When the scan runs on worker processes
    pool = ProcessExecutor(2, 2)
    try:
        summary = run_scan(plan, families, store, executor=pool)
    finally:
        pool.shutdown()
    # Then the scan completes; t3 was tried twice (a fresh worker the second time) and
    # is an error with worker_lost; a target sharing the dying worker may be lost with
    # it, never wrongly judged
    assert summary.status == "complete"
    errors = {(f.target, str(f.reason)) for f in store.findings(summary.id, status="error")}
    assert ("sim://t3", "worker_lost") in errors
    assert {reason for _, reason in errors} == {"worker_lost"}
    assert len(list(trace.glob("t3.*"))) == 2
    assert {f.target for f in store.findings(summary.id)} == {t.uri for t in targets}
    assert Counter(p.name.split(".")[0] for p in trace.iterdir())["t0"] >= 1


def test_cli_scan_on_worker_processes(
    tmp_path: Path, policy_file: Path, run_cli: Callable[..., tuple[int, str]]
) -> None:
    db = str(tmp_path / "r.db")
    code, err = run_cli("scan", "sim://a", "sim://b", "sim://down", "-p", str(policy_file),
                        "--db", db, "-q", "--executor", "processes:2")  # fmt: skip
    assert code == 0, err
    store = Store(tmp_path / "r.db")
    found = {(f.target, f.status.value) for f in store.findings(store.latest_scan_id())}
    assert {t for t, _ in found} == {"sim://a", "sim://b", "sim://down"}
    assert ("sim://down", "error") in found


@pytest.mark.parametrize(
    ("url", "expected"),
    [("processes", os.cpu_count() or 1), ("processes:3", 3), ("threads", None),
     ("dask://127.0.0.1:8786", None)],
)  # fmt: skip
def test_processes_urls(url: str, expected: int | None) -> None:
    assert parse_processes(url) == expected


@pytest.mark.parametrize("url", ["processes:0", "processes:-1", "processes:x", "processes:999"])
def test_bad_process_counts_are_refused(url: str) -> None:
    with pytest.raises(OptionError, match="processes:N takes a number of processes"):
        parse_processes(url)


def test_bad_process_counts_exit_2_with_one_line_before_anything_is_scanned(
    tmp_path: Path, policy_file: Path, run_cli: Callable[..., tuple[int, str]]
) -> None:
    for extra in (["--executor", "processes:0"],
                  ["--executor", "processes", "--executor-insecure"]):  # fmt: skip
        code, err = run_cli("scan", "sim://a", "-p", str(policy_file), "--db",
                            str(tmp_path / "r.db"), "-q", *extra)  # fmt: skip
        assert code == 2 and err.count("\n") == 1, err
    assert not (tmp_path / "r.db").exists()


@pytest.mark.parametrize("job", ["pickle", "other_target", "other_key", "bad_type"])
def test_a_rogue_worker_process_runs_no_code_here_and_its_results_are_refused(
    tmp_path: Path,
    policy_file: Path,
    run_cli: Callable[..., tuple[int, str]],
    monkeypatch: pytest.MonkeyPatch,
    job: str,
) -> None:
    # Given worker processes that forge every observation into passing facts, or answer
    # with a pickle whose loading would write the marker in the scanning process
    marker = tmp_path / "marker"
    control = tmp_path / "control.json"
    settings = {"probe": "honest", "job": job, "marker": str(marker), "pid": os.getpid()}
    control.write_text(json.dumps({**settings, "others": ["sim://t0", "sim://t1"]}))
    monkeypatch.setenv("REMPART_ROGUE_CONTROL", str(control))
    monkeypatch.setattr(processes, "serve", rogue_worker.rogue_serve)
    db = tmp_path / "r.db"
    # When a gated scan runs on them
    code, err = run_cli("scan", "sim://t0", "sim://t1", "-p", str(policy_file), "--db",
                        str(db), "-q", "--executor", "processes:1", "--fail-on", "low")  # fmt: skip
    # Then every finding is an error saying the result was refused, the gate fails, and
    # nothing ran here
    assert code == 3, err
    findings = Store(db).findings(Store(db).latest_scan_id())
    assert findings and {(f.status.value, f.reason) for f in findings} == {("error", "bug")}
    assert all("refused" in f.message for f in findings)
    assert {f.target for f in findings} == {"sim://t0", "sim://t1"}
    assert not marker.exists()


SCANNER = textwrap.dedent(
    """
    import sys, time
    sys.path[:0] = [{tests!r}, {here!r}]
    from audit.scale.processes import ProcessExecutor
    pool = ProcessExecutor(2, 2)
    print(" ".join(str(w.process.pid) for w in pool._workers), flush=True)
    time.sleep(60)
    """
)


UNGUARDED = textwrap.dedent(
    """
    import sys
    sys.path[:0] = [{tests!r}, {here!r}]
    from fakes import SIM_FAMILY, demo_policy
    from scale_helpers import plan_for, sim_targets
    from audit.engine import run_scan
    from audit.registry import Families
    from audit.scale.processes import ProcessExecutor
    from audit.store import Store
    from pathlib import Path
    policy = Path({policy!r})
    policy.write_text(demo_policy(exempt_port=8080, version="1.0"))
    families = Families({{"sim": SIM_FAMILY}}, {{"sim": SIM_FAMILY}})
    store = Store({db!r})
    pool = ProcessExecutor(2, 2)
    summary = run_scan(plan_for(policy, sim_targets(6)), families, store, executor=pool)
    pool.shutdown()
    print(sorted({{str(f.reason) for f in store.findings(summary.id)}}))
    """
)


def test_a_script_without_a_main_guard_scans_on_worker_processes(tmp_path: Path) -> None:
    # Given a script that scans at import time, with no `if __name__ == "__main__"`
    script = tmp_path / "scan.py"
    script.write_text(UNGUARDED.format(tests=str(HERE.parent), here=str(HERE),
                                       policy=str(tmp_path / "p.yaml"),
                                       db=str(tmp_path / "r.db")))  # fmt: skip
    # When it runs (workers must not run it again: that lost every target before)
    ran = subprocess.run(
        [sys.executable, str(script)], check=False, capture_output=True, text=True, timeout=60
    )
    # Then every target was observed in a worker and judged
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "['None']", ran.stdout


def test_a_scanning_process_killed_leaves_no_worker_behind(tmp_path: Path) -> None:
    # Given a scanning process with two workers
    code = SCANNER.format(tests=str(HERE.parent), here=str(HERE))
    scanner = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert scanner.stdout is not None
    pids = [int(p) for p in scanner.stdout.readline().split()]
    assert len(pids) == 2 and all(_alive(pid) for pid in pids)
    # When it is killed outright (no cleanup runs)
    scanner.send_signal(signal.SIGKILL)
    scanner.wait(10)
    # Then its workers end too: their pipe closed
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, ended but not yet reaped, counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def test_a_registered_family_goes_to_its_workers_by_name() -> None:
    # Given the aws family after its collectors were imported: the submodule
    # checks.aws.collect now shadows the package's collect function, so plain pickle
    # cannot name that function any more (what a scan in the same process leaves)
    importlib.import_module("checks.aws.collect")
    family = load_families().by_name["aws"]
    with pytest.raises(pickle.PicklingError, match="not the same object"):
        pickle.dumps(family)
    # Then a worker still gets it: by name, loaded from the worker's own registry
    key, value = pickle.loads(processes._definition(family))
    assert key == id(family) and value is family
    # And a family outside the registry (a test's) goes by value
    key, value = pickle.loads(processes._definition(SIM_FAMILY))
    assert value.name == "sim" and value is not SIM_FAMILY


@pytest.mark.slow
def test_the_demo_estate_is_judged_alike_on_threads_and_worker_processes(tmp_path: Path) -> None:
    """Every family of the demo lab (TLS, nmap, AWS on moto, web, DNS, mail, OpenStack…)
    through worker processes: the same findings as on the thread pool, none lost."""
    from audit.lab import _environment, running_lab
    from audit.planning import ScanRequest, build_plan

    families = load_families()
    with running_lab(tmp_path / "lab") as lab, _environment(lab.environment):
        inventory = lab.write_inventory(tmp_path / "inventory.yaml")
        plan = build_plan(ScanRequest(inventory=str(inventory), timeout=30.0), families)
        on_threads, on_processes = judged_on_threads_and_processes(plan, families, tmp_path, 16)
    assert on_processes == on_threads
    assert len(on_threads) > 300
    assert not any(reason == "worker_lost" for _, _, reason in on_processes)
