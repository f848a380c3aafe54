"""Hostile policy and inventory files: devices, FIFOs, huge files, millions of tiny nodes.

The attacks: ``policies: [/dev/zero]`` read until MemoryError; a 50 MB YAML of tiny nodes
took 8 GB and 113 s before it was refused, because nodes were counted after PyYAML had
composed the whole tree. Each is now refused at once, with exit 2 and the file named.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from audit.yamlfile import MAX_EVENTS, MAX_FILE_BYTES
from tests.hardening.conftest import REPO, rempart

MEMORY_CAP = 1536 << 20
"""Address space given to the child: far below what composing the tiny-node file took."""


def _capped() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


def _scan_capped(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audit", "scan", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_capped,
        check=False,
        env={**os.environ, "REMPART_DB": str(cwd / "r.db")},
    )


def test_a_policy_that_is_a_device_is_refused(tmp_path: Path) -> None:
    run = rempart("scan", "tls://127.0.0.1:9", "-p", "/dev/zero", "--db", str(tmp_path / "r.db"))
    assert run.code == 2, run.err
    assert "/dev/zero: not a regular file" in run.err
    assert "Traceback" not in run.err


def test_an_inventory_naming_a_device_as_policy_is_refused(tmp_path: Path) -> None:
    inventory = tmp_path / "inv.yaml"
    inventory.write_text(
        "systems:\n  - name: S\n    targets: [tls://127.0.0.1:9]\npolicies: [/dev/zero]\n"
    )
    run = rempart("scan", "-i", str(inventory), "--db", str(tmp_path / "r.db"), timeout=30)
    assert run.code == 2, run.err
    assert "not a regular file" in run.err
    assert "Traceback" not in run.err


def test_an_inventory_that_is_a_fifo_does_not_block(tmp_path: Path) -> None:
    fifo = tmp_path / "inv.yaml"
    os.mkfifo(fifo)
    run = rempart("scan", "-i", str(fifo), "--db", str(tmp_path / "r.db"), timeout=30)
    assert run.code == 2, run.err
    assert "not a regular file" in run.err


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: nothing to read, the size says it all
    run = rempart("scan", "tls://127.0.0.1:9", "-p", str(big), "--db", str(tmp_path / "r.db"))
    assert run.code == 2, run.err
    assert "file too large" in run.err


@pytest.mark.parametrize("shape", ["flow-list", "block-map"])
def test_millions_of_tiny_nodes_are_refused_while_parsing(tmp_path: Path, shape: str) -> None:
    # Given a policy file just under the size cap, made of tiny nodes
    policy = tmp_path / "tiny.yaml"
    if shape == "flow-list":
        text = "policy: x\ntitle: [" + "1," * ((MAX_FILE_BYTES - 40) // 2) + "1]\n"
    else:
        text = "policy: x\ntitle: t\nrules:\n" + "".join(
            f"  - {{a{i % 10}: 1}}\n" for i in range(MAX_FILE_BYTES // 16)
        )
    policy.write_text(text)
    assert policy.stat().st_size <= MAX_FILE_BYTES
    # When it is loaded by a process whose memory is capped far below a composed tree
    result = _scan_capped("tls://127.0.0.1:9", "-p", str(policy), cwd=tmp_path)
    # Then it is refused, by name, with a clean exit 2
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"more than {MAX_EVENTS:,} YAML nodes" in result.stderr
    assert "MemoryError" not in result.stderr
