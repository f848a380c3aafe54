"""Rempart's CIS AWS Foundations v3.0.0 verdicts against Prowler's, on the same moto account.

    python3 -m venv .venv-prowler && .venv-prowler/bin/pip install prowler   # once, ~4 min
    .venv/bin/python bench/oracle_prowler.py [--prowler .venv-prowler/bin/prowler]
                                             [--json out.json] [--keep DIR]

Starts the seeded lab of :mod:`checks.aws.lab` (moto in server mode on 127.0.0.1), then:

* Rempart: the ``aws`` family observes the lab in process and every rule of the shipped
  ``cis-aws-foundations`` pack is evaluated on every resource of its type;
* Prowler: ``prowler aws --compliance cis_3.0_aws -f REGION --scan-unused-services`` (by
  default Prowler skips security groups attached to nothing; Rempart and the benchmark
  judge every group), a separate process from
  its own virtual environment (Prowler pins boto3, pydantic and dozens more), pointed at
  moto by ``AWS_ENDPOINT_URL`` (boto3 >= 1.28 sends every client there when no endpoint
  is given in code), with the lab's fake credentials and no profile or config file.

For each CIS control both tools judge (PASS or FAIL, Prowler's MANUAL set aside), the
control's verdict is FAIL when any resource fails, else PASS; the table shows both and
the resources each one failed. Every disagreement is explained in docs/differences.md.
Exit status: 0 when every disagreement is in the list of explained ones, 1 otherwise.

Not run by CI: Prowler takes minutes to install and about a minute to run.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from audit.evaluate import BoundRule, evaluate_rule  # noqa: E402
from audit.plugins import CheckContext  # noqa: E402
from audit.policy import load_policy  # noqa: E402
from audit.registry import load_families  # noqa: E402
from checks.aws import FAMILY  # noqa: E402
from checks.aws.lab import Lab  # noqa: E402

EXPLAINED: dict[str, str] = {
    "2.3.3": "Rempart fails an RDS instance whose PubliclyAccessible flag is true, as the "
    "benchmark's audit procedure reads it; Prowler passes it unless one of its security "
    "groups also opens the engine's port to the Internet from a public subnet.",
}
"""CIS control → why the two tools disagree on the lab (docs/differences.md, section AWS)."""

Verdicts = dict[str, dict[str, list[str]]]
"""control → {"fail": [resources], "pass": [resources]}."""


@contextlib.contextmanager
def lab_environment(lab: Lab) -> Iterator[dict[str, str]]:
    """The lab's fake credentials in os.environ (for Rempart in process), restored after."""
    env = {**lab.environment(), "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {name: os.environ.get(name) for name in (*env, "AWS_PROFILE", "AWS_SESSION_TOKEN")}
    os.environ.pop("AWS_PROFILE", None)
    os.environ.pop("AWS_SESSION_TOKEN", None)
    os.environ.update(env)
    try:
        yield env
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def rempart_verdicts(lab: Lab) -> Verdicts:
    """Every cis-aws-foundations rule on every observed resource, grouped by CIS control."""
    uri = lab.target()
    observation = FAMILY.collect(FAMILY.parse(urlsplit(uri), uri), CheckContext(timeout=60))
    for problem in observation.problems:
        print(f"rempart problem: {problem}", file=sys.stderr)
    policy = load_policy(
        REPO / "policies" / "cis-aws-foundations.yaml", load_families().fact_catalogue()
    )
    verdicts: Verdicts = defaultdict(lambda: {"fail": [], "pass": []})
    for rule in policy.rules:
        bound = BoundRule(rule, dict(policy.params))
        for control in rule.controls.get("cis-aws", ()):
            for resource in observation.resources:
                if resource.type != rule.resource:
                    continue
                finding = evaluate_rule(bound, resource)
                if finding.status.value in ("pass", "fail"):
                    verdicts[control][finding.status.value].append(resource.key)
    return verdicts


def prowler_verdicts(prowler: str, lab: Lab, env: dict[str, str], out: Path) -> Verdicts:
    """Prowler's CIS 3.0 compliance CSV, grouped by requirement."""
    child_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(out),
        **env,
        "AWS_ENDPOINT_URL": lab.url,
    }
    started = time.monotonic()
    command = [prowler, "aws", "--compliance", "cis_3.0_aws", "-f", lab.region, "-o", str(out)]
    command += ["--no-banner", "--output-formats", "csv", "--scan-unused-services"]
    run = subprocess.run(
        command,
        env=child_env,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    print(f"prowler: exit {run.returncode} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    reports = sorted((out / "compliance").glob("*_cis_3.0_aws.csv"))
    if not reports:
        raise SystemExit(f"prowler wrote no compliance report:\n{run.stdout[-3000:]}")
    verdicts: Verdicts = defaultdict(lambda: {"fail": [], "pass": []})
    with reports[-1].open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter=";"):
            status = row["STATUS"].lower()
            if status in ("pass", "fail"):
                resource = row["RESOURCENAME"] or row["RESOURCEID"]
                verdicts[row["REQUIREMENTS_ID"]][status].append(f"{row['CHECKID']}:{resource}")
    return verdicts


def verdict(found: dict[str, list[str]] | None) -> str:
    """FAIL when any resource fails, else PASS, else nothing to say."""
    if not found:
        return "-"
    return "FAIL" if found["fail"] else ("PASS" if found["pass"] else "-")


def _order(control: str) -> list[int]:
    return [int(part) for part in control.split(".")]


def compare(ours: Verdicts, theirs: Verdicts) -> list[dict[str, object]]:
    """One row per CIS control that both tools judge."""
    rows = []
    for control in sorted(set(ours) & set(theirs), key=_order):
        mine, other = verdict(ours.get(control)), verdict(theirs.get(control))
        if "-" in (mine, other):
            continue
        rows.append(
            {
                "control": control,
                "rempart": mine,
                "prowler": other,
                "agree": mine == other,
                "explained": EXPLAINED.get(control, ""),
                "rempart_failed": sorted(ours[control]["fail"]),
                "prowler_failed": sorted(theirs[control]["fail"]),
            }
        )
    return rows


def report(rows: list[dict[str, object]], ours: Verdicts, theirs: Verdicts) -> None:
    """Print the table, then the details of each disagreement."""
    print(f"{'CIS':7} {'Rempart':8} {'Prowler':8} agree")
    for row in rows:
        mark = "yes" if row["agree"] else ("explained" if row["explained"] else "NO")
        print(f"{row['control']:7} {row['rempart']:8} {row['prowler']:8} {mark}")
    only_ours = sorted(set(ours) - set(theirs), key=_order)
    only_theirs = sorted(set(theirs) - set(ours), key=_order)
    print(f"\njudged by Rempart only: {', '.join(only_ours) or '-'}")
    print(f"judged by Prowler only: {', '.join(only_theirs) or '-'}")
    for row in rows:
        if not row["agree"]:
            print(
                f"\n{row['control']}: Rempart says {row['rempart']} where Prowler says "
                f"{row['prowler']}\n  Rempart failed: {row['rempart_failed']}\n"
                f"  Prowler failed: {row['prowler_failed']}\n  why: {row['explained'] or '?'}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prowler", default=str(REPO / ".venv-prowler" / "bin" / "prowler"))
    parser.add_argument("--json", type=Path, help="write the comparison rows here")
    parser.add_argument("--keep", type=Path, help="keep Prowler's output in this directory")
    args = parser.parse_args()
    if not Path(args.prowler).exists() and not shutil.which(args.prowler):
        raise SystemExit(f"{args.prowler}: not found (see this script's docstring)")
    out = args.keep or Path(tempfile.mkdtemp(prefix="oracle-prowler-"))
    out.mkdir(parents=True, exist_ok=True)
    with Lab() as lab, lab_environment(lab) as env:
        lab.seed()
        started = time.monotonic()
        ours = rempart_verdicts(lab)
        print(f"rempart: {time.monotonic() - started:.0f} s", file=sys.stderr)
        theirs = prowler_verdicts(args.prowler, lab, env, out)
    rows = compare(ours, theirs)
    report(rows, ours, theirs)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
    unexplained = [r for r in rows if not r["agree"] and not r["explained"]]
    agreed = sum(1 for r in rows if r["agree"])
    print(f"\n{len(rows)} controls compared: {agreed} agree, {len(unexplained)} unexplained")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
