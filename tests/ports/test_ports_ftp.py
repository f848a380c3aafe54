"""AUTH TLS on real FTP servers (pyftpdlib), and the exchange's own edge cases."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from audit.errors import ObservationError
from audit.evaluate import BoundRule, evaluate_rule
from audit.models import Observation, Reason, Status
from audit.policy import load_policy
from checks.ports import FAMILY
from checks.ports.ftp import offers_auth_tls, parse_reply
from checks.ports.lab import Listener, closed_port, ftp_server, mute_ftp_server, silent_server
from tests.ports.conftest import by_key, requires_nmap, scan

pytest.importorskip("pyftpdlib")
PACK = Path(__file__).resolve().parents[2] / "policies" / "exposure-baseline.yaml"


@pytest.fixture(scope="module")
def ftp_lab() -> Iterator[dict[str, Listener]]:
    """FTP in clear, explicit FTPS, and an FTP greeting that never answers."""
    with ExitStack() as stack:
        yield {
            "ftp": stack.enter_context(ftp_server()),
            "ftps": stack.enter_context(ftp_server(tls=True)),
            "mute": stack.enter_context(mute_ftp_server()),
        }


@pytest.fixture(scope="module")
def ftp_observation(ftp_lab: dict[str, Listener]) -> Observation:
    ports = ",".join(str(item.port) for item in ftp_lab.values())
    return scan(f"ports://127.0.0.1?ports={ports}", timeout=20)


def test_explicit_ftps_is_seen_offering_auth_tls(ftp_lab: dict[str, Listener]) -> None:
    assert offers_auth_tls("127.0.0.1", ftp_lab["ftps"].port) is True
    assert offers_auth_tls("127.0.0.1", ftp_lab["ftp"].port) is False


def test_a_server_that_never_answers_is_a_timeout_not_false(
    ftp_lab: dict[str, Listener],
) -> None:
    started = time.monotonic()
    with pytest.raises(ObservationError) as failed:
        offers_auth_tls("127.0.0.1", ftp_lab["mute"].port, timeout_s=1.0)
    assert failed.value.reason is Reason.TIMEOUT and time.monotonic() - started < 2


def test_a_closed_port_and_a_silent_one_are_not_answers() -> None:
    with closed_port() as closed, pytest.raises(ObservationError) as refused:
        offers_auth_tls("127.0.0.1", closed.port, timeout_s=1.0)
    assert refused.value.reason is Reason.REFUSED
    with silent_server() as silent, pytest.raises(ObservationError) as late:
        offers_auth_tls("127.0.0.1", silent.port, timeout_s=1.0)
    assert late.value.reason is Reason.TIMEOUT


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"220 ready\r\n", 220),
        (b"220-welcome\r\n", None),
        (b"220-welcome\r\nmore\r\n220 ready\r\n", 220),
        (b"234 AUTH TLS OK.\r\n", 234),
        (b"22", None),
    ],
)
def test_replies_are_read_to_their_last_line(data: bytes, code: int | None) -> None:
    assert parse_reply(data) == code


def test_something_else_than_ftp_is_undecidable() -> None:
    with pytest.raises(ObservationError) as failed:
        parse_reply(b"SSH-2.0-OpenSSH_9.8\r\n")
    assert failed.value.reason is Reason.UNDECIDABLE


def test_a_reply_flood_is_cut_short() -> None:
    server, client = socket.socketpair()
    with server, client:
        server.sendall(b"220-" + b"x" * 8000)
        with pytest.raises(ObservationError, match="too long"):
            from checks.ports.ftp import read_reply

            read_reply(client, time.monotonic() + 2)


@requires_nmap
def test_the_scan_reports_auth_tls_and_the_rule_follows_it(
    ftp_lab: dict[str, Listener], ftp_observation: Observation
) -> None:
    # Given three FTP services scanned with service detection
    resources = by_key(ftp_observation)
    pack = load_policy(PACK, FAMILY.resource_type_names())
    (rule,) = [r for r in pack.rules if r.id == "EXP-CLEAR-002"]

    def status(name: str) -> Status:
        resource = resources[ftp_lab[name].key]
        return evaluate_rule(BoundRule(rule, dict(pack.params)), resource).status

    ftps, ftp, mute = (resources[ftp_lab[n].key] for n in ("ftps", "ftp", "mute"))
    # Then nmap names them, and Rempart's own exchange says which one offers TLS
    assert (ftps.facts["service"], ftps.facts["product"]) == ("ftp", "pyftpdlib")
    assert ftps.facts["ftp_auth_tls"] is True and ftp.facts["ftp_auth_tls"] is False
    assert mute.unknown["ftp_auth_tls"].reason is Reason.TIMEOUT
    # and the rule passes the server fixed as it advises, fails the other, cannot judge one
    assert [status(n) for n in ("ftps", "ftp", "mute")] == [
        Status.PASS,
        Status.FAIL,
        Status.ERROR,
    ]
