"""nmap's arguments, its time budget, a missing nmap and nmap's own errors."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from audit.errors import DependencyError, ObservationError
from audit.models import Reason
from audit.plugins import CheckContext
from checks.ports import FAMILY
from checks.ports.collect import plan_requests
from checks.ports.lab import silent_server
from checks.ports.runner import (
    NMAP_MISSING,
    ScanRequest,
    build_arguments,
    ensure_nmap,
    port_scan_timeout,
    run_nmap,
    sanitise,
    version_host_timeout,
)
from tests.ports.conftest import requires_nmap, scan, target


def arguments_for(uri: str, is_root: bool = False) -> list[list[str]]:
    ctx = CheckContext(is_root=is_root)
    return [
        build_arguments(r, is_root=is_root, host_timeout_s=12.5)
        for r in plan_requests(target(uri), ctx)
    ]


def test_a_single_host_is_probed_without_discovery_by_connect_scan() -> None:
    (args,) = arguments_for("ports://127.0.0.1?ports=22,80")
    assert args == [
        "-sT",
        "-sV",
        "--version-intensity",
        "2",
        "-Pn",
        "-n",
        "-T4",
        "--host-timeout",
        "12500ms",
        "--unprivileged",
    ]


def test_no_port_list_means_the_top_1000_and_sv0_skips_detection() -> None:
    (args,) = arguments_for("ports://127.0.0.1?sv=0")
    assert "--top-ports" in args and args[args.index("--top-ports") + 1] == "1000"
    assert "-sV" not in args


def test_networks_get_host_discovery_and_root_gets_icmp_and_syn() -> None:
    (args,) = arguments_for("ports://10.0.0.0/28?scan=syn", is_root=True)
    assert "-Pn" not in args and "-sS" in args and "-sT" not in args
    assert "-PS21,22,23,25,80,443,445,3389,8080" in args and "-PE" in args
    assert "--unprivileged" not in args


def test_ipv6_hosts_get_dash_6() -> None:
    (args,) = arguments_for("ports://[::1]?ports=22")
    assert args[0] == "-6"


def test_a_name_pinned_to_both_families_is_scanned_on_both() -> None:
    pinned = target("ports://localhost?ports=22")
    pinned = type(pinned)(**{**pinned.__dict__, "addresses": ("::1", "127.0.0.1", "::1")})
    requests = plan_requests(pinned, CheckContext())
    assert [(r.hosts, r.ipv6) for r in requests] == [(("127.0.0.1",), False), (("::1",), True)]


def test_arguments_never_carry_user_text() -> None:
    # The host and the port list travel as python-nmap's hosts/ports, both validated.
    request = plan_requests(target("ports://example.org?ports=22"), CheckContext())[0]
    args = build_arguments(request, is_root=False, host_timeout_s=5)
    assert all("example" not in a and a != "22" for a in args)
    assert request.hosts == ("example.org",) and request.ports == "22"


def test_syn_scan_without_root_is_refused_not_downgraded() -> None:
    observation = scan("ports://127.0.0.1?ports=1&scan=syn", is_root=False)
    assert not observation.resources
    (problem,) = observation.problems
    assert problem.reason is Reason.ACCESS_DENIED
    assert "scan=syn needs root" in problem.message


@pytest.mark.parametrize(
    ("remaining", "expected"), [(30.0, 28.5), (60.0, 58.5), (2.0, 1.0), (0.5, 1.0)]
)
def test_the_port_scan_may_use_nearly_all_the_budget(remaining: float, expected: float) -> None:
    # a host whose port scan overruns is lost whole: versions never shorten it
    assert port_scan_timeout(remaining) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("remaining", "hosts", "expected"),
    [(29.0, 1, None), (29.0, 3, 21.0), (5.0, 2, 1.0)],
)
def test_service_detection_over_one_host_is_bounded_by_the_deadline_alone(
    remaining: float, hosts: int, expected: float | None
) -> None:
    # one host: a host timeout would stop a 26 s probe sequence at ~21 s and lose it;
    # several hosts: each gets its own limit so one slow host does not sink the run
    assert version_host_timeout(remaining, hosts) == (
        None if expected is None else pytest.approx(expected)
    )


def test_no_host_timeout_flag_when_none_is_given() -> None:
    request = plan_requests(target("ports://127.0.0.1?ports=22"), CheckContext())[0]
    assert "--host-timeout" not in build_arguments(request, is_root=False, host_timeout_s=None)


def test_sanitise_makes_one_short_printable_line() -> None:
    assert sanitise("bad\x1b[31m\r\nthing\x00  here") == "bad [31m thing here"
    assert len(sanitise("x" * 1000)) == 300


@pytest.fixture
def path_without_nmap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """An environment where nmap is not installed (PATH holds no nmap)."""
    monkeypatch.setenv("PATH", str(tmp_path))


@pytest.mark.usefixtures("path_without_nmap")
def test_missing_nmap_is_a_dependency_error_before_scanning() -> None:
    with pytest.raises(DependencyError, match="nmap is not installed: apt-get install nmap"):
        ensure_nmap()
    assert FAMILY.preflight is not None
    with pytest.raises(DependencyError):
        FAMILY.preflight()


@pytest.mark.usefixtures("path_without_nmap")
def test_missing_nmap_at_collect_time_is_a_problem() -> None:
    observation = scan("ports://127.0.0.1?ports=22")
    assert observation.resources == ()
    (problem,) = observation.problems
    assert problem.reason is Reason.NOT_IMPLEMENTED
    assert problem.message == NMAP_MISSING


@requires_nmap
def test_an_nmap_error_is_reported_sanitised() -> None:
    # Given arguments nmap refuses, when it runs, then its message comes back as data
    request = ScanRequest(hosts=("127.0.0.1",), ports="1")
    with pytest.raises(ObservationError) as failed:
        run_nmap(str(shutil.which("nmap")), request, ["--no-such-option"], 10)
    assert failed.value.reason is Reason.BUG
    assert "nmap failed" in str(failed.value)
    assert "\n" not in str(failed.value)


@requires_nmap
def test_a_hung_nmap_is_killed_at_the_budget() -> None:
    # Given a service that never answers and no host timeout, python-nmap's kill applies
    with silent_server() as silent:
        request = ScanRequest(hosts=("127.0.0.1",), ports=str(silent.port))
        started = time.monotonic()
        with pytest.raises(ObservationError) as failed:
            run_nmap(
                str(shutil.which("nmap")), request, ["-sT", "-sV", "-Pn", "-n", "--unprivileged"], 2
            )
        elapsed = time.monotonic() - started
    assert failed.value.reason is Reason.TIMEOUT
    assert elapsed < 4


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"version_intensity": 12}, "integer from 0 to 9"),
        ({"version_intensity": True}, "integer from 0 to 9"),
        ({"version_intensity": "7"}, "integer from 0 to 9"),
        ({"intensity": 7}, "unknown setting(s) intensity"),
        ([7], "must be a mapping"),
    ],
)
def test_bad_inventory_settings_are_refused(block: object, message: str) -> None:
    assert FAMILY.validate_options is not None
    with pytest.raises(ValueError, match=re.escape(message)):
        FAMILY.validate_options(block)


def test_inventory_settings_reach_nmap_and_bad_ones_stop_the_load(tmp_path: Path) -> None:
    from audit.errors import InventoryError
    from audit.inventory import load_inventory
    from audit.registry import load_families

    families = load_families()
    good = tmp_path / "good.yaml"
    good.write_text(
        "systems:\n  - name: Lab\n    targets: ['ports://127.0.0.1?ports=22']\n"
        "ports: {version_intensity: 8}\n"
    )
    inventory = load_inventory(good, families)
    ctx = CheckContext(options=inventory.options)
    (request,) = plan_requests(inventory.targets[0], ctx)
    args = build_arguments(request, is_root=False, host_timeout_s=5)
    assert args[args.index("--version-intensity") + 1] == "8"
    bad = tmp_path / "bad.yaml"
    bad.write_text(good.read_text().replace("8}", "10}"))
    with pytest.raises(InventoryError, match="ports: version_intensity must be"):
        load_inventory(bad, families)
