"""The compiled-policy cache: a hit is the same Policy; anything doubtful is recompiled.

A security tool's cache is a place an attacker would plant a file, so a file that is not
ours, is writable by others, is a link, or does not check out is ignored, never trusted
and never an error.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import audit.policyfile
from audit import cache, policycache
from audit.policy import Policy, load_policy
from audit.registry import builtin_policies, load_families

POLICY = """\
policy: demo
title: Demo
rules:
  - id: DEMO-PORT-001
    title: Only allowed ports
    resource: demo.item
    expect: {key: port, op: in, value: [80, 443]}
    severity: high
    remediation: Close it.
"""
KNOWN = {"demo.item": {"port", "tags"}}


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache directory, and the cache switched on."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv(cache.DISABLE_ENV, raising=False)
    return tmp_path / "cache" / "rempart"


@pytest.fixture
def compiles(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The sources compiled from YAML (a cache hit adds nothing)."""
    seen: list[str] = []
    real = audit.policyfile.compile_document

    def counting(doc: Any, catalogue: Any) -> Policy:
        seen.append(doc.source)
        return real(doc, catalogue)

    monkeypatch.setattr(audit.policyfile, "compile_document", counting)
    return seen


@pytest.fixture
def pack(tmp_path: Path) -> Path:
    path = tmp_path / "demo.yaml"
    path.write_text(POLICY)
    return path


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("policy-*.json"))


def only_entry(directory: Path) -> Path:
    (entry,) = entries(directory)
    return entry


@pytest.fixture(scope="module")
def catalogue() -> dict[str, frozenset[str]]:
    return load_families().fact_catalogue()


@pytest.mark.parametrize("name", sorted(builtin_policies()))
def test_a_hit_is_the_policy_a_fresh_load_gives(
    name: str, catalogue: dict[str, frozenset[str]], compiles: list[str]
) -> None:
    path = builtin_policies()[name]
    fresh = load_policy(path, catalogue)
    first = load_policy(path, catalogue, cached=True)
    hit = load_policy(path, catalogue, cached=True)
    assert hit == first == fresh
    assert compiles == [str(path)] * 2  # the plain load, the miss; never the hit


def test_the_directory_is_private_and_entries_are_private(
    pack: Path, cache_home: Path, compiles: list[str]
) -> None:
    load_policy(pack, KNOWN, cached=True)
    assert stat.S_IMODE(cache_home.stat().st_mode) == 0o700
    assert stat.S_IMODE(only_entry(cache_home).stat().st_mode) == 0o600
    assert not list(cache_home.glob(".*.tmp"))


def test_an_edited_pack_is_compiled_again(pack: Path, compiles: list[str]) -> None:
    load_policy(pack, KNOWN, cached=True)
    pack.write_text(POLICY.replace("[80, 443]", "[443]"))
    policy = load_policy(pack, KNOWN, cached=True)
    assert policy.rules[0].expect.value == [443]  # type: ignore[union-attr]
    assert len(compiles) == 2


def test_an_entry_for_other_content_is_not_used(
    pack: Path, cache_home: Path, compiles: list[str]
) -> None:
    """An entry whose payload and digest agree, but keyed to other content, is ignored."""
    load_policy(pack, KNOWN, cached=True)
    entry = only_entry(cache_home)
    data = json.loads(entry.read_bytes())
    data["policy"]["rules"][0]["severity"] = "info"
    data["digest"] = cache._payload_digest(data["policy"])
    data["key"] = "0" * 64
    entry.write_text(json.dumps(data))
    assert load_policy(pack, KNOWN, cached=True).rules[0].severity == "high"
    assert len(compiles) == 2


def test_a_changed_rule_in_the_entry_is_not_used(
    pack: Path, cache_home: Path, compiles: list[str]
) -> None:
    load_policy(pack, KNOWN, cached=True)
    entry = only_entry(cache_home)
    data = json.loads(entry.read_bytes())
    data["policy"]["rules"][0]["severity"] = "info"
    entry.write_text(json.dumps(data))
    assert load_policy(pack, KNOWN, cached=True).rules[0].severity == "high"
    assert len(compiles) == 2


def test_another_fact_catalogue_is_another_entry(pack: Path, compiles: list[str]) -> None:
    load_policy(pack, KNOWN, cached=True)
    with pytest.raises(Exception, match="no fact 'port'"):
        load_policy(pack, {"demo.item": {"tags"}}, cached=True)
    assert len(compiles) == 2


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"\x00\xff not json",
        b'{"format": 1, "key": "',
        b"[]",
        b'{"format": 1}',
    ],
)
def test_a_corrupt_entry_is_ignored(
    damage: bytes, pack: Path, cache_home: Path, compiles: list[str]
) -> None:
    fresh = load_policy(pack, KNOWN, cached=True)
    only_entry(cache_home).write_bytes(damage)
    assert load_policy(pack, KNOWN, cached=True) == fresh
    assert len(compiles) == 2
    assert load_policy(pack, KNOWN, cached=True) == fresh  # rewritten, then a hit
    assert len(compiles) == 2


def test_a_well_formed_entry_of_the_wrong_shape_is_ignored(
    pack: Path, cache_home: Path, compiles: list[str]
) -> None:
    """Right key and digest, wrong shape (a title that is a number): recompiled."""
    fresh = load_policy(pack, KNOWN, cached=True)
    entry = only_entry(cache_home)
    data = json.loads(entry.read_bytes())
    data["policy"]["rules"][0]["title"] = 7
    data["policy"]["rules"][0]["expect"] = {"teleport": []}
    data["digest"] = cache._payload_digest(data["policy"])
    entry.write_text(json.dumps(data))
    assert load_policy(pack, KNOWN, cached=True) == fresh
    assert len(compiles) == 2


@pytest.mark.parametrize("mode", [0o666, 0o620, 0o602])
def test_an_entry_writable_by_others_is_ignored(
    mode: int, pack: Path, cache_home: Path, compiles: list[str]
) -> None:
    load_policy(pack, KNOWN, cached=True)
    only_entry(cache_home).chmod(mode)
    load_policy(pack, KNOWN, cached=True)
    assert len(compiles) == 2


def test_a_directory_writable_by_others_is_neither_read_nor_written(
    pack: Path, cache_home: Path, compiles: list[str]
) -> None:
    load_policy(pack, KNOWN, cached=True)
    cache_home.chmod(0o777)
    entry = only_entry(cache_home)
    before = entry.stat().st_mtime_ns
    load_policy(pack, KNOWN, cached=True)
    assert len(compiles) == 2
    assert entry.stat().st_mtime_ns == before


def test_an_entry_owned_by_another_user_is_ignored(
    pack: Path, cache_home: Path, compiles: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    load_policy(pack, KNOWN, cached=True)
    if os.geteuid() == 0:
        os.chown(only_entry(cache_home), 4242, 4242)
    else:  # the files are ours; being someone else makes them foreign all the same
        monkeypatch.setattr(os, "getuid", lambda: os.geteuid() + 1)
    load_policy(pack, KNOWN, cached=True)
    assert len(compiles) == 2


def test_a_directory_owned_by_another_user_is_ignored(
    pack: Path, cache_home: Path, compiles: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    load_policy(pack, KNOWN, cached=True)
    if os.geteuid() == 0:
        os.chown(cache_home, 4242, 4242)
    else:
        monkeypatch.setattr(os, "getuid", lambda: os.geteuid() + 1)
    load_policy(pack, KNOWN, cached=True)
    assert len(compiles) == 2


def test_a_symlinked_entry_is_not_followed(
    pack: Path, cache_home: Path, tmp_path: Path, compiles: list[str]
) -> None:
    load_policy(pack, KNOWN, cached=True)
    entry = only_entry(cache_home)
    planted = tmp_path / "planted.json"
    planted.write_bytes(entry.read_bytes())
    planted.chmod(0o600)
    entry.unlink()
    entry.symlink_to(planted)
    load_policy(pack, KNOWN, cached=True)
    assert len(compiles) == 2


def test_a_symlinked_directory_is_not_followed(
    pack: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compiles: list[str]
) -> None:
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "rempart").symlink_to(real)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "linked"))
    load_policy(pack, KNOWN, cached=True)
    load_policy(pack, KNOWN, cached=True)
    assert len(compiles) == 2
    assert not list(real.iterdir())


def test_rempart_no_cache_turns_it_off(
    pack: Path, cache_home: Path, compiles: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(cache.DISABLE_ENV, "1")
    load_policy(pack, KNOWN, cached=True)
    load_policy(pack, KNOWN, cached=True)
    assert len(compiles) == 2
    assert not cache_home.exists()


def test_a_value_json_cannot_carry_is_compiled_every_time(
    tmp_path: Path, cache_home: Path, compiles: list[str]
) -> None:
    """A YAML date would come back as text: such a pack is never cached, still loads."""
    path = tmp_path / "dated.yaml"
    path.write_text(POLICY.replace("op: in, value: [80, 443]", "op: eq, value: 2024-01-31"))
    first = load_policy(path, KNOWN, cached=True)
    assert load_policy(path, KNOWN, cached=True) == first
    assert len(compiles) == 2
    assert not entries(cache_home)


def test_a_faulty_pack_raises_as_without_the_cache(pack: Path) -> None:
    pack.write_text(POLICY.replace("op: in", "op: teleport"))
    with pytest.raises(Exception, match="unknown operator") as cached:
        load_policy(pack, KNOWN, cached=True)
    with pytest.raises(Exception, match="unknown operator") as plain:
        load_policy(pack, KNOWN)
    assert str(cached.value) == str(plain.value)


def test_an_unreadable_path_raises_as_without_the_cache(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="file not found"):
        load_policy(tmp_path / "absent.yaml", KNOWN, cached=True)


def test_a_key_that_cannot_be_computed_means_a_fresh_compilation(
    pack: Path, compiles: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable() -> bytes:
        raise PermissionError("catalogue unreadable")

    monkeypatch.setattr(policycache, "catalogues_digest", unreadable)
    load_policy(pack, KNOWN, cached=True)
    assert compiles == [str(pack)]


def test_no_home_and_no_xdg_cache_home_means_no_cache(
    pack: Path, compiles: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.delenv("HOME", raising=False)

    def no_home(cls: type[Path]) -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.setattr(Path, "home", classmethod(no_home))
    load_policy(pack, KNOWN, cached=True)
    load_policy(pack, KNOWN, cached=True)
    assert len(compiles) == 2


def test_the_key_covers_the_framework_catalogues_that_rules_are_checked_against() -> None:
    from audit import frameworks

    assert policycache.catalogues_digest is frameworks.catalogues_digest


@pytest.fixture
def warm_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}


def test_a_warm_scan_plan_imports_no_policy_validation(warm_env: dict[str, str]) -> None:
    """The point of the cache: once warm, building a plan never loads the validator."""
    code = (
        "import sys\n"
        "from audit.planning import ScanRequest, build_plan\n"
        "from audit.registry import load_families\n"
        "build_plan(ScanRequest(targets=['tls://127.0.0.1:1'], policies=['anssi-tls']),"
        " load_families())\n"
        "print('audit.policyfile' in sys.modules)\n"
    )
    run = [sys.executable, "-c", code]
    cold = subprocess.run(run, env=warm_env, capture_output=True, text=True, check=True)
    warm = subprocess.run(run, env=warm_env, capture_output=True, text=True, check=True)
    assert (cold.stdout.strip(), warm.stdout.strip()) == ("True", "False")


def test_a_warm_scan_imports_neither_pydantic_nor_sqlite_utils(
    warm_env: dict[str, str], tmp_path: Path
) -> None:
    """Past the first run, a scan's fixed cost holds no validation: the packs, the
    framework catalogues (score snapshot) and the store's expected schema come from the
    cache. A scan of an unreachable endpoint goes through every stage: plan, store,
    findings, scores and the JSON report."""
    db, report = tmp_path / "r.db", tmp_path / "r.json"
    code = (
        "import sys\n"
        "from audit.cli import app\n"
        "try:\n"
        f"    app.main(['scan', 'tls://127.0.0.1:1', '-p', 'anssi-tls', '--db', {str(db)!r},"
        f" '-o', {str(report)!r}, '-q', '--timeout', '2'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in ('pydantic', 'sqlite_utils', 'yaml') if m in sys.modules))\n"
    )
    run = [sys.executable, "-c", code]
    cold = subprocess.run(run, env=warm_env, capture_output=True, text=True, check=True)
    warm = subprocess.run(run, env=warm_env, capture_output=True, text=True, check=True)
    assert "pydantic" in cold.stdout, cold.stderr
    assert warm.stdout.strip().splitlines()[-1] == "[]", warm.stderr
    assert json.loads(report.read_text())["scan"]["id"] == 2


def test_cached_catalogues_are_the_validated_ones_and_a_bad_entry_is_ignored(
    cache_home: Path,
) -> None:
    from audit import frameworks
    from audit.frameworkfile import validate_file

    frameworks.load_catalogues.cache_clear()
    first = frameworks.load_catalogues()
    entry = cache_home / "frameworks.json"
    assert entry.is_file()
    frameworks.load_catalogues.cache_clear()
    assert frameworks.load_catalogues() == first
    for path in sorted(frameworks.catalogue_dir().glob("*.yaml")):
        assert first[path.stem] == validate_file(path)
    # An entry edited after it was written (a control renamed) is not used
    data = json.loads(entry.read_text())
    data["policy"]["nis2"]["controls"][0]["title"] = "forged"
    entry.write_text(json.dumps(data))
    frameworks.load_catalogues.cache_clear()
    assert frameworks.load_catalogues() == first
    frameworks.load_catalogues.cache_clear()
