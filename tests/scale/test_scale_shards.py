"""Shards and merge: N slices + merge equal one scan, history included; refusals exit 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from scale_helpers import lifecycles, outcomes, plan_for, sim_targets

from audit.cli import app as cli
from audit.engine import run_scan
from audit.errors import OptionError
from audit.models import Target
from audit.registry import Families
from audit.scale.merge import merge_stores
from audit.scale.sharding import parse_shard, select_shard, shard_of
from audit.store import Store

TARGETS = (*sim_targets(30), Target("sim://down1", "sim", "127.0.0.1"))


def sharded_run(
    tmp_path: Path,
    policy_file: Path,
    families: Families,
    tag: str,
    count: int = 3,
    **options: Any,
) -> list[Path]:
    """Run every shard of one plan, each into its own store; return the store paths."""
    plan = plan_for(policy_file, TARGETS, **options)
    paths = []
    for k in range(1, count + 1):
        path = tmp_path / f"{tag}-shard{k}.db"
        store = Store(path)
        run_scan(select_shard(plan, f"{k}/{count}"), families, store)
        store.close()
        paths.append(path)
    return paths


def unsharded_run(store: Store, policy_file: Path, families: Families, **options: Any) -> int:
    return run_scan(plan_for(policy_file, TARGETS, **options), families, store).id


# --- slicing ---------------------------------------------------------------------------


def test_shards_partition_the_targets() -> None:
    # Given 1,000 URIs split 7 ways
    uris = [f"tls://host{i}.example.gouv.fr:443" for i in range(1000)]
    slices = [{u for u in uris if parse_shard(f"{k}/7").holds(u)} for k in range(1, 8)]
    # Then every URI is in exactly one slice, and the slices are roughly even
    assert set().union(*slices) == set(uris)
    assert sum(len(s) for s in slices) == len(uris)
    assert all(100 <= len(s) <= 190 for s in slices)


def test_shards_are_stable_across_processes() -> None:
    # Given the slices computed here and in a fresh interpreter (another hash salt)
    uris = [f"ports://10.0.{i}.0/28" for i in range(50)]
    code = (
        "import json, sys; from audit.scale.sharding import shard_of; "
        "print(json.dumps([shard_of(u, 5) for u in json.loads(sys.argv[1])]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, json.dumps(uris)],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345"},
    ).stdout
    # Then they agree
    assert json.loads(out) == [shard_of(u, 5) for u in uris]


def test_select_shard_keeps_everything_but_targets(policy_file: Path) -> None:
    plan = plan_for(policy_file, TARGETS)
    shard = select_shard(plan, "2/3")
    assert set(shard.targets) < set(plan.targets)
    assert (shard.policies, shard.context, shard.inventory) == (
        plan.policies,
        plan.context,
        plan.inventory,
    )
    assert select_shard(plan, "1/1").targets == plan.targets


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "expected K/N"),
        ("3", "expected K/N"),
        ("a/b", "expected K/N"),
        ("1/3/5", "expected K/N"),
        ("-1/3", "expected K/N"),
        ("0/3", "K must be between 1 and N"),
        ("4/3", "K must be between 1 and N"),
        ("1/0", "N must be between 1 and 10000"),
        ("1/20000", "N must be between 1 and 10000"),
    ],
)
def test_bad_shard_specs_are_refused(spec: str, message: str) -> None:
    with pytest.raises(OptionError, match=message) as raised:
        parse_shard(spec)
    assert "\n" not in str(raised.value)


# --- merge equals one scan -------------------------------------------------------------


def test_three_shards_merged_equal_the_unsharded_scan(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    # Given the same inventory scanned whole, and in 3 shards merged into a fresh store
    reference = Store(tmp_path / "reference.db")
    whole = unsharded_run(reference, policy_file, families)
    shards = sharded_run(tmp_path, policy_file, families, "r1")
    result = merge_stores(tmp_path / "merged.db", shards)
    merged = Store(tmp_path / "merged.db")
    # Then fingerprints, statuses and lifecycles are the same, and so are the counts
    assert result.is_new and result.status == "complete"
    assert outcomes(merged, result.scan_id) == outcomes(reference, whole)
    assert lifecycles(merged, result.scan_id) == lifecycles(reference, whole)
    assert merged.scan(result.scan_id).counts == reference.scan(whole).counts
    assert _observed(merged, result.scan_id) == _observed(reference, whole)
    assert {r.key for r in merged.resources(result.scan_id)} == {
        r.key for r in reference.resources(whole)
    }
    assert result.targets == len(TARGETS)


def _observed(store: Store, scan_id: int) -> dict[str, dict[str, Any]]:
    """Every field of every finding but when it was first seen."""
    return {
        f.fingerprint: {k: v for k, v in f.to_json().items() if k != "first_seen"}
        for f in store.findings(scan_id)
    }


def test_merge_keeps_history_like_an_unsharded_store(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    # Given four rounds where facts change (new, open, resolved, reopened all occur),
    # scanned whole into one store, and sharded + merged into another (the shard stores
    # are kept from round to round: only their latest scan is merged)
    reference = Store(tmp_path / "reference.db")
    out = tmp_path / "merged.db"
    seen: set[str] = set()
    for round_ in (1, 2, 3, 4):
        whole = unsharded_run(reference, policy_file, families, round=round_)
        shards = sharded_run(tmp_path, policy_file, families, "kept", round=round_)
        result = merge_stores(out, shards)
        merged = Store(out)
        # Then each merged scan has the lifecycle the unsharded scan computed
        assert lifecycles(merged, result.scan_id) == lifecycles(reference, whole)
        seen |= {lc for _, lc in lifecycles(merged, result.scan_id).values() if lc}
        merged.close()
    assert {"new", "open", "resolved", "reopened"} <= seen
    # And first-seen dates carry over from the first merged scan that saw a failure
    merged = Store(out)
    scans = [s.id for s in merged.scans()]
    first = {f.fingerprint: f.first_seen for f in merged.findings(scans[0], status="fail")}
    for f in merged.findings(scans[1], status="fail"):
        if f.lifecycle and f.lifecycle.value == "open":
            assert f.first_seen == first[f.fingerprint]


def test_remerge_changes_nothing(tmp_path: Path, policy_file: Path, families: Families) -> None:
    # Given shards merged once
    shards = sharded_run(tmp_path, policy_file, families, "r1")
    out = tmp_path / "merged.db"
    first = merge_stores(out, shards)
    before = _dump(out)
    # When the same stores are merged again (in another order)
    again = merge_stores(out, list(reversed(shards)))
    # Then nothing changed and the existing scan is reported
    assert not again.is_new and again.scan_id == first.scan_id
    assert _dump(out) == before


def _dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    store = Store(path, readonly=True)
    tables = ("scans", "resources", "findings", "finding_events")
    dump = {t: [tuple(r) for r in store.conn.execute(f"SELECT * FROM {t}")] for t in tables}
    store.close()
    return dump


def test_merge_of_an_interrupted_shard_is_interrupted(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    shards = sharded_run(tmp_path, policy_file, families, "r1")
    store = Store(shards[1])
    store.finish_scan(store.latest_scan_id(), "interrupted")
    store.close()
    assert merge_stores(tmp_path / "merged.db", shards).status == "interrupted"


def test_empty_shard_merges(tmp_path: Path, policy_file: Path, families: Families) -> None:
    # Given more shards than targets: some shards scan nothing
    plan = plan_for(policy_file, sim_targets(2))
    paths = []
    for k in range(1, 6):
        paths.append(tmp_path / f"s{k}.db")
        run_scan(select_shard(plan, f"{k}/5"), families, Store(paths[-1]))
    # Then they still merge into one complete scan of both targets
    result = merge_stores(tmp_path / "merged.db", paths)
    assert result.status == "complete" and result.targets == 2


# --- refusals --------------------------------------------------------------------------


def test_merge_refuses_mixed_inventories(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    a = sharded_run(tmp_path, policy_file, families, "a", count=2)
    b = sharded_run(tmp_path, policy_file, families, "b", count=2, inventory="other.yaml")
    with pytest.raises(OptionError, match="only shards of one inventory"):
        merge_stores(tmp_path / "merged.db", [a[0], b[1]])


def test_merge_refuses_mixed_policy_versions(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    a = sharded_run(tmp_path, policy_file, families, "a", count=2)
    policy_file.write_text(policy_file.read_text().replace('version: "1.0"', 'version: "2.0"'))
    b = sharded_run(tmp_path, policy_file, families, "b", count=2)
    with pytest.raises(OptionError, match="same policy versions"):
        merge_stores(tmp_path / "merged.db", [a[0], b[1]])


def test_merge_counts_a_scan_once_and_refuses_partial_remerges(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    # Given a shard store and a copy of it
    shards = sharded_run(tmp_path, policy_file, families, "r1")
    copy = tmp_path / "copy.db"
    copy.write_bytes(shards[0].read_bytes())
    # Then merging both merges one scan
    result = merge_stores(tmp_path / "once.db", [shards[0], copy, shards[1]])
    assert result.sources == 2
    # And stores merged once with other stores cannot join a new merge
    merge_stores(tmp_path / "merged.db", shards[:2])
    with pytest.raises(OptionError, match="already merged into scan #1 with other stores"):
        merge_stores(tmp_path / "merged.db", shards)


def test_merge_refuses_an_older_run(tmp_path: Path, policy_file: Path, families: Families) -> None:
    # Given run 1 and run 2 sharded, and run 2 merged first
    old = sharded_run(tmp_path, policy_file, families, "r1")
    sharded_run(tmp_path, policy_file, families, "r2", round=2)
    new = sharded_run(tmp_path, policy_file, families, "r2", round=2)
    out = tmp_path / "merged.db"
    merge_stores(out, new)
    store = Store(out)
    store.conn.execute("UPDATE scans SET started_at = '2999-01-01T00:00:00+00:00'")
    store.close()
    # Then run 1 is refused: its history would be computed out of order
    with pytest.raises(OptionError, match="in the order scans ran"):
        merge_stores(out, old)


def test_merge_refuses_a_concurrent_merge(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    # Given another process merging into the same store (it holds the merge lock)
    import fcntl

    shards = sharded_run(tmp_path, policy_file, families, "r1")
    out = tmp_path / "merged.db"
    Store(out).close()
    with open(out, "rb") as other:
        fcntl.flock(other, fcntl.LOCK_EX)
        # Then a second merge stops with one line instead of merging twice
        with pytest.raises(OptionError, match="another merge into this store is running"):
            merge_stores(out, shards)
    assert merge_stores(out, shards).is_new


def test_merge_refuses_output_among_inputs_and_missing_inputs(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    shards = sharded_run(tmp_path, policy_file, families, "r1", count=2)
    with pytest.raises(OptionError, match="is the output store"):
        merge_stores(shards[0], shards)
    from audit.errors import StoreError

    with pytest.raises(StoreError, match="no such store"):
        merge_stores(tmp_path / "merged.db", [tmp_path / "missing.db"])
    Store(tmp_path / "empty.db").close()
    with pytest.raises(OptionError, match="holds no scan"):
        merge_stores(tmp_path / "merged.db", [tmp_path / "empty.db"])


def test_merge_checks_the_slices_when_told_how_many(
    tmp_path: Path, policy_file: Path, families: Families
) -> None:
    # Given a 3-way run, a second run of shard 1, and an unsharded scan of the inventory
    shards = sharded_run(tmp_path, policy_file, families, "r1")
    (tmp_path / "older.db").write_bytes(shards[0].read_bytes())
    rerun = Store(shards[0])  # the same store scanned again: its latest is scan #2
    run_scan(select_shard(plan_for(policy_file, TARGETS), "1/3"), families, rerun)
    rerun.close()
    whole = Store(tmp_path / "whole.db")
    unsharded_run(whole, policy_file, families)
    whole.close()
    out = tmp_path / "merged.db"
    # Then a missing shard, a slice given twice, or a store that is not a slice are refused
    with pytest.raises(OptionError, match="got 2 distinct shard scan"):
        merge_stores(out, shards[:2], shards=3)
    with pytest.raises(OptionError, match="both hold slice 1/3"):
        merge_stores(out, [shards[0], tmp_path / "older.db", shards[1]], shards=3)
    with pytest.raises(OptionError, match="not one slice of 3"):
        merge_stores(out, [shards[0], shards[1], tmp_path / "whole.db"], shards=3)
    # And the complete set passes
    assert merge_stores(out, shards, shards=3).is_new


# --- through the command line ----------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        cli.main(list(args))
    return int(exited.value.code or 0), capsys.readouterr().err


def write_inventory(path: Path, names: list[str]) -> Path:
    targets = ", ".join(f"sim://{n}" for n in names)
    path.write_text(f"systems:\n  - name: Lab\n    owner: DSI\n    targets: [{targets}]\n")
    return path


def test_cli_shards_merge_gate_and_refusals(
    tmp_path: Path,
    policy_file: Path,
    families: Families,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli, "_families", lambda: families)
    names = [f"t{i}" for i in range(12)]
    inventory = write_inventory(tmp_path / "inventory.yaml", names)
    common = ("-i", str(inventory), "-p", str(policy_file), "-q")
    # Given the whole inventory scanned once, and in 3 shards
    assert run(capsys, "scan", *common, "--db", str(tmp_path / "whole.db"))[0] == 0
    shards = [str(tmp_path / f"shard{k}.db") for k in (1, 2, 3)]
    for k, path in enumerate(shards, 1):
        assert run(capsys, "scan", *common, "--shard", f"{k}/3", "--db", path)[0] == 0
    # When the shards are merged, with the gate
    out = str(tmp_path / "rempart.db")
    code, err = run(capsys, "db", "merge", out, *shards, "--shards", "3", "--fail-on", "high")
    # Then the gate trips (exit 1) as it does for the unsharded scan, on the same findings
    assert code == 1, err
    assert "merged 3 store(s)" in err
    whole, merged = Store(tmp_path / "whole.db"), Store(out)
    assert outcomes(merged, 1) == outcomes(whole, 1)
    # And a re-merge says so and changes nothing
    code, err = run(capsys, "db", "merge", out, *shards)
    assert code == 0 and "already merged; nothing changed" in err
    assert len(Store(out).scans()) == 1
    # And shards of another inventory are refused with exit 2 and one line
    other = write_inventory(tmp_path / "other.yaml", names)
    path = str(tmp_path / "other1.db")
    assert run(capsys, "scan", "-i", str(other), "-p", str(policy_file), "-q", "--shard",
               "1/3", "--db", path)[0] == 0  # fmt: skip
    code, err = run(capsys, "db", "merge", str(tmp_path / "x.db"), shards[0], path)
    assert code == 2 and "only shards of one inventory" in err and err.count("\n") == 1
    # And a bad shard spec is exit 2 before anything is scanned
    code, err = run(capsys, "scan", *common, "--shard", "4/3", "--db", str(tmp_path / "y.db"))
    assert code == 2 and "K must be between 1 and N" in err
    assert not (tmp_path / "y.db").exists()
