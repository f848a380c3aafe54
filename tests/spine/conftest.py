"""Fixtures for the engine, store and CLI tests: the ``facts`` family and its policy.

The family itself lives in ``tests/fakes.py`` (shared with the scale, hardening and
bench code), imported by the name ``fakes`` (``tests/conftest.py`` puts ``tests/`` on
``sys.path``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes import FACTS_FAMILY, demo_policy

from audit.registry import Families

__all__ = ["FACTS_FAMILY"]


@pytest.fixture
def families() -> Families:
    return Families({"facts": FACTS_FAMILY}, {"facts": FACTS_FAMILY})


@pytest.fixture
def policy_file(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "demo.yaml"
    path.write_text(demo_policy())
    yield path
