"""The dns part of the demo: its targets point at its own lab, and its fix repairs the zone."""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from audit.labkit.demo import DemoContext
from audit.plugins import CheckContext, Scope
from checks.dns import FAMILY

from .conftest import needs_lab, scan

pytestmark = needs_lab


def test_the_demo_part_scans_its_lab_and_its_fix_leaves_only_dnssec_open(tmp_path: Path) -> None:
    assert FAMILY.demo is not None
    with ExitStack() as stack:
        part = FAMILY.demo(DemoContext(tmp_path, stack))
        assert [t for _, t in part.targets] == ["dns://secure.test", "dns://flawed.test"]
        assert part.policies == ("dns-hygiene",) and "test" in part.domains
        ctx = CheckContext(timeout=10, scope=Scope(networks=part.networks), options=part.options)
        before = scan("dns://flawed.test", ctx).resources[0].facts
        assert before["zone_transfer_open"] and before["recursion_open"]
        assert part.fix is not None
        part.fix()
        # A new scan, a new context: the first scan's DNS answers are not carried over.
        after = scan("dns://flawed.test", replace(ctx, shared={})).resources[0].facts
    # The servers and records are repaired; the zone stays unsigned (still open in the report)
    assert after["dnssec"]["status"] == "insecure" and after["caa"]["present"]
    assert not after["zone_transfer_open"] and not after["recursion_open"]
    assert after["nameserver_network_count"] == 2 and after["soa"]["refresh"] == 7200
