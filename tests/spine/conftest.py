"""Fixtures for the engine, store and CLI tests: the ``facts`` family and its policy.

The family itself lives in ``tests/fakes.py`` (shared with the scale, hardening and
bench code); ``tests/`` goes on ``sys.path`` here so it imports by the name ``fakes``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from fakes import FACTS_FAMILY, demo_policy  # noqa: E402

from audit.registry import Families  # noqa: E402

__all__ = ["FACTS_FAMILY"]


@pytest.fixture
def families() -> Families:
    return Families({"facts": FACTS_FAMILY}, {"facts": FACTS_FAMILY})


@pytest.fixture
def policy_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "demo.yaml"
    path.write_text(demo_policy())
    yield path
