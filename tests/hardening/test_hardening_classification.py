"""What goes wrong is named for what it is: a hostile server is a protocol error, not a
bug of ours, and a bug of ours is never read as a verdict.

The attacks: a 10 MB SMTP reply to STARTTLS surfaced as reason ``bug`` (a ValueError
from ``readline``); and any crash exited 1, which a CI gate reads as "findings failed".
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from audit.cli import app as cli
from audit.models import Reason
from checks.tls import lab
from tests.hardening.conftest import rempart
from tests.tls.conftest import scan


class HugeLineSmtp(lab.ThreadedServer):
    """Greets with a 10 MB line that never ends in CRLF: every limit a client has is hit."""

    def handle(self, connection: socket.socket) -> None:
        connection.sendall(b"220-" + b"A" * (10 << 20))
        connection.recv(1024)


class HugeEhloSmtp(lab.ThreadedServer):
    """A normal banner, then a 10 MB EHLO reply line."""

    def handle(self, connection: socket.socket) -> None:
        connection.sendall(b"220 mx.example.test ESMTP\r\n")
        connection.recv(1024)
        connection.sendall(b"250-" + b"B" * (10 << 20) + b"\r\n250 STARTTLS\r\n")
        connection.recv(1024)


@pytest.mark.parametrize("server", [HugeLineSmtp, HugeEhloSmtp])
def test_a_huge_smtp_reply_is_a_protocol_error_not_a_bug(server: type) -> None:
    with server() as running:
        observation = scan(f"smtp://127.0.0.1:{running.port}", timeout=5.0)
    assert not observation.resources
    reasons = {problem.reason for problem in observation.problems}
    assert reasons == {Reason.UNREACHABLE}, observation.problems
    assert "longer than any protocol allows" in observation.problems[0].message


def test_the_scan_of_a_huge_smtp_reply_ends_in_error_findings(tmp_path: Path) -> None:
    with HugeLineSmtp() as running:
        run = rempart(
            "scan", f"smtp://127.0.0.1:{running.port}", "-p", "anssi-tls", "--timeout", "5",
            "--db", str(tmp_path / "r.db"), "--fail-on", "high", "-o", str(tmp_path / "r.json"),
        )  # fmt: skip
    assert run.code == 3, run.err  # errors, not a bug and not a pass
    assert '"reason":"bug"' not in (tmp_path / "r.json").read_text().replace(" ", "")


def test_a_crash_has_its_own_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a defect deep in a command (simulated where the CLI loads its plugins)
    def broken() -> None:
        raise RuntimeError("boom \x1b[2J in a message")

    monkeypatch.setattr(cli, "_families", broken)
    monkeypatch.delenv("REMPART_DEBUG", raising=False)
    # When the command runs
    with pytest.raises(SystemExit) as exited:
        cli.main(["scan", "tls://127.0.0.1:9"])
    # Then it exits 70 (never 0 or 1) with one line naming the error, escapes neutralised
    assert exited.value.code == cli.EXIT_CRASH == 70
    err = capsys.readouterr().err
    assert err.startswith("rempart: internal error: RuntimeError: boom")
    assert "\x1b" not in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_rempart_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken() -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(cli, "_families", broken)
    monkeypatch.setenv("REMPART_DEBUG", "1")
    with pytest.raises(SystemExit) as exited:
        cli.main(["scan", "tls://127.0.0.1:9"])
    assert exited.value.code == 70
    assert "Traceback" in capsys.readouterr().err
