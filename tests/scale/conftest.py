"""Fixtures for the scale-out tests: the ``sim://`` family, a demo policy, Dask clusters.

The family lives in ``tests/fakes.py`` and is imported by module name, so Dask worker
processes can import it too: ``tests/`` goes on ``sys.path`` here (with this directory, for
the helpers) and on ``PYTHONPATH`` for the worker processes a cluster fixture starts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for _path in (HERE, HERE.parent):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from fakes import RUNNING, SIM_FAMILY, demo_policy  # noqa: E402
from scale_helpers import distributed, worker_pythonpath  # noqa: E402

from audit.registry import Families  # noqa: E402


@pytest.fixture
def families() -> Families:
    return Families({"sim": SIM_FAMILY}, {"sim": SIM_FAMILY})


@pytest.fixture
def run_cli(
    families: Families, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., tuple[int, str]]:
    """``rempart ARGS...`` with the sim family: its exit code and standard error."""
    from audit.cli import app as cli

    monkeypatch.setattr(cli, "_families", lambda: families)

    def run(*args: str) -> tuple[int, str]:
        with pytest.raises(SystemExit) as exited:
            cli.main(list(args))
        code = exited.value.code
        return (code if isinstance(code, int) else 1), capsys.readouterr().err

    return run


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(demo_policy(exempt_port=8080, version="1.0"))
    return path


@pytest.fixture(autouse=True)
def fresh_gauge() -> None:
    RUNNING.reset()


@pytest.fixture(scope="module")
def dask_inprocess() -> Iterator[str]:
    """A Dask scheduler and worker threads in this process, reachable over loopback TCP."""
    with distributed().LocalCluster(
        n_workers=1,
        threads_per_worker=4,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",
    ) as cluster:
        yield "dask://" + cluster.scheduler_address.removeprefix("tcp://")


@pytest.fixture(scope="module")
def dask_processes() -> Iterator[str]:
    """Two worker processes (with nannies that restart them) on loopback.

    ``allowed-failures: 0`` makes the scheduler give up on a task at the first lost
    worker, so the engine's own single retry is what the tests see.
    """
    import dask

    with (
        worker_pythonpath(),
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed().LocalCluster(
            n_workers=2,
            threads_per_worker=2,
            processes=True,
            host="127.0.0.1",
            dashboard_address="127.0.0.1:0",
            silence_logs=40,
        ) as cluster,
    ):
        yield "dask://" + cluster.scheduler_address.removeprefix("tcp://")
