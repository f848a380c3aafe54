"""Shared fixtures: one loopback lab and one real nmap scan of it for the whole session.

nmap's service detection costs about 11 s on the full lab (one run per port, in
parallel; the TLS listener is probed twice, each time waiting for a banner), so every
test that needs the lab's facts reads the same observation instead of scanning again.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from audit.models import Observation, Resource, Target
from audit.plugins import CheckContext
from checks.ports import FAMILY
from checks.ports.lab import Lab, exposure_lab

LAB_TIMEOUT_S = 90.0
"""Generous: the scan must not overrun on a loaded machine (the budget logic has its own
tests)."""

requires_nmap = pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap not installed")


def target(uri: str) -> Target:
    """Parse a ``ports://`` URI the way the engine does."""
    return FAMILY.parse(urlsplit(uri), uri)


def scan(uri: str, timeout: float = 30.0, is_root: bool = False) -> Observation:
    """Collect one target with the real nmap."""
    return FAMILY.collect(target(uri), CheckContext(timeout=timeout, is_root=is_root))


def by_key(observation: Observation) -> dict[str, Resource]:
    """Resources of an observation by key."""
    return {resource.key: resource for resource in observation.resources}


@pytest.fixture(scope="session")
def lab() -> Iterator[Lab]:
    """Every lab listener on 127.0.0.1, plus a closed port."""
    with exposure_lab() as running:
        yield running


@pytest.fixture(scope="session")
def lab_observation(lab: Lab) -> Observation:
    """One service-detection scan of the whole lab (shared: it takes ~15 s)."""
    if shutil.which("nmap") is None:
        pytest.skip("nmap not installed")
    return scan(lab.uri(), timeout=LAB_TIMEOUT_S)
