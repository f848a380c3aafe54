"""Error paths: every way an endpoint can fail to answer becomes a Problem, in bounded time."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from audit.models import Reason
from checks.tls import lab

from .conftest import scan


def only_problem(uri: str, timeout: float = 4.0):
    observation = scan(uri, timeout=timeout)
    assert not observation.resources
    assert len(observation.problems) == 1
    return observation.problems[0]


def test_closed_port_is_refused() -> None:
    problem = only_problem(f"tls://127.0.0.1:{lab.closed_port()}")
    assert problem.reason is Reason.REFUSED
    assert "refused" in problem.message


def test_black_hole_times_out_within_bounds() -> None:
    # given a port that accepts TCP and never answers
    with lab.BlackHoleServer() as server:
        started = time.monotonic()
        problem = only_problem(f"tls://127.0.0.1:{server.port}", timeout=4.0)
        elapsed = time.monotonic() - started
    # then it is a timeout, and it cost about one probe timeout (timeout / 4), not more
    assert problem.reason is Reason.TIMEOUT
    assert elapsed < 2.5


def test_black_hole_does_not_slow_the_others(modern_server: lab.PythonTlsServer) -> None:
    # given a black hole and a healthy server scanned at the same time
    with lab.BlackHoleServer() as hole, ThreadPoolExecutor(2) as pool:
        started = time.monotonic()
        stuck = pool.submit(scan, f"tls://127.0.0.1:{hole.port}", None, 8.0)
        healthy = pool.submit(scan, f"tls://localhost:{modern_server.port}?http_port=0", None, 8.0)
        healthy_done = healthy.result()
        healthy_elapsed = time.monotonic() - started
        assert stuck.result().problems[0].reason is Reason.TIMEOUT
    # then the healthy one finished long before the black hole's timeout
    assert healthy_done.resources and healthy_elapsed < 1.5


def test_reset_is_unreachable_with_reason() -> None:
    with lab.ResetServer() as server:
        problem = only_problem(f"tls://127.0.0.1:{server.port}")
    assert problem.reason is Reason.UNREACHABLE
    assert "reset" in problem.message


def test_non_tls_speaker_is_named() -> None:
    with lab.BannerServer() as server:
        problem = only_problem(f"tls://127.0.0.1:{server.port}")
    assert problem.reason is Reason.UNREACHABLE
    assert "not TLS" in problem.message and "SSH-2.0" in problem.message


def test_plain_http_on_a_tls_port_is_not_tls() -> None:
    # given a plain HTTP server: it waits for a request, then answers 400 to our ClientHello
    with lab.PlainHttpServer(status=400, location=None) as server:
        problem = only_problem(f"tls://127.0.0.1:{server.port}")
    assert problem.reason is Reason.UNREACHABLE
    assert "not TLS" in problem.message


def test_smtp_without_starttls(ec_leaf: lab.Issued) -> None:
    with lab.SmtpStartTlsServer(lab.server_context(ec_leaf), offer_starttls=False) as server:
        problem = only_problem(f"smtp://127.0.0.1:{server.port}")
    assert problem.reason is Reason.UNREACHABLE
    assert "STARTTLS" in problem.message


def test_overall_timeout_bounds_the_whole_scan() -> None:
    with lab.BlackHoleServer() as server:
        started = time.monotonic()
        observation = scan(f"tls://127.0.0.1:{server.port}", timeout=1.0)
        elapsed = time.monotonic() - started
    assert observation.problems[0].reason is Reason.TIMEOUT
    assert elapsed < 2.0


@pytest.mark.parametrize(
    "uri",
    [
        "tls://",
        "tls://host:99999",
        "tls://user:pw@host",
        "tls://host/path",
        "tls://host?x=1",
        "tls://host?sni=bad_name!",
        "tls://host?http_port=x",
        "ftp://host",
        "tls://-bad-.example",
    ],
)
def test_bad_targets_are_refused(uri: str) -> None:
    from urllib.parse import urlsplit

    from audit.errors import TargetError
    from checks.tls import FAMILY

    with pytest.raises(TargetError):
        FAMILY.parse(urlsplit(uri), uri)


@pytest.mark.parametrize(
    ("uri", "key", "port"),
    [
        ("tls://Example.TEST", "tls://example.test:443", 443),
        ("smtp://mail.example.test", "smtp://mail.example.test:25", 25),
        ("tls://[::1]:8443", "tls://[::1]:8443", 8443),
        ("tls://127.0.0.1:4433?sni=www.example.test", "tls://127.0.0.1:4433", 4433),
    ],
)
def test_targets_normalise(uri: str, key: str, port: int) -> None:
    from urllib.parse import urlsplit

    from checks.tls import FAMILY

    target = FAMILY.parse(urlsplit(uri), uri)
    assert (target.uri, target.port) == (key, port)
