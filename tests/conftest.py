"""Suite-wide witness: which documented facts the tests saw a check emit.

Every :class:`~audit.models.Resource` built in this process is recorded (its fact paths:
``certificate.days_left`` for nested mappings, not into lists). The last test of the run,
``tests/test_witness.py``, then checks that every documented fact was emitted by some
test: a fact nobody ever saw emitted is a contract no test holds.

It also puts ``tests/`` on ``sys.path``, so every test imports the shared helpers of
``tests/fakes.py`` by the name ``fakes``, whichever files a run selects.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from audit.models import Resource

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

EMITTED: dict[str, set[str]] = defaultdict(set)
"""Resource type → fact paths some resource of that type carried (set or unknown)."""


def _paths(facts: Mapping[str, Any], prefix: str = "") -> Iterator[str]:
    for name, value in facts.items():
        path = f"{prefix}{name}"
        yield path
        if isinstance(value, Mapping):
            yield from _paths(value, path + ".")


def _recording(init: Any) -> Any:
    def record(self: Resource, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if isinstance(self.facts, Mapping):  # fuzz tests build resources of any shape
            seen = EMITTED[str(self.type)]
            seen.update(_paths(self.facts))
            seen.update(str(name) for name in self.unknown or ())

    return record


def pytest_configure(config: pytest.Config) -> None:
    Resource.__init__ = _recording(Resource.__init__)  # type: ignore[method-assign]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The witness runs last, after every test that could emit facts."""
    last = [item for item in items if item.nodeid.startswith("tests/test_witness.py")]
    items[:] = [item for item in items if item not in last] + last
