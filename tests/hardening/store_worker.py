"""A long scan in a process of its own, for the store fault tests.

    python store_worker.py DB POLICY TARGETS SLEEP VARIANT [PREFIX]

Scans TARGETS targets of the in-process ``facts`` family (tests/fakes.py: no
network, each target sleeps SLEEP seconds and returns two resources) into DB, with the
two-rule demo policy. VARIANT flips which resources fail, so successive scans give
the store new, open, resolved and reopened findings. PREFIX names the targets, so two
workers can scan different targets into one store at once.
"""

from __future__ import annotations

import sys
from pathlib import Path

from audit.engine import ScanPlan, run_scan
from audit.models import Target
from audit.plugins import CheckContext
from audit.policy import load_policy
from audit.registry import Families
from audit.store import Store

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fakes import FACTS_FAMILY  # noqa: E402


def facts_family() -> object:
    return FACTS_FAMILY


def spec_for(prefix: str, count: int, sleep: float, variant: int) -> dict[str, object]:
    spec: dict[str, object] = {}
    for i in range(count):
        port = 22 if (i + variant) % 3 == 0 else 443
        tags = ["owner"] if (i * 7 + variant) % 4 else []
        spec[f"{prefix}{i}"] = {
            "sleep": sleep,
            "resources": [
                {"key": f"item://{prefix}{i}/a", "facts": {"port": port, "tags": tags}},
                {"key": f"item://{prefix}{i}/b", "facts": {"port": 80, "tags": ["owner"]}},
            ],
        }
    return spec


def main() -> None:
    db, policy, count, sleep, variant = sys.argv[1:6]
    prefix = sys.argv[6] if len(sys.argv) > 6 else "t"
    family = facts_family()
    spec = spec_for(prefix, int(count), float(sleep), int(variant))
    plan = ScanPlan(
        targets=tuple(Target(f"facts://{name}", "facts", "127.0.0.1") for name in spec),
        policies=(load_policy(Path(policy), {"demo.item"}),),
        context=CheckContext(options={"facts": spec}),
        concurrency=4,
    )
    families = Families({"facts": family}, {"facts": family})  # type: ignore[dict-item]
    summary = run_scan(plan, families, Store(db))
    print(summary.id, summary.status, flush=True)


if __name__ == "__main__":
    main()
