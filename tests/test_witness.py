"""Every documented fact is emitted by some test (the other half of the fact contract).

``tests/tls/test_tls_family.py`` and its peers prove that what a family emits is
documented; this proves that what is documented is emitted, by a real check against a
real server, somewhere in the suite. It needs the whole default run (``tests/conftest.py``
records what was emitted): on a partial run it is skipped.
"""

from __future__ import annotations

import pytest

from audit.registry import load_families
from tests.conftest import EMITTED

NEVER_EMITTED_IN_TESTS: dict[str, str] = {}
"""``type.fact`` → why no test can make a check emit it here."""


def _families_tested(request: pytest.FixtureRequest) -> set[str]:
    """Families whose test directory was collected in this run."""
    collected = {item.nodeid.split("/")[1] for item in request.session.items}
    return {name for name in load_families().by_name if name in collected}


@pytest.mark.parametrize("family", sorted(load_families().by_name))
def test_every_documented_fact_is_emitted_by_some_test(
    family: str, request: pytest.FixtureRequest
) -> None:
    if family not in _families_tested(request) or len(request.session.items) < 500:
        pytest.skip("needs the whole default run")
    missing = []
    for resource_type in load_families().by_name[family].resource_types:
        seen = EMITTED.get(resource_type.name, set())
        for fact in resource_type.facts:
            name = f"{resource_type.name}.{fact.name}"
            if fact.name not in seen and name not in NEVER_EMITTED_IN_TESTS:
                missing.append(name)
    assert not missing, f"documented, never emitted by any test: {missing}"
