"""The command line over the spine: scan, gate, findings, diff, accept, errors (exit 2)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from audit.cli import app as cli
from audit.registry import Families


@pytest.fixture(autouse=True)
def only_the_facts_family(monkeypatch: pytest.MonkeyPatch, families: Families) -> None:
    monkeypatch.setattr(cli, "_families", lambda: families)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exited:
        cli.main(list(args))
    out, err = capsys.readouterr()
    return int(exited.value.code or 0), out, err


def inventory(tmp_path: Path, spec: dict[str, Any], extra: str = "") -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text(f"""\
systems:
  - name: Portail usagers
    owner: DSI — pôle web
    criticality: high
    targets: [facts://web]
  - name: Messagerie
    owner: DSI — pôle infra
    targets: [facts://mail]
facts: {json.dumps(spec)}
{extra}""")
    return path


SPEC = {
    "web": {"resources": [{"key": "item://web", "facts": {"port": 22, "tags": ["owner"]}}]},
    "mail": {"resources": [{"key": "item://mail", "facts": {"port": 443, "tags": []}}]},
}


def scan(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    policy_file: Path,
    spec: dict[str, Any],
    *extra: str,
) -> tuple[int, str, str]:
    inv = tmp_path / "inventory.yaml"
    inv.write_text(inventory(tmp_path, spec).read_text())
    return run(
        capsys,
        "scan",
        "-i",
        str(inv),
        "-p",
        str(policy_file),
        "--db",
        str(tmp_path / "r.db"),
        "-q",
        *extra,
    )


def test_scan_gate_json_report_and_store(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    code, _, err = scan(capsys, tmp_path, policy_file, SPEC, "-o", str(out), "--fail-on", "high")
    assert code == 1, err
    report = json.loads(out.read_text())
    assert report["schema"] == 1
    assert report["scan"]["status"] == "complete"
    assert {r["key"] for r in report["resources"]} == {"item://web", "item://mail"}
    failing = {(f["rule_id"], f["system"]) for f in report["findings"] if f["status"] == "fail"}
    assert failing == {("DEMO-PORT-001", "Portail usagers"), ("DEMO-TAG-001", "Messagerie")}
    first = next(f for f in report["findings"] if f["status"] == "fail")
    assert set(first) >= {
        "fingerprint",
        "rule_id",
        "policy",
        "title",
        "resource_type",
        "resource_key",
        "target",
        "system",
        "status",
        "severity",
        "lifecycle",
        "message",
        "evidence",
        "controls",
        "remediation",
    }
    assert report["notes"] == ["no scope declared"]
    # a low gate passes when only low severities are asked about... high fails stays 1
    code, _, _ = scan(capsys, tmp_path, policy_file, SPEC, "--fail-on", "critical")
    assert code == 0


def test_accepted_finding_stops_failing_the_gate(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "r.db")
    spec = {
        "web": SPEC["web"],
        "mail": {"resources": [{"key": "item://mail", "facts": {"port": 443, "tags": ["owner"]}}]},
    }
    assert scan(capsys, tmp_path, policy_file, spec, "--fail-on", "high")[0] == 1
    until = (date.today() + timedelta(days=90)).isoformat()
    code, out, err = run(
        capsys,
        "accept",
        "DEMO-PORT-001",
        "item://web",
        "--owner",
        "M. Martin",
        "--reason",
        "bastion only",
        "--until",
        until,
        "--db",
        db,
    )
    assert code == 0, err
    assert "accepted #1" in out
    assert scan(capsys, tmp_path, policy_file, spec, "--fail-on", "high")[0] == 0
    _, out, _ = run(capsys, "acceptances", "--expiring", "120", "--json", "--db", db)
    assert json.loads(out)[0]["owner"] == "M. Martin"
    code, out, _ = run(capsys, "findings", "--json", "--db", db)
    assert json.loads(out.splitlines()[0])["lifecycle"] == "accepted"


def test_error_gate_exits_3(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = {
        "web": {"problem": "unreachable"},
        "mail": {"resources": [{"key": "item://mail", "facts": {"port": 443, "tags": ["owner"]}}]},
    }
    assert scan(capsys, tmp_path, policy_file, spec, "--fail-on", "low")[0] == 3
    assert scan(capsys, tmp_path, policy_file, spec)[0] == 0


def test_diff_shows_resolved(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "r.db")
    scan(capsys, tmp_path, policy_file, SPEC)
    fixed = {
        **SPEC,
        "web": {"resources": [{"key": "item://web", "facts": {"port": 443, "tags": ["owner"]}}]},
    }
    scan(capsys, tmp_path, policy_file, fixed)
    _, out, _ = run(capsys, "diff", "--json", "--db", db)
    result = json.loads(out)
    assert [f["resource_key"] for f in result["resolved"]] == ["item://web"]
    assert [f["resource_key"] for f in result["still_open"]] == ["item://mail"]
    assert result["new"] == []
    _code, out, _ = run(capsys, "diff", "--db", db)
    assert "1 resolved" in out


BAD_INVOCATIONS = {
    "missing-inventory": (["scan", "-i", "nope.yaml"], "nope.yaml: file not found"),
    "junk-uri": (["scan", "not a uri"], "cannot be empty or contain spaces"),
    "no-scheme": (["scan", "example.org"], "not a URI"),
    "unknown-scheme": (["scan", "gopher://x"], "unknown scheme 'gopher'"),
    "nothing-to-scan": (["scan"], "nothing to scan"),
    "unknown-policy": (["scan", "facts://a", "-p", "no-such-pack"], "unknown policy"),
    "bad-timeout": (["scan", "facts://a", "--timeout", "0"], "--timeout"),
    "bad-output-ext": (["scan", "facts://a", "-o", "x.docx"], "cannot tell the format"),
    "unknown-severity": (["scan", "facts://a", "--fail-on", "dire"], "dire"),
    "bad-until": (
        ["accept", "abc", "--owner", "o", "--reason", "r", "--until", "soon"],
        "expected a date",
    ),
    "diff-one-id": (["diff", "1"], "give both OLD and NEW"),
    "diff-same-scan": (["diff", "1", "1"], "diff 1 1: give two different scans"),
    "db-is-a-directory": (["findings", "--db", "."], "--db .: is a directory"),
    "scan-db-is-a-directory": (["scan", "facts://a", "--db", "."], "is a directory"),
    "accept-db-is-a-directory": (
        ["accept", "abc", "--owner", "o", "--reason", "r", "--until", "2099-01-01", "--db", "."],
        "is a directory",
    ),
    "missing-store-findings": (["findings"], "no such store"),
}


@pytest.mark.parametrize("case", sorted(BAD_INVOCATIONS))
def test_bad_input_exits_2_with_one_line(
    tmp_path: Path,
    case: str,
    policy_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    args, fragment = BAD_INVOCATIONS[case]
    code, _out, err = run(capsys, *args)
    assert code == 2
    assert fragment in err
    assert "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) <= 3


BAD_INVENTORIES = {
    "unknown-field": ("colour: red\n", 1, "unknown field 'colour'"),
    "bad-network": ("scope: {networks: [10.0.0.0/33]}\n", 1, "not a network"),
    "bad-domain": ("scope: {domains: ['exa mple.org']}\n", 1, "not a domain"),
    "unknown-scope-block": (
        "scope: {vault: {paths: [x]}}\n",
        1,
        "scope.vault: unknown scope block",
    ),
    "bad-criticality": ("systems:\n  - name: A\n    criticality: extreme\n", 3, "criticality"),
    "junk-target": ("systems:\n  - name: A\n    targets: ['facts://']\n", 3, "missing name"),
    "duplicate-system": ("systems:\n  - name: A\n  - name: A\n", 3, "duplicate system"),
    "missing-ca": ("trust: {ca_file: nowhere.pem}\n", 1, "does not exist"),
    "yaml-syntax": ("systems: [\n", 2, "invalid YAML"),
}


@pytest.mark.parametrize("case", sorted(BAD_INVENTORIES))
def test_bad_inventory_names_file_and_line(
    tmp_path: Path, case: str, capsys: pytest.CaptureFixture[str]
) -> None:
    text, line, fragment = BAD_INVENTORIES[case]
    path = tmp_path / "inv.yaml"
    path.write_text(text)
    code, _, err = run(capsys, "scan", "-i", str(path), "--db", str(tmp_path / "r.db"))
    assert code == 2
    assert f"{path}:{line}:" in err, err
    assert fragment in err


def test_policy_commands(policy_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "policy", "validate", str(policy_file))
    assert code == 0 and "ok:" in out
    code, out, _ = run(capsys, "policy", "show", str(policy_file))
    assert "DEMO-PORT-001" in out
    code, out, _ = run(capsys, "policy", "schema")
    assert json.loads(out)["title"] == "Rempart policy"
    code, out, _ = run(capsys, "checks", "list", "--facts", "--format", "md")
    assert "`demo.item`" in out and "| `port` |" in out


def test_report_renders_a_stored_scan_in_every_format(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "r.db")
    scan(capsys, tmp_path, policy_file, SPEC)
    outputs = [
        tmp_path / name for name in ("r.html", "r.sarif", "r.xml", "r.csv", "r.md", "r.json")
    ]
    args = [arg for path in outputs for arg in ("-o", str(path))]
    code, _, err = run(capsys, "report", "--scan", "1", "--lang", "en", "--db", db, *args)
    assert code == 0, err
    for path in outputs:
        assert path.stat().st_size > 0, path
    assert json.loads((tmp_path / "r.sarif").read_text())["version"] == "2.1.0"
    assert 'lang="en"' in (tmp_path / "r.html").read_text()
    code, _, err = run(capsys, "report", "--scan", "9", "-o", str(tmp_path / "x.json"), "--db", db)
    assert code == 2 and "no scan with id 9" in err


def test_unaccept_revokes_and_the_gate_fails_again(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "r.db")
    spec = {
        "web": SPEC["web"],
        "mail": {"resources": [{"key": "item://mail", "facts": {"port": 443, "tags": ["owner"]}}]},
    }
    scan(capsys, tmp_path, policy_file, spec)
    code, out, _ = run(capsys, "findings", "--json", "--db", db)
    fingerprint = json.loads(out.splitlines()[0])["fingerprint"]
    until = (date.today() + timedelta(days=30)).isoformat()
    assert (
        run(
            capsys,
            "accept",
            fingerprint[:10],
            "--owner",
            "O",
            "--reason",
            "R",
            "--until",
            until,
            "--db",
            db,
        )[0]
        == 0
    )
    assert scan(capsys, tmp_path, policy_file, spec, "--fail-on", "high")[0] == 0
    code, out, _ = run(capsys, "unaccept", "1", "--db", db)
    assert code == 0 and "revoked" in out
    assert scan(capsys, tmp_path, policy_file, spec, "--fail-on", "high")[0] == 1


def accept(capsys: pytest.CaptureFixture[str], db: str, *finding: str) -> tuple[int, str, str]:
    until = (date.today() + timedelta(days=30)).isoformat()
    args = ("--owner", "O", "--reason", "R", "--until", until, "--db", db)
    return run(capsys, "accept", *finding, *args)


def test_accept_refuses_what_it_would_record_silently(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = str(tmp_path / "r.db")
    scan(capsys, tmp_path, policy_file, SPEC)
    code, _, err = accept(capsys, db, "DEMO-PORT-999", "item://web")
    assert code == 2 and "no finding of DEMO-PORT-999 on item://web" in err
    code, _, err = accept(capsys, db, "DEMO-PORT-001", "item://nowhere")
    assert code == 2 and "no finding" in err
    code, _, err = accept(capsys, db, "DEMO-PORT-001", "item://mail")  # port 443 passes
    assert code == 2 and "passing in the latest scan" in err and "--force" in err
    assert accept(capsys, db, "DEMO-PORT-001", "item://mail", "--force")[0] == 0
    assert accept(capsys, db, "DEMO-PORT-001", "item://web")[0] == 0
    code, _, err = accept(capsys, db, "DEMO-PORT-001", "item://web")
    assert code == 2 and "already accepted (#2" in err and "rempart unaccept 2" in err
    assert run(capsys, "unaccept", "2", "--db", db)[0] == 0
    assert accept(capsys, db, "DEMO-PORT-001", "item://web")[0] == 0
    _, out, _ = run(capsys, "acceptances", "--json", "--db", db)
    assert len(json.loads(out)) == 2


def test_summary_gives_the_reasons_for_errors(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    inv = inventory(tmp_path, {"web": {"problem": "unreachable"}, "mail": SPEC["mail"]})
    args = ("scan", "-i", str(inv), "-p", str(policy_file), "--db", str(tmp_path / "r.db"))
    _, _, err = run(capsys, *args)
    assert "2 × planted on facts://web" in err
    assert "nothing could be evaluated" not in err
    inv = inventory(tmp_path, {"web": {"problem": "unreachable"}, "mail": {"problem": "timeout"}})
    _, _, err = run(capsys, *args)
    assert "2 × planted on facts://mail" in err and "2 × planted on facts://web" in err
    assert "nothing could be evaluated: is the target up" in err


def test_error_lines_are_bounded_and_plain() -> None:
    from collections import Counter

    from audit.cli.progress import error_lines

    reasons = Counter({(f"refused [red]{i}[/red]\x1b[2J", f"tls://h{i}"): 10 - i for i in range(5)})
    lines = error_lines(reasons, {"error": 40, "pass": 1})
    assert lines[0] == "10 × refused [red]0[/red]\\x1b[2J on tls://h0"
    assert lines[3] == "… and 13 more errors for 2 other reasons"
    assert len(lines) == 4


def test_findings_fit_80_columns_and_wide_shows_everything(
    tmp_path: Path,
    policy_file: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    long_key = "item://" + "very-long-resource-name-" * 4
    spec = {
        "web": {"resources": [{"key": long_key, "facts": {"port": 22, "tags": []}}]},
        "mail": SPEC["mail"],
    }
    scan(capsys, tmp_path, policy_file, spec)
    db = str(tmp_path / "r.db")
    _, out, _ = run(capsys, "findings", "--db", db)
    lines = out.splitlines()
    assert all(len(line.rstrip()) <= 80 for line in lines), out
    assert len([line for line in lines if "DEMO-" in line]) == 3  # one line a finding
    assert "…" in out and "system" not in lines[1]
    _, out, _ = run(capsys, "findings", "--wide", "--db", db)
    assert "system" in out and "Portail usagers" in out.replace("\n", "")


def test_plain_table_cuts_cells_to_the_terminal(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from audit.cli import views

    monkeypatch.setenv("COLUMNS", "80")
    rows = [("abcdef", "x" * 50, "message \x1b[2J " * 10)] * 3
    views._plain_table("t", ("id", "resource", "message"), rows, (8, 20, None))
    lines = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[3].startswith("abcdef  xxxxxxxxxxxxxxxxxxx…  message \\x1b[2J")


def test_diff_orders_ports_as_numbers(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = ["item://h:8080", "item://h:443", "item://h:22", "item://10.0.0.10", "item://10.0.0.9"]
    resources = [{"key": key, "facts": {"port": 23, "tags": ["owner"]}} for key in keys]
    spec = {"web": {"resources": resources}, "mail": SPEC["mail"]}
    scan(capsys, tmp_path, policy_file, spec)
    scan(capsys, tmp_path, policy_file, spec)
    _, out, _ = run(capsys, "diff", "--json", "--db", str(tmp_path / "r.db"))
    listed = [f["resource_key"] for f in json.loads(out)["still_open"]]
    assert [k for k in listed if k != "item://mail"] == [
        "item://10.0.0.9",
        "item://10.0.0.10",
        "item://h:22",
        "item://h:443",
        "item://h:8080",
    ]


def test_inventory_reports_every_fault_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "inv.yaml"
    path.write_text("""\
colour: red
systems:
  - name: A
    criticality: extreme
  - name: B
    targets: ['facts://', 'facts://ok', 'bad target']
  - name: B
trust: {ca_file: nowhere.pem}
scope: {networks: [10.0.0.0/33], vault: {paths: [x]}}
""")
    code, _, err = run(capsys, "scan", "-i", str(path), "--db", str(tmp_path / "r.db"))
    assert code == 2
    lines = err.splitlines()
    assert all(line.startswith(f"rempart: error: {path}:") for line in lines), err
    assert f"{path}:1: colour: unknown field 'colour'" in err
    assert f"{path}:4: systems[0].criticality" in err
    assert f"{path}:9: scope.networks" in err and "not a network" in err
    path.write_text("""\
systems:
  - name: B
    targets: ['facts://', 'facts://ok', 'bad target']
  - name: B
trust: {ca_file: nowhere.pem}
scope: {vault: {paths: [x]}}
""")
    code, _, err = run(capsys, "scan", "-i", str(path), "--db", str(tmp_path / "r.db"))
    assert code == 2
    for fragment in (
        f"{path}:3: systems[0].targets[0]",
        "missing name",
        "systems[0].targets[2]",
        f"{path}:4: systems[1].name: duplicate system 'B'",
        f"{path}:5: trust.ca_file",
        f"{path}:6: scope.vault: unknown scope block",
    ):
        assert fragment in err, (fragment, err)
    assert len(err.splitlines()) == 5


def test_the_scan_records_its_command_line_with_secrets_masked(
    tmp_path: Path, policy_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a scan whose target carries a password and a token (a user may type them)
    out = tmp_path / "report.html"
    target = "facts://user:hunter2@web?token=s3cr3t&zone=a"
    code, _, err = run(
        capsys, "scan", target, "-p", str(policy_file), "--db", str(tmp_path / "r.db"),
        "-q", "-o", str(out), "--timeout", "5",
    )  # fmt: skip
    assert code in (0, 1), err
    # Then the store and the report's cover hold the command as given, secrets masked
    from audit.store import open_for_reading

    command = open_for_reading(tmp_path / "r.db").scan(1).command
    assert command is not None
    assert command.startswith("rempart scan ")
    assert "'facts://user:***@web?token=***&zone=a'" in command
    assert "--timeout 5.0" in command and "-q" in command
    assert "hunter2" not in command and "s3cr3t" not in command
    html = out.read_text()
    assert "facts://user:***@web?token=***&amp;zone=a" in html
    assert "hunter2" not in html and "s3cr3t" not in html
    assert "hunter2" not in (tmp_path / "r.db").read_bytes().decode("latin-1")
