"""The Kubernetes and GitHub Actions examples parse, and their shard counts agree."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from audit.scale.sharding import parse_shard

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def env_value(container: dict[str, Any], name: str) -> str:
    return next(str(e["value"]) for e in container["env"] if e["name"] == name)


def test_k8s_indexed_job_runs_every_shard_then_merges() -> None:
    # Given the manifest, rendered for one run as run-sharded-scan.sh does
    text = (EXAMPLES / "k8s" / "sharded-scan.yaml").read_text().replace("${RUN}", "20250101-021700")
    shards_job, merge_job = list(yaml.safe_load_all(text))
    # Then the shards are an Indexed Job whose size matches SHARDS and --shard K/SHARDS
    spec = shards_job["spec"]
    assert shards_job["kind"] == merge_job["kind"] == "Job"
    assert spec["completionMode"] == "Indexed"
    count = spec["completions"]
    assert spec["parallelism"] == count
    shard = spec["template"]["spec"]["containers"][0]
    assert env_value(shard, "SHARDS") == str(count)
    script = shard["args"][0]
    assert "k=$((JOB_COMPLETION_INDEX + 1))" in script
    assert '--shard "$k/$SHARDS"' in script
    parse_shard(f"{count}/{count}")
    # And the merge waits for that many stores, checks the slices and writes the history
    merge_spec = merge_job["spec"]["template"]["spec"]
    for container in (*merge_spec["initContainers"], *merge_spec["containers"]):
        assert env_value(container, "SHARDS") == str(count)
    merge = merge_spec["containers"][0]["args"][0]
    assert re.search(r"rempart db merge /data/rempart.db \S+shard-\*\.db --shards", merge)
    # And the names are valid DNS labels once rendered
    for job in (shards_job, merge_job):
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", job["metadata"]["name"])


def test_github_actions_matrix_covers_every_shard_then_merges() -> None:
    workflow = yaml.safe_load((EXAMPLES / "github-actions" / "sharded-scan.yml").read_text())
    count = int(workflow["env"]["SHARDS"])
    scan, merge = workflow["jobs"]["scan"], workflow["jobs"]["merge"]
    # The matrix is exactly 1..SHARDS and each job scans its slice into its own store
    assert scan["strategy"]["matrix"]["shard"] == list(range(1, count + 1))
    scan_step = next(s for s in scan["steps"] if "rempart scan" in s.get("run", ""))
    assert '--shard "${{ matrix.shard }}/$SHARDS"' in scan_step["run"]
    # The merge runs after all of them, checks the slices and gates
    assert merge["needs"] == "scan"
    merge_step = next(s for s in merge["steps"] if "db merge" in s.get("run", ""))
    assert '--shards "$SHARDS"' in merge_step["run"] and "--fail-on" in merge_step["run"]
    # YAML 1.1 reads the key `on` as True; either way the triggers are there
    assert workflow.get("on", workflow.get(True))
