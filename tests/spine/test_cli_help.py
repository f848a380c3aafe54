"""Every command's --help: an example, a description for every option, a short help that
the command list does not cut; ``scan --help`` names the target schemes and ports=."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import click
import pytest

from audit.cli import app
from audit.registry import Families


def commands(
    command: click.Command = app.cli, path: tuple[str, ...] = ("rempart",)
) -> Iterator[tuple[str, click.Command]]:
    yield " ".join(path), command
    if isinstance(command, click.Group):
        for name, sub in sorted(command.commands.items()):
            yield from commands(sub, (*path, name))


ALL = dict(commands())
LISTING_ROOM = 52
"""What the command list shows of a short help at 80 columns without cutting it."""


def test_walk_finds_every_command_group() -> None:
    assert {"rempart scan", "rempart db merge", "rempart frameworks show"} <= set(ALL)


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_command_has_an_example(name: str) -> None:
    epilog = ALL[name].epilog or ""
    assert "Examples:" in epilog and "rempart " in epilog, f"{name}: no example"


@pytest.mark.parametrize("name", sorted(ALL))
def test_every_option_says_what_it_does(name: str) -> None:
    missing = [
        "/".join(p.opts) for p in ALL[name].params if isinstance(p, click.Option) and not p.help
    ]
    assert not missing, f"{name}: options without a description: {missing}"


@pytest.mark.parametrize("name", sorted(set(ALL) - {"rempart"}))
def test_command_list_does_not_cut_the_short_help(name: str) -> None:
    short = ALL[name].get_short_help_str(limit=LISTING_ROOM)
    assert not short.endswith("..."), f"{name}: {short!r}"


def test_scan_help_lists_schemes_and_port_syntax(
    monkeypatch: pytest.MonkeyPatch, families: Families, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(app, "_families", lambda: families)
    with pytest.raises(SystemExit):
        app.main(["scan", "--help"])
    out = capsys.readouterr().out
    assert "facts://" in out and "Resources given by the test" in out
    assert "Examples:" in out and "rempart scan tls://" in out


def test_scan_help_with_the_real_families(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        app.main(["scan", "--help"])
    out = capsys.readouterr().out
    assert "tls://" in out and "ports://HOST?ports=SPEC" in out and "1-1024" in out


def test_top_level_help_stays_fast_and_loads_no_family() -> None:
    code = (
        "import sys, time; t = time.perf_counter();"
        "from audit.cli import main\n"
        "try: main(['--help'])\n"
        "except SystemExit: pass\n"
        "heavy = [m for m in ('checks.tls', 'checks.ports', 'pydantic', 'audit.registry') "
        "if m in sys.modules]\n"
        "print(heavy, time.perf_counter() - t, file=sys.stderr)"
    )
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "[]" in done.stderr, done.stderr
    assert "scan" in done.stdout and "Examples:" in done.stdout
    assert time.perf_counter() - start < 5
