"""Hostile strings never reach a command line, YAML never builds objects, policies
cannot reach the outside world.

The nmap on ``PATH`` is a small program of ours that appends its argv to a log, then
execs the real nmap: what is asserted is the argv a real scan really ran.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from jmespath.functions import Functions

from checks.ports.lab import http_server

from .conftest import rempart

REAL_NMAP = shutil.which("nmap")
pytestmark = pytest.mark.skipif(REAL_NMAP is None, reason="nmap not installed")

HOSTILE = [
    "x; touch {canary}",
    "$(touch {canary})",
    "`touch {canary}`",
    "a\n--script=http-title\n-oN {canary}",
    "--datadir={canary}",
    "' -iL /etc/passwd '",
]
FIXED_FLAGS = {
    "-oX", "-", "-p", "-sT", "-sS", "-sV", "-Pn", "-n", "-T4", "-6", "-V",
    "--host-timeout", "--top-ports", "--unprivileged", "--version-intensity",
}  # fmt: skip


@pytest.fixture
def recording_nmap(tmp_path: Path) -> Iterator[tuple[dict[str, str], Path]]:
    """A PATH whose ``nmap`` logs its argv (one JSON list a line) and runs the real one."""
    bin_dir, log = tmp_path / "bin", tmp_path / "nmap-argv.log"
    bin_dir.mkdir()
    wrapper = bin_dir / "nmap"
    wrapper.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(log)!r}, 'a') as out:\n"
        "    out.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        f"os.execv({REAL_NMAP!r}, [{REAL_NMAP!r}] + sys.argv[1:])\n"
    )
    wrapper.chmod(0o755)
    yield {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, log


def recorded(log: Path) -> list[list[str]]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_hostile_inventory_strings_never_reach_nmap(
    tmp_path: Path, recording_nmap: tuple[dict[str, str], Path]
) -> None:
    # Given an inventory whose system name, owner and description are shell and nmap
    # syntax, around one real listener
    env, log = recording_nmap
    canary = tmp_path / "pwned"
    words = [json.dumps(w.format(canary=canary)) for w in HOSTILE]
    with http_server() as listener, http_server() as other:
        inventory = tmp_path / "inventory.yaml"
        inventory.write_text(
            f"systems:\n  - name: {words[0]}\n    owner: {words[1]}\n"
            f"    description: {words[3]}\n"
            f"    targets: ['ports://127.0.0.1?ports={listener.port}&sv=0']\n"
            f"  - name: {words[4]}\n    owner: {words[5]}\n"
            f"    targets: ['ports://localhost?ports={other.port}&sv=0']\n"
        )
        # When it is scanned with the real nmap behind the recording wrapper
        run = rempart(
            "scan", "-i", str(inventory), "-p", "exposure-baseline", "--db",
            str(tmp_path / "r.db"), "-o", str(tmp_path / "r.json"), "--quiet",
            env=env, cwd=tmp_path,
        )  # fmt: skip
    # Then the scan worked, and every argument nmap got is a fixed flag, a number we
    # computed, a validated address or the port list
    assert run.code == 0, run.err
    scans = [argv for argv in recorded(log) if "-oX" in argv]
    assert len(scans) == 2
    allowed = FIXED_FLAGS | {"127.0.0.1", str(listener.port), str(other.port)}
    for argv in scans:
        unknown = [a for a in argv if a not in allowed and not a.rstrip("ms").isdigit()]
        assert unknown == [], argv
    assert not canary.exists()
    report = json.loads((tmp_path / "r.json").read_text())
    assert {f["system"] for f in report["findings"]} == {
        HOSTILE[0].format(canary=canary),
        HOSTILE[4].format(canary=canary),
    }


@pytest.mark.parametrize(
    "target",
    [
        "ports://127.0.0.1;touch {canary}",
        "ports://-iL/etc/passwd",
        "ports://127.0.0.1?ports=22%20-oN{canary}",
        "ports://$(touch {canary})",
        "--script=http-title",
        "ports://127.0.0.1?ports=22&sv=0%0a-oN{canary}",
    ],
)
def test_hostile_targets_are_refused_before_nmap_runs(
    tmp_path: Path, recording_nmap: tuple[dict[str, str], Path], target: str
) -> None:
    env, log = recording_nmap
    canary = tmp_path / "pwned"
    run = rempart(
        "scan", "--db", str(tmp_path / "r.db"), "--", target.format(canary=canary),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert run.code == 2 and run.err.startswith("rempart: error:"), run.err
    assert len(run.err.strip().splitlines()) == 1
    assert recorded(log) == [] and not canary.exists()
    assert not (tmp_path / "r.db").exists()


@pytest.mark.parametrize("kind", ["policy", "inventory"])
def test_yaml_cannot_construct_python_objects(tmp_path: Path, kind: str) -> None:
    # Given a file whose YAML asks for a Python object that would create the canary
    canary = tmp_path / "pwned"
    path = tmp_path / f"{kind}.yaml"
    path.write_text(
        f'policy: !!python/object/apply:os.system ["touch {canary}"]\ntitle: T\n'
        if kind == "policy"
        else f'executor: !!python/object/apply:os.system ["touch {canary}"]\n'
    )
    args = ["-p", str(path)] if kind == "policy" else ["-i", str(path)]
    # When it is used, then it is refused as input and nothing ran
    run = rempart("scan", "tls://127.0.0.1:1", *args, "--db", str(tmp_path / "r.db"))
    assert run.code == 2 and "unsupported tag" in run.err, run.err
    assert not canary.exists()


def test_policy_keys_can_only_call_pure_jmespath_functions() -> None:
    # The policy language's only code is JMESPath; its function table is the spec's pure
    # functions (no file, network or environment access). A new one must be reviewed.
    assert set(Functions.FUNCTION_TABLE) == {
        "abs", "avg", "ceil", "contains", "ends_with", "floor", "join", "keys", "length",
        "map", "max", "max_by", "merge", "min", "min_by", "not_null", "reverse", "sort",
        "sort_by", "starts_with", "sum", "to_array", "to_number", "to_string", "type", "values",
    }  # fmt: skip
