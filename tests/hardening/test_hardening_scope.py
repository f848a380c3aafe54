"""Nothing is sent outside the declared scope: a listener outside it sees no connection.

The scope declares only 127.0.0.1/32. A listener on 127.0.0.2 (loopback, but outside
the scope) counts every connection it accepts while ``rempart scan`` is asked, through
each family that opens sockets, to reach it: by address, by a network that contains it,
and by a name (``localhost``) that resolves outside the scope. An aws:// target's
endpoints pass the same guard: an HTTP endpoint outside the scope records that no signed
request (and no session token) ever reached it.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from fakes import CountingListener

from .conftest import Run, rempart

OUTSIDE = "127.0.0.2"


@pytest.fixture
def outside() -> Iterator[CountingListener]:
    listener = CountingListener(OUTSIDE)
    yield listener
    listener.close()


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text("scope:\n  networks: [127.0.0.1/32]\n")
    return path


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("tls://127.0.0.2:{port}", "not inside the declared scope"),
        ("smtp://127.0.0.2:{port}", "not inside the declared scope"),
        ("ports://127.0.0.2?ports={port}&sv=0", "not inside the declared scope"),
        ("ports://127.0.0.0/30?ports={port}&sv=0", "not inside the declared scope"),
    ],
)
def test_out_of_scope_address_or_network_gets_no_packet(
    tmp_path: Path, inventory: Path, outside: CountingListener, target: str, why: str
) -> None:
    # Given a scope of 127.0.0.1/32 and a listener on 127.0.0.2
    uri = target.format(port=outside.port)
    # When a scan is asked to reach it
    run = rempart("scan", uri, "-i", str(inventory), "--db", str(tmp_path / "r.db"))
    # Then it is refused before anything is sent
    assert run.code == 2 and why in run.err, run.err
    assert outside.connections == 0
    assert not (tmp_path / "r.db").exists()


def test_name_resolving_outside_the_scope_gets_no_packet(tmp_path: Path) -> None:
    # Given listeners on both loopback addresses ``localhost`` resolves to, and a scope
    # that holds neither
    listeners = [CountingListener("127.0.0.1")]
    if socket.has_ipv6:
        with contextlib.suppress(OSError):
            listeners.append(CountingListener("::1"))
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text("scope:\n  networks: [127.0.0.2/32]\n  domains: [example.test]\n")
    try:
        for uri in (
            f"tls://localhost:{listeners[0].port}",
            f"ports://localhost?ports={listeners[0].port}&sv=0",
        ):
            run = rempart("scan", uri, "-i", str(inventory), "--db", str(tmp_path / "r.db"))
            # Then each is refused, naming the address that is outside
            assert run.code == 2 and "resolves outside the declared networks" in run.err
        assert [listener.connections for listener in listeners] == [0] * len(listeners)
    finally:
        for listener in listeners:
            listener.close()


def test_inventory_scope_applies_to_every_system(tmp_path: Path, outside: CountingListener) -> None:
    # Given an inventory with one target inside and one outside its scope
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        "scope:\n  networks: [127.0.0.1/32]\n"
        "systems:\n"
        "  - name: inside\n    targets: ['tls://127.0.0.1:1']\n"
        f"  - name: outside\n    targets: ['tls://{OUTSIDE}:{outside.port}']\n"
    )
    # When it is scanned, then the whole scan is refused: nothing reaches either
    run = rempart("scan", "-i", str(inventory), "--db", str(tmp_path / "r.db"))
    assert run.code == 2 and OUTSIDE in run.err
    assert outside.connections == 0


def test_control_the_same_scan_inside_the_scope_does_connect(
    tmp_path: Path, inventory: Path
) -> None:
    # The listener is not deaf: inside the scope, the same kind of scan reaches it
    inside = CountingListener("127.0.0.1")
    try:
        run = rempart(
            "scan", f"tls://127.0.0.1:{inside.port}", "-i", str(inventory),
            "--db", str(tmp_path / "r.db"), "--timeout", "2", "--quiet",
        )  # fmt: skip
        assert run.code == 0, run.err
        assert inside.connections > 0
    finally:
        inside.close()


# --- AWS endpoints: the first request is signed and carries the session token -----------

ACCOUNT = "123456789012"
TOKEN = "session-token-that-must-stay-home"
DENIED = (
    b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>no</Message>"
    b"</Error><RequestId>x</RequestId></ErrorResponse>"
)


class CountingHTTPServer(ThreadingHTTPServer):
    """Counts the connections it accepts, before any request is read."""

    connections = 0

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.connections += 1
        return True


class RecordingEndpoint:
    """A real HTTP server on ``host`` standing for an AWS endpoint: it counts every
    connection, records every request's headers, and answers AccessDenied (so a scan that
    reaches it ends at once)."""

    def __init__(self, host: str) -> None:
        self.requests: list[dict[str, str]] = []
        self.server = CountingHTTPServer((host, 0), self._handler())
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        return self.server.connections

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                endpoint.requests.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(403)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(DENIED)))
                self.end_headers()
                self.wfile.write(DENIED)

            do_GET = do_POST

        return Handler

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def aws_credentials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Fake keys and a session token; no profile, role or configuration of the machine's."""
    for name in ("AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    return {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEEXAMPLE00",
        "AWS_SECRET_ACCESS_KEY": "secret-key-that-must-stay-home",
        "AWS_SESSION_TOKEN": TOKEN,
        "AWS_DEFAULT_REGION": "eu-west-3",
        "AWS_CONFIG_FILE": str(tmp_path / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@pytest.fixture
def aws_outside() -> Iterator[RecordingEndpoint]:
    endpoint = RecordingEndpoint(OUTSIDE)
    yield endpoint
    endpoint.close()


def scan_aws(tmp_path: Path, env: dict[str, str], inventory: str, *targets: str) -> Run:
    path = tmp_path / "inventory.yaml"
    path.write_text(inventory)
    return rempart(
        "scan", *targets, "-i", str(path), "--db", str(tmp_path / "r.db"),
        "-p", "aws-baseline", "--timeout", "5", "--quiet", env=env,
    )  # fmt: skip


SCOPE_127_0_0_1 = f"scope:\n  networks: [127.0.0.1/32]\n  aws:\n    accounts: ['{ACCOUNT}']\n"


@pytest.mark.parametrize(
    ("inventory", "target"),
    [
        # the review's case: the endpoint in the target typed on the command line
        (SCOPE_127_0_0_1, "aws://?endpoint={url}&regions=eu-west-3"),
        # the inventory's aws: block, for every aws target
        (
            SCOPE_127_0_0_1 + "aws:\n  endpoint: '{url}'\n",
            "aws://?regions=eu-west-3",
        ),
        # a per-service endpoint: STS alone, the very first call
        (
            SCOPE_127_0_0_1 + "aws:\n  endpoints: {{sts: '{url}'}}\n",
            "aws://?regions=eu-west-3",
        ),
    ],
)
def test_aws_endpoint_outside_the_scope_gets_no_request(
    tmp_path: Path,
    aws_credentials: dict[str, str],
    aws_outside: RecordingEndpoint,
    inventory: str,
    target: str,
) -> None:
    # Given a scope of 127.0.0.1/32 and an AWS endpoint listening on 127.0.0.2
    # When a scan is asked to call it
    run = scan_aws(
        tmp_path,
        aws_credentials,
        inventory.format(url=aws_outside.url),
        target.format(url=aws_outside.url),
    )
    # Then the scan is refused before a session exists: no signed request, no token
    assert run.code == 2, run.err
    assert f"address {OUTSIDE} is not inside the declared scope" in run.err
    assert (aws_outside.connections, aws_outside.requests) == (0, [])
    assert not (tmp_path / "r.db").exists()


def test_aws_endpoint_name_resolving_outside_the_scope_gets_no_request(
    tmp_path: Path, aws_credentials: dict[str, str]
) -> None:
    # Given an endpoint named ``localhost`` (127.0.0.1) and a scope that holds 127.0.0.2 only
    endpoint = RecordingEndpoint("127.0.0.1")
    try:
        port = endpoint.url.rsplit(":", 1)[1]
        run = scan_aws(
            tmp_path,
            aws_credentials,
            f"scope:\n  networks: [127.0.0.2/32]\n  aws:\n    accounts: ['{ACCOUNT}']\n",
            f"aws://?endpoint=http://localhost:{port}&regions=eu-west-3",
        )
        # Then the name is refused as a tls:// target's would be
        assert run.code == 2 and "resolves outside the declared networks" in run.err, run.err
        assert (endpoint.connections, endpoint.requests) == (0, [])
    finally:
        endpoint.close()


def test_control_an_aws_endpoint_inside_the_scope_gets_the_signed_request(
    tmp_path: Path, aws_credentials: dict[str, str], aws_outside: RecordingEndpoint
) -> None:
    # The endpoint is not deaf, and this is what the refused scans would have leaked
    run = scan_aws(
        tmp_path,
        aws_credentials,
        f"scope:\n  networks: [{OUTSIDE}/32]\n  aws:\n    accounts: ['{ACCOUNT}']\n",
        f"aws://?endpoint={aws_outside.url}&regions=eu-west-3",
    )
    assert run.code in (0, 1), run.err
    first = aws_outside.requests[0]
    assert first["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE")
    assert first["x-amz-security-token"] == TOKEN


def non_loopback_address() -> str:
    """An IPv4 address of this machine that is not loopback (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = str(probe.getsockname()[0])
        except OSError:
            address = "127.0.0.1"
    if address.startswith("127.") or address == "0.0.0.0":
        pytest.skip("this machine has no non-loopback IPv4 address to listen on")
    return address


@pytest.mark.parametrize("declared", [False, True])
def test_plain_http_endpoint_off_loopback_is_refused_before_any_connection(
    tmp_path: Path, aws_credentials: dict[str, str], declared: bool
) -> None:
    # Given an endpoint on a non-loopback address of this machine, over plain http, named
    # on the command line with no scope (which the scope rule allows) or inside the scope
    address = non_loopback_address()
    endpoint = RecordingEndpoint(address)
    scope = f"scope:\n  networks: [{address}/32]\n  aws:\n    accounts: ['{ACCOUNT}']\n"
    try:
        run = scan_aws(
            tmp_path,
            aws_credentials,
            scope if declared else "{}\n",
            f"aws://?endpoint={endpoint.url}&regions=eu-west-3",
        )
        # Then clear text is refused all the same, before a connection
        assert run.code == 2 and "plain http:// would send credentials" in run.err, run.err
        assert (endpoint.connections, endpoint.requests) == (0, [])
    finally:
        endpoint.close()


def test_plain_http_endpoint_under_a_declared_domain_is_refused(
    tmp_path: Path, aws_credentials: dict[str, str]
) -> None:
    # A declared domain admits the name, but does not license clear text
    run = scan_aws(
        tmp_path,
        aws_credentials,
        f"scope:\n  domains: [example.test]\n  aws:\n    accounts: ['{ACCOUNT}']\n",
        "aws://?endpoint=http://aws.example.test:9100&regions=eu-west-3",
    )
    assert run.code == 2 and "plain http://" in run.err, run.err


@pytest.mark.parametrize(
    ("target", "aws_block", "why"),
    [
        ("aws://prod?regions=eu-west-3", "", "calls AWS itself, which is not loopback"),
        (
            "aws://?endpoint=https://198.51.100.7&regions=eu-west-3",
            "",
            "no scope declared; only loopback targets",
        ),
        ("aws://?regions=eu-west-3", "aws:\n  endpoint: https://198.51.100.7\n", "no scope"),
    ],
)
def test_inventory_aws_target_without_scope_is_refused(
    tmp_path: Path, aws_credentials: dict[str, str], target: str, aws_block: str, why: str
) -> None:
    # Given an inventory that declares no scope and lists an aws:// target that is not
    # loopback (AWS itself, or a remote endpoint)
    inventory = f"systems:\n  - name: cloud\n    targets: ['{target}']\n{aws_block}"
    # When it is scanned, then it is refused like any remote target of an unscoped inventory
    run = scan_aws(tmp_path, aws_credentials, inventory)
    assert run.code == 2 and why in run.err, run.err
    assert not (tmp_path / "r.db").exists()


def test_inventory_aws_target_with_a_loopback_endpoint_needs_no_scope(
    tmp_path: Path, aws_credentials: dict[str, str], aws_outside: RecordingEndpoint
) -> None:
    # Loopback is what an unscoped inventory may scan, for aws:// as for tls://
    target = f"aws://?endpoint={aws_outside.url}&regions=eu-west-3"
    inventory = f"systems:\n  - name: cloud\n    targets: ['{target}']\n"
    run = scan_aws(tmp_path, aws_credentials, inventory)
    assert run.code in (0, 1), run.err
    assert aws_outside.requests


def test_role_of_an_account_outside_the_scope_is_refused_before_assume_role(
    tmp_path: Path, aws_credentials: dict[str, str], aws_outside: RecordingEndpoint
) -> None:
    # Given an endpoint inside the scope but a role whose ARN names another account
    role = "arn:aws:iam::999999999999:role/audit"
    run = scan_aws(
        tmp_path,
        aws_credentials,
        f"scope:\n  networks: [{OUTSIDE}/32]\n  aws:\n    accounts: ['{ACCOUNT}']\n",
        f"aws://?endpoint={aws_outside.url}&regions=eu-west-3&role={role}",
    )
    # Then no AssumeRole is sent: the ARN already says the account is outside
    assert run.code == 2 and "belongs to account 999999999999" in run.err, run.err
    assert (aws_outside.connections, aws_outside.requests) == (0, [])


def test_scope_without_aws_accounts_refuses_aws_targets_before_any_call(
    tmp_path: Path, aws_credentials: dict[str, str], aws_outside: RecordingEndpoint
) -> None:
    # A scope that lists no account would refuse whatever STS answered: refuse now
    run = scan_aws(
        tmp_path,
        aws_credentials,
        f"scope:\n  networks: [{OUTSIDE}/32]\n",
        f"aws://?endpoint={aws_outside.url}&regions=eu-west-3",
    )
    assert run.code == 2 and "lists no AWS account" in run.err, run.err
    assert (aws_outside.connections, aws_outside.requests) == (0, [])


OUT_OF_SCOPE = {
    "tls": "tls://127.0.0.2:{port}",
    "smtp": "smtp://127.0.0.2:{port}",
    "imap": "imap://127.0.0.2:{port}",
    "pop3": "pop3://127.0.0.2:{port}",
    "ports": "ports://127.0.0.2?ports={port}&sv=0",
    "aws": "aws://?endpoint=http://127.0.0.2:{port}&regions=eu-west-3",
    "openstack": "openstack://outside",
    "outscale": "outscale://outside",
    "https": "https://127.0.0.2:{port}/",
    "dns": "dns://outside.test",
    "mail": "mail://mail.outside.test?smtp_port={port}&mta_sts_port={port}",
}
"""For every scheme a family registers, a target that reaches the listener outside the
scope. A new family adds its line here, or the registry walk below fails."""


def test_every_registered_scheme_has_an_out_of_scope_case() -> None:
    from audit.registry import load_families

    schemes = set(load_families().by_scheme)
    assert schemes <= set(OUT_OF_SCOPE), (
        f"no scope attack written for {schemes - set(OUT_OF_SCOPE)}"
    )


@pytest.mark.parametrize("scheme", sorted(OUT_OF_SCOPE))
def test_registry_walk_every_family_refuses_out_of_scope(
    tmp_path: Path, outside: CountingListener, scheme: str
) -> None:
    # Given a scope of 127.0.0.1/32 (and the lab account), and a listener on 127.0.0.2
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(SCOPE_127_0_0_1)
    uri = OUT_OF_SCOPE[scheme].format(port=outside.port)
    # When each family is asked to reach it, then each refuses before any packet
    run = rempart("scan", uri, "-i", str(inventory), "--db", str(tmp_path / "r.db"))
    assert run.code == 2, run.err
    assert "scope" in run.err
    assert outside.connections == 0
    assert not (tmp_path / "r.db").exists()


def test_the_older_aws_accounts_key_is_read_with_a_warning(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(
        f"scope:\n  networks: [127.0.0.1/32]\n  aws_accounts: ['{ACCOUNT}']\n"
        f"systems:\n  - name: S\n    targets: ['aws://?endpoint=http://127.0.0.2:9&regions=eu-west-3']\n"
    )
    run = rempart("scan", "-i", str(inventory), "--db", str(tmp_path / "r.db"))
    assert run.code == 2  # still enforced: the endpoint is outside the networks
    assert "scope.aws_accounts is deprecated" in run.err
    assert "127.0.0.2" in run.err


@pytest.mark.parametrize(
    ("block", "why"),
    [
        ("azure: {subscriptions: [a1]}", "scope.azure: unknown scope block"),
        ("openstack: {project: [a1]}", "scope.openstack: expected {auth_urls"),
        ("aws: {acounts: ['123456789012']}", "scope.aws: expected {accounts"),
        ("aws: {accounts: ['12345']}", "scope.aws: accounts: '12345' is not a 12-digit"),
    ],
)
def test_a_wrong_scope_block_is_refused_with_its_line(tmp_path: Path, block: str, why: str) -> None:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(f"scope:\n  networks: [127.0.0.1/32]\n  {block}\n")
    run = rempart("scan", "tls://127.0.0.1:9", "-i", str(inventory), "--db", str(tmp_path / "r.db"))
    assert run.code == 2
    assert f"{inventory}:3: {why}" in run.err, run.err
