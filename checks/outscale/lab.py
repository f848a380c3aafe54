"""A loopback stand-in for the OAPI, built from Outscale's published OpenAPI specification.

osc-sdk-python ships ``outscale.yaml`` (the specification of outscale/osc-api); every
operation there carries example answers. :class:`FakeOapi` serves ``POST /api/v1/<Action>``
with the operation's first example (``paths./<Action>.post.responses.200...examples``),
unless a test replaced it, after checking that the request is signed (an
``Authorization`` header; the signature itself is not verified). The examples describe a
flawed account: no trusted environment, no maximum key lifetime, an API access rule open
to 0.0.0.0/0. A fault table answers chosen actions with an OAPI error and a status (401,
403, 429, 500) and every request is logged. :func:`write_profile` writes the SDK's
``config.json`` for the lab. Nothing here is imported by a scan.
"""

from __future__ import annotations

import copy
import json
import os
import threading
from functools import cache
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from audit.labkit import HandlerServer

LAB_ACCESS_KEY = "LABACCESSKEY00000000"
LAB_SECRET_KEY = "lab-oapi-secret-5d9e0c1f"  # noqa: S105 - loopback lab credential
ERRORS = {401: "AuthFailure", 403: "AccessDenied", 429: "TooManyRequests", 500: "InternalError"}


@cache
def spec_examples() -> dict[str, Any]:
    """Action → the first example answer of the SDK's OpenAPI specification."""
    import osc_sdk_python
    import yaml

    path = Path(osc_sdk_python.__file__).parent / "resources" / "outscale.yaml"
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec = yaml.load(path.read_text(), Loader=loader)  # noqa: S506 - a safe loader
    found: dict[str, Any] = {}
    for route, item in spec["paths"].items():
        content = item.get("post", {}).get("responses", {}).get("200", {}).get("content", {})
        examples = content.get("application/json", {}).get("examples") or {}
        if examples:
            found[route.lstrip("/")] = next(iter(examples.values()))["value"]
    return found


class FakeOapi:
    """The fake's state: answers by action, faults, and the requests seen."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = copy.deepcopy(spec_examples())
        self.faults: dict[str, int] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()
        self._server: HandlerServer | None = None

    def __enter__(self) -> FakeOapi:
        self._server = HandlerServer(_Handler, settings={"fake": self}).__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.__exit__(*exc)

    @property
    def endpoint(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.port}/api/v1"


def write_profile(directory: Path, endpoint: str, name: str = "lab") -> Path:
    """osc-sdk-python's ``config.json`` with one profile aimed at the fake."""
    path = directory / "osc-config.json"
    profile = {
        "access_key": LAB_ACCESS_KEY,
        "secret_key": LAB_SECRET_KEY,
        "region": "eu-west-2",
        "protocol": "http",
        "endpoints": {"api": endpoint},
    }
    path.write_text(json.dumps({name: profile}))
    os.chmod(path, 0o600)
    return path


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_POST(self) -> None:
        fake: FakeOapi = self.server.settings["fake"]  # type: ignore[attr-defined]
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        action = self.path.rsplit("/", 1)[-1]
        with fake.lock:
            fake.requests.append(action)
        if not self.headers.get("Authorization"):
            self._send(401, _error(401))
        elif action in fake.faults:
            self._send(fake.faults[action], _error(fake.faults[action]))
        elif action not in fake.answers:
            self._send(400, {"Errors": [{"Type": "InvalidAction", "Code": "12000"}]})
        else:
            self._send(200, fake.answers[action])

    def _send(self, status: int, body: Any) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


def _error(status: int) -> dict[str, Any]:
    kind = ERRORS.get(status, "InternalError")
    return {
        "Errors": [{"Type": kind, "Code": str(status), "Details": ""}],
        "ResponseContext": {"RequestId": "0475ca1e-d0c5-441d-712a-da55a4175157"},
    }
