"""What a newcomer meets in the first ten minutes: the Makefile's demo installs only what the
demo needs, the README says how to run ``rempart`` and how to run every test target, and the
build says nothing about the licence (an SPDX expression, no licence classifier)."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
MAKEFILE = (ROOT / "Makefile").read_text()
README = (ROOT / "README.md").read_text()


def make_variable(name: str) -> set[str]:
    done = subprocess.run(
        ["make", "-s", "-f", "-", "show"],
        input=f"{MAKEFILE}\nshow:\n\t@echo $({name})\n",
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return set(done.stdout.split())


def prerequisites(target: str) -> list[str]:
    found = re.search(rf"^{re.escape(target)}:([^\n=]*)$", MAKEFILE, re.MULTILINE)
    assert found, target
    return found.group(1).split()


@pytest.fixture(scope="module")
def packages() -> tuple[set[str], set[str]]:
    try:
        return make_variable("DEMO_PACKAGES"), make_variable("TEST_PACKAGES")
    except FileNotFoundError:
        pytest.skip("make is not installed")


def test_demo_installs_only_what_the_demo_needs(packages: tuple[set[str], set[str]]) -> None:
    demo, test = packages
    assert {"nmap", "openssl", "libpango-1.0-0"} <= demo
    assert not demo & {"chromium", "nginx", "poppler-utils"}
    assert demo < test and {"chromium", "nginx", "poppler-utils", "iproute2"} <= test
    assert "sysdeps-demo" in prerequisites("demo") and "sysdeps" not in prerequisites("demo")
    for target in ("test", "test-slow", "test-oracle"):
        assert "sysdeps" in prerequisites(target), target


def test_readme_says_how_to_run_rempart_and_every_test_target() -> None:
    assert ".venv/bin/rempart" in README and "source .venv/bin/activate" in README
    assert "make install" in README and "pipx" in README
    for target in ("make demo", "make test", "make test-slow", "make test-oracle"):
        assert target in README, target
        assert re.search(rf"^{target.removeprefix('make ')}:", MAKEFILE, re.MULTILINE), target


def test_licence_is_an_spdx_expression() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["project"]["license"] == "EUPL-1.2"
    assert not [c for c in project["project"]["classifiers"] if c.startswith("License ::")]
    (setuptools,) = [r for r in project["build-system"]["requires"] if r.startswith("setuptools")]
    assert setuptools == "setuptools>=77"  # the first to read a licence expression
