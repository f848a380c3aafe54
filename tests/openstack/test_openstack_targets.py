"""Targets, options and the scope block: everything decided before a request."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from audit.errors import ScopeError, TargetError
from audit.plugins import Scope
from checks.openstack import FAMILY
from checks.openstack.session import parse_options

from .conftest import parse


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("openstack://ovh", "openstack://ovh"),
        ("openstack://ovh?regions=GRA11,SBG5", "openstack://ovh?regions=GRA11,SBG5"),
        ("openstack://ovh?project=p1&regions=GRA11", "openstack://ovh?project=p1&regions=GRA11"),
        ("openstack://ovh?regions=GRA11&project=p1", "openstack://ovh?project=p1&regions=GRA11"),
    ],
)
def test_targets_are_made_canonical(raw: str, canonical: str) -> None:
    assert parse(raw).uri == canonical
    assert parse(raw).host == "ovh"


@pytest.mark.parametrize(
    "raw",
    [
        "openstack://",
        "openstack://-x",
        "openstack://user:pw@ovh",
        "openstack://ovh/path",
        "openstack://ovh?regions=",
        "openstack://ovh?regions=GRA 11",
        "openstack://ovh?project=a/b",
        "openstack://ovh?password=x",
        "openstack://ovh:5000",
    ],
)
def test_bad_targets_are_refused(raw: str) -> None:
    with pytest.raises(TargetError):
        parse(raw)


def test_options_and_scope_block_are_checked() -> None:
    assert parse_options({"max_attempts": 2}).max_attempts == 2
    bad: object
    for bad in ({"max_attempts": 0}, {"max_atempts": 2}, {"max_attempts": True}, []):
        with pytest.raises(ValueError, match="max_attempts"):
            parse_options(bad)
    assert FAMILY.validate_scope is not None
    block = FAMILY.validate_scope(
        {"auth_urls": ["https://auth.example:5000/v3/"], "projects": ["p"]}
    )
    assert block == {"auth_urls": ("https://auth.example:5000/v3",), "projects": ("p",)}
    for bad_block in (
        {"auth_url": ["x"]},
        {"auth_urls": "https://x"},
        {"auth_urls": ["ftp://x"]},
        {"auth_urls": ["https://u:p@x/v3"]},
        {"projects": ["a b"]},
    ):
        with pytest.raises(ValueError):
            FAMILY.validate_scope(bad_block)


class Counting:
    """A loopback listener that only counts the connections it accepts."""

    def __init__(self, host: str) -> None:
        self.sock = socket.create_server((host, 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()


@pytest.fixture
def listener() -> Iterator[Counting]:
    counting = Counting("127.0.0.1")
    yield counting
    counting.sock.close()


def _clouds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, auth_url: str) -> None:
    path = tmp_path / "clouds.yaml"
    path.write_text(
        "clouds:\n"
        "  c:\n"
        f"    auth: {{auth_url: '{auth_url}', username: u, password: pw-never-sent,"
        " project_name: p1, user_domain_id: default, project_domain_id: default}\n"
    )
    monkeypatch.setenv("OS_CLIENT_CONFIG_FILE", str(path))


@pytest.mark.parametrize(
    ("block", "why"),
    [
        ({}, "lists no OpenStack project"),
        ({"projects": ("p2",), "auth_urls": ("{auth}",)}, "project 'p1' is outside"),
        ({"projects": ("p1",), "auth_urls": ("http://127.0.0.1:1/v3",)}, "is not declared"),
    ],
)
def test_an_undeclared_project_or_auth_url_is_refused_before_any_call(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    listener: Counting,
    block: dict[str, tuple[str, ...]],
    why: str,
) -> None:
    # Given a cloud whose Keystone is a counting listener, and a declared scope
    auth = f"http://127.0.0.1:{listener.port}/v3"
    _clouds(tmp_path, monkeypatch, auth)
    blocks = {k: tuple(v.replace("{auth}", auth) for v in vals) for k, vals in block.items()}
    scope = Scope(networks=("127.0.0.1/32",), blocks={"openstack": blocks})
    # When the family's admit hook runs, then it refuses and nothing was contacted
    assert FAMILY.admit is not None
    with pytest.raises(ScopeError, match=why):
        FAMILY.admit(parse("openstack://c"), scope, {})
    assert listener.connections == 0


def test_a_declared_project_returns_the_auth_url_to_admit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clouds(tmp_path, monkeypatch, "https://keystone.example.gouv.fr:5000/v3/")
    scope = Scope(
        domains=("example.gouv.fr",),
        blocks={
            "openstack": {
                "projects": ("p1",),
                "auth_urls": ("https://keystone.example.gouv.fr:5000/v3",),
            }
        },
    )
    assert FAMILY.admit is not None
    reaches = FAMILY.admit(parse("openstack://c"), scope, {})
    assert [r.url for r in reaches] == ["https://keystone.example.gouv.fr:5000"]


def test_an_unknown_cloud_is_one_clear_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _clouds(tmp_path, monkeypatch, "http://127.0.0.1:1/v3")
    assert FAMILY.admit is not None
    with pytest.raises(ScopeError, match="Cloud nope was not found"):
        FAMILY.admit(parse("openstack://nope"), Scope(), {})


def test_importing_the_family_imports_no_openstacksdk() -> None:
    code = "import sys, checks.openstack; print('openstack' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def _rempart(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "audit", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=120, check=False,
    )  # fmt: skip


def test_an_auth_url_outside_the_networks_gets_no_packet(tmp_path: Path) -> None:
    # Given a Keystone on 127.0.0.2 (outside 127.0.0.1/32), declared in the openstack block
    outside = Counting("127.0.0.2")
    auth = f"http://127.0.0.2:{outside.port}/v3"
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(
        f"clouds:\n  c:\n    auth: {{auth_url: '{auth}', username: u, password: pw,"
        " project_name: p1, user_domain_id: default, project_domain_id: default}\n"
    )
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "scope:\n  networks: [127.0.0.1/32]\n"
        f"  openstack: {{auth_urls: ['{auth}'], projects: [p1]}}\n"
    )
    try:
        run = _rempart(
            "scan", "openstack://c", "-i", str(inventory), "--db", str(tmp_path / "r.db"),
            env={"OS_CLIENT_CONFIG_FILE": str(clouds)},
        )  # fmt: skip
    finally:
        outside.sock.close()
    # Then the scope guard refuses the auth URL when the scan is planned
    assert run.returncode == 2 and "127.0.0.2" in run.stderr, run.stderr
    assert outside.connections == 0
    assert not (tmp_path / "r.db").exists()


def test_a_wrong_openstack_block_in_the_inventory_is_exit_2(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("openstack:\n  max_atempts: 2\n")
    run = _rempart(
        "scan", "tls://127.0.0.1:9", "-i", str(inventory), "--db", str(tmp_path / "r.db"), env={}
    )
    assert run.returncode == 2 and "max_attempts" in run.stderr, run.stderr
