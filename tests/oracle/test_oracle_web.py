"""The web family's MDN Observatory score against the Observatory itself, on the same sites.

The oracle is the npm package ``@mdn/mdn-http-observatory`` (the code behind the MDN HTTP
Observatory), installed by ``make observatory-oracle`` into ``.oracle-observatory``
(installed here on first use when missing). Its command line scans ports 80 and 443 of a
host name only, so ``observatory_scan.mjs`` runs its retriever with the lab's ports and
the same aggregation as its ``scan()``. Its install script downloads Chromium's HSTS preload
list, which cannot be fetched here; the Makefile writes an empty one, so no host is
preloaded on either side (Rempart does not ship the list: a documented difference).

Every lab site is scored by both, over loopback, with the lab CA trusted on both sides
(``NODE_EXTRA_CA_CERTS``); the score, the grade and each test's expectation must agree.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from checks.web import lab
from tests.web.conftest import facts_of, sites

pytestmark = pytest.mark.oracle

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / ".oracle-observatory" / "node_modules" / "@mdn" / "mdn-http-observatory"
HARNESS = Path(__file__).with_name("observatory_scan.mjs")
EXTRA = [
    lab.Site(
        "hsts-cookie",
        (
            ("Strict-Transport-Security", "max-age=86400"),
            ("Set-Cookie", "sessionid=1; Path=/; HttpOnly"),
            ("Set-Cookie", "csrftoken=2; Path=/; Secure"),
            ("Referrer-Policy", "unsafe-url"),
            ("X-Frame-Options", "ALLOW-FROM https://example.org"),
            ("Cross-Origin-Resource-Policy", "cross-origin"),
        ),
    ),
    lab.Site(
        "mixed",
        (
            ("Content-Security-Policy", "default-src 'self'; img-src http://img.example.org"),
            ("Strict-Transport-Security", "max-age=31536000"),
            ("X-Content-Type-Options", "nosniff"),
            ("Set-Cookie", "pref=1; Secure; SameSite=Lax"),
        ),
    ),
    lab.Site(
        "eval",
        (
            ("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-eval'"),
            ("Referrer-Policy", "bogus"),
            ("Cross-Origin-Resource-Policy", "nonsense"),
        ),
    ),
    lab.Site("duplicate", (("Content-Security-Policy", "script-src 'self'; script-src 'none'"),)),
    lab.Site("report-only", (("Content-Security-Policy-Report-Only", "default-src 'self'"),)),
    lab.Site(
        "strict-dynamic",
        (("Content-Security-Policy", "script-src 'strict-dynamic' 'self'; object-src 'none'"),),
    ),
    lab.Site(
        "scripts",
        (("Set-Cookie", "login=1; Secure; SameSite=Bogus"),),
        '<script src="/local.js"></script><script src="http://cdn.example.org/a.js"></script>'
        '<script src="//cdn.example.org/b.js" integrity="sha384-x"></script>',
    ),
    lab.Site(
        "meta",
        (("X-Content-Type-Options", "nosniff"),),
        '<html><head><meta http-equiv="Content-Security-Policy" content="default-src \'none\';'
        ' frame-ancestors \'none\'"><meta http-equiv="Referrer-Policy" content="no-referrer">'
        '<meta name="referrer" content="unsafe-url">'
        "</head><body></body></html>",
    ),
    lab.Site(
        "dupes",
        (
            ("X-Content-Type-Options", "nosniff"),
            ("X-Content-Type-Options", "nosniff"),
            ("Content-Security-Policy", "default-src 'self'"),
            ("Content-Security-Policy", "script-src 'none'"),
            ("Strict-Transport-Security", "max-age=31536000"),
            ("Strict-Transport-Security", "max-age=31536000"),
            ("Set-Cookie", "sessionid=; Path=/; Max-Age=0"),
        ),
    ),
    lab.Site("elsewhere", redirect="https://127.0.0.1:{port[hardened]}/", plain=True),
]
SITES = (
    "hardened",
    "bare",
    "nonce",
    "cors",
    "inline",
    "expired",
    "nocontact",
    *(site.name for site in EXTRA if not site.plain),
)
HTTP = {"hardened": "upgrade", "mixed": "elsewhere"}
"""Plain HTTP each site is scored with (the others: a plain site that answers 200)."""


@pytest.fixture(scope="module")
def observatory() -> Path:
    if not shutil.which("node") or not shutil.which("nginx"):
        pytest.skip("node and nginx are needed (make sysdeps)")
    if not (PACKAGE / "package.json").exists():
        subprocess.run(["make", "-s", "observatory-oracle"], cwd=REPO, check=False, timeout=600)
    if not (PACKAGE / "package.json").exists():
        pytest.skip("@mdn/mdn-http-observatory could not be installed (make observatory-oracle)")
    return PACKAGE


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[lab.NginxLab, str]]:
    pki = lab.Pki(tmp_path_factory.mktemp("observatory-pki"))
    with lab.NginxLab(pki.issue(("localhost", "127.0.0.1")), [*sites(), *EXTRA]) as running:
        yield running, pki.ca_file


def theirs(package: Path, web: lab.NginxLab, ca_file: str, name: str) -> dict[str, Any]:
    plain = web.port(HTTP.get(name, "plain"))
    run = subprocess.run(
        ["node", str(HARNESS), str(package), "localhost", str(plain), str(web.port(name))],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env={**os.environ, "NODE_EXTRA_CA_CERTS": ca_file},
    )
    result: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return result


def ours(web: lab.NginxLab, ca_file: str, name: str) -> dict[str, Any]:
    plain = web.port(HTTP.get(name, "plain"))
    url = f"https://localhost:{web.port(name)}/"
    observed: dict[str, Any] = facts_of(url, ca_file, http_port=plain)["observatory"]
    return observed


@pytest.mark.parametrize("name", SITES)
def test_the_score_agrees_with_the_observatory(
    observatory: Path, web: tuple[lab.NginxLab, str], name: str
) -> None:
    nginx, ca_file = web
    expected, got = theirs(observatory, nginx, ca_file, name), ours(nginx, ca_file, name)
    assert got["algorithm_version"] == expected["algorithm_version"]
    tests = {test: value["result"] for test, value in got["tests"].items()}
    assert tests == {test: value["result"] for test, value in expected["tests"].items()}
    assert (got["score"], got["grade"]) == (expected["score"], expected["grade"])
