"""``rempart frameworks``: catalogues, coverage, unknown ids; catalogue validation."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from audit.cli import governance as cli_governance
from audit.errors import InputError
from audit.frameworks import (
    coverage,
    get_framework,
    load_catalogues,
    load_framework,
    unknown_controls,
)

EXPECTED_COUNTS = {
    "anssi-hygiene": 42,
    "iso27001": 93,
    "cis-v8": 153,
    "cis-aws": 62,
    "nis2": 10,
    "secnumcloud": 92,
}


@pytest.fixture
def runner_cli():
    group = click.Group("rempart")
    cli_governance.register(group)
    return group


def test_catalogues_load_with_source_and_expected_sizes():
    catalogues = load_catalogues()
    assert set(catalogues) == {
        "anssi-hygiene",
        "anssi-tls",
        "nis2",
        "iso27001",
        "cis-v8",
        "cis-aws",
        "rgs",
        "secnumcloud",
    }
    for fw_id, count in EXPECTED_COUNTS.items():
        assert len(catalogues[fw_id].controls) == count, fw_id
    for framework in catalogues.values():
        assert framework.source and framework.version
        assert all(c.title and c.title_en for c in framework.controls)


def test_cis_v8_implementation_groups():
    levels = [c.level for c in get_framework("cis-v8").controls]
    assert (levels.count("IG1"), levels.count("IG2"), levels.count("IG3")) == (56, 74, 23)


def test_unknown_controls_reports_framework_and_id():
    assert unknown_controls({"nis2": ["21.2.h"], "anssi-tls": ["R4", "2.2"]}) == []
    assert unknown_controls({"nis2": ["21.2.k"], "made-up": ["1"]}) == ["nis2:21.2.k", "made-up:1"]


def test_every_shipped_rule_cites_known_controls():
    import yaml

    from audit.registry import builtin_policies

    for path in builtin_policies().values():
        for rule in yaml.safe_load(path.read_text(encoding="utf-8")).get("rules", []):
            controls = {
                fw: [ids] if isinstance(ids, str) else ids
                for fw, ids in (rule.get("controls") or {}).items()
            }
            for ids in controls.values():
                assert all(isinstance(i, str) for i in ids), (path.name, rule["id"], ids)
            assert unknown_controls(controls) == [], (path.name, rule["id"])


def test_coverage_splits_automated_and_manual():
    framework = get_framework("nis2")
    items = coverage(
        framework,
        [
            ("TLS-PROTO-001", {"nis2": ("21.2.h",)}),
            ("X-1", {"nis2": ("21.2.h",), "iso27001": ("A.8.24",)}),
        ],
    )
    by_id = {c.control.id: c for c in items}
    assert by_id["21.2.h"].rules == ("TLS-PROTO-001", "X-1")
    assert by_id["21.2.a"].is_manual


HEADER = "{framework: bad, title: t, title_en: t, publisher: p, version: '1', source: s, url: u, "


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("framework: x\n", "Field required"),
        (
            HEADER + "controls: [{id: '1', title: a, title_en: b, colour: red}]}",
            "Extra inputs",
        ),
        (
            HEADER
            + "controls: [{id: '1', title: a, title_en: b}, {id: '1', title: a, title_en: b}]}",
            "appears twice",
        ),
    ],
)
def test_invalid_catalogue_is_refused(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError, match=message):
        load_framework(path)


def test_catalogue_file_name_must_match_its_id(tmp_path):
    path = tmp_path / "other.yaml"
    path.write_text(
        "{framework: bad, title: t, title_en: t, publisher: p, version: '1', "
        "source: s, url: u, controls: []}",
        encoding="utf-8",
    )
    with pytest.raises(InputError, match="differs from file name"):
        load_framework(path)


def test_frameworks_list(runner_cli):
    result = CliRunner().invoke(runner_cli, ["frameworks", "list"])
    assert result.exit_code == 0, result.output
    assert re.search(r"^nis2\s+\d+/10 ", result.output, re.MULTILINE)
    assert "ISO/IEC 27001:2022" in result.output


def test_frameworks_show_in_french_and_manual_only(runner_cli):
    result = CliRunner().invoke(runner_cli, ["frameworks", "show", "anssi-hygiene"])
    assert result.exit_code == 0, result.output
    assert "Former les équipes opérationnelles" in result.output
    manual = CliRunner().invoke(
        runner_cli, ["frameworks", "show", "nis2", "--lang", "en", "--manual-only"]
    )
    assert "21.2.a" in manual.output and "→ manual" in manual.output
    assert "21.2.h " not in manual.output


def test_frameworks_show_unknown_is_an_option_error(runner_cli):
    result = CliRunner().invoke(runner_cli, ["frameworks", "show", "nope"])
    assert result.exit_code != 0
    assert "unknown framework" in str(result.exception)


def test_catalogues_ship_inside_the_package():
    from policies import BUILTIN_DIR

    assert (Path(BUILTIN_DIR) / "frameworks" / "nis2.yaml").is_file()
