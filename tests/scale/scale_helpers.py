"""Helpers shared by the scale tests (imported by name; see conftest.py)."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from audit.engine import ScanPlan
from audit.models import Target
from audit.plugins import CheckContext
from audit.policy import load_policy
from audit.store import Store

HERE = Path(__file__).resolve().parent


@contextmanager
def worker_pythonpath() -> Iterator[None]:
    """PYTHONPATH for spawned worker processes, restored afterwards."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(HERE.parent), str(HERE), before) if p
    )
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = before


def sim_targets(count: int, prefix: str = "t") -> tuple[Target, ...]:
    return tuple(Target(f"sim://{prefix}{i}", "sim", "127.0.0.1") for i in range(count))


def plan_for(
    policy_file: Path,
    targets: tuple[Target, ...],
    *,
    concurrency: int = 8,
    inventory: str | None = "inventory.yaml",
    **options: Any,
) -> ScanPlan:
    policy = load_policy(policy_file, {"demo.item"})
    return ScanPlan(
        targets=targets,
        policies=(policy,),
        context=CheckContext(timeout=5.0, options={"sim": options}),
        inventory=inventory,
        concurrency=concurrency,
    )


def outcomes(store: Store, scan_id: int) -> dict[str, tuple[str, str | None]]:
    """fingerprint → (status, reason) of a scan."""
    return {
        f.fingerprint: (f.status.value, f.reason.value if f.reason else None)
        for f in store.findings(scan_id)
    }


def lifecycles(store: Store, scan_id: int) -> dict[str, tuple[str, str | None]]:
    """fingerprint → (status, lifecycle) of a scan."""
    return {
        f.fingerprint: (f.status.value, f.lifecycle.value if f.lifecycle else None)
        for f in store.findings(scan_id)
    }


def distributed() -> Any:
    """The ``distributed`` package, untyped (its constructors carry no annotations)."""
    return importlib.import_module("distributed")
