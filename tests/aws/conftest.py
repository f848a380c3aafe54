"""Shared fixtures: one seeded moto lab per session, and a faulty proxy in front of it.

Everything is real HTTP on 127.0.0.1: boto3 talks to a ``ThreadedMotoServer``; the fault
proxy is a plain ``http.server`` that answers AccessDenied or throttling errors for chosen
operations and forwards the rest to moto unchanged.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from audit.models import Observation, Target
from audit.plugins import CheckContext
from checks.aws import FAMILY
from checks.aws.collect import observe
from checks.aws.lab import Lab
from checks.aws.session import Api, settings_for

_S3_SUBRESOURCES = {
    "policy": "GetBucketPolicy",
    "acl": "GetBucketAcl",
    "encryption": "GetBucketEncryption",
    "versioning": "GetBucketVersioning",
    "logging": "GetBucketLogging",
    "object-lock": "GetObjectLockConfiguration",
    "publicAccessBlock": "GetPublicAccessBlock",
    "location": "GetBucketLocation",
}


@pytest.fixture(scope="session")
def aws_env() -> Iterator[dict[str, str]]:
    """Fake credentials only: nothing can reach a real account."""
    env = {
        **Lab().environment(),
        "AWS_EC2_METADATA_DISABLED": "true",
        "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name in (
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ROLE_ARN",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
        ):
            mp.delenv(name, raising=False)
        for name, value in env.items():
            mp.setenv(name, value)
        yield env


@pytest.fixture(scope="session")
def lab(aws_env: dict[str, str]) -> Iterator[Lab]:
    """A seeded lab shared by the read-only tests."""
    with Lab() as running:
        running.seed()
        yield running


def parse(raw: str) -> Target:
    return FAMILY.parse(urlsplit(raw), raw)


def context(**aws: object) -> CheckContext:
    return CheckContext(timeout=10, options={"aws": {"max_attempts": 2, **aws}})


def scan(raw: str, ctx: CheckContext) -> tuple[Observation, Api]:
    """Observe through the family's own path, keeping the Api to inspect its calls."""
    target = parse(raw)
    api = Api(settings_for(target, ctx.family_options("aws")), ctx.timeout)
    resources, problems = observe(target, ctx, api)
    return Observation(target, resources, problems), api


@pytest.fixture(scope="session")
def lab_scan(lab: Lab) -> tuple[Observation, Api]:
    return scan(lab.target(), context())


def by_type(observation: Observation, type_: str) -> dict[str, object]:
    return {r.key: r for r in observation.resources if r.type == type_}


class FaultProxy:
    """Loopback HTTP proxy: chosen operations fail, the rest reach moto unchanged."""

    def __init__(
        self,
        upstream: str,
        denied: set[str],
        throttled: set[str],
        ignored_params: frozenset[str] = frozenset(),
        rewrite: Callable[[str, bytes], bytes] | None = None,
    ):
        self.upstream = urlsplit(upstream)
        self.denied, self.throttled = denied, throttled
        self.ignored_params = ignored_params  # query parameters the "provider" ignores
        self.rewrite = rewrite  # (operation, body) -> body: a provider that answers more
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = proxy.operation(self.command, self.path, self.headers, body)
                if operation in proxy.denied or operation in proxy.throttled:
                    self._fail(operation, operation in proxy.denied)
                else:
                    self._forward(operation, body)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _any

            def _fail(self, operation: str, denied: bool) -> None:
                status, content_type, payload = proxy.error(self.headers, operation, denied)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _forward(self, operation: str, body: bytes) -> None:
                conn = http.client.HTTPConnection(
                    str(proxy.upstream.hostname), proxy.upstream.port, timeout=10
                )
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, proxy.strip(self.path), body=body, headers=headers)
                answer = conn.getresponse()
                payload = answer.read()
                if proxy.rewrite is not None:
                    payload = proxy.rewrite(operation, payload)
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                conn.close()

        return Handler

    def strip(self, path: str) -> str:
        """The path without the query parameters this provider ignores."""
        if not self.ignored_params:
            return path
        parts = urlsplit(path)
        kept = [
            pair
            for pair in parts.query.split("&")
            if pair and pair.split("=", 1)[0] not in self.ignored_params
        ]
        return parts._replace(query="&".join(kept)).geturl()

    @staticmethod
    def operation(method: str, path: str, headers: object, body: bytes) -> str:
        target = headers.get("X-Amz-Target")  # type: ignore[attr-defined]
        if target:
            return str(target).split(".")[-1]
        form = parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
        query = parse_qs(urlsplit(path).query, keep_blank_values=True)
        for key, name in _S3_SUBRESOURCES.items():
            if key in query and method == "GET":
                return name
        return f"{method} {urlsplit(path).path}"

    @staticmethod
    def error(headers: object, operation: str, denied: bool) -> tuple[int, str, bytes]:
        auth = str(headers.get("Authorization", ""))  # type: ignore[attr-defined]
        if headers.get("X-Amz-Target"):  # type: ignore[attr-defined]
            kind = "AccessDeniedException" if denied else "ThrottlingException"
            body = f'{{"__type":"{kind}","message":"{operation} refused by the test proxy"}}'
            return 400, "application/x-amz-json-1.1", body.encode()
        if "/ec2/" in auth:
            code = "UnauthorizedOperation" if denied else "RequestLimitExceeded"
            xml = (
                f"<Response><Errors><Error><Code>{code}</Code><Message>no</Message></Error>"
                "</Errors><RequestID>x</RequestID></Response>"
            )
            return (403 if denied else 503), "text/xml", xml.encode()
        if "/s3/" in auth:
            code = "AccessDenied" if denied else "SlowDown"
            xml = f"<Error><Code>{code}</Code><Message>no</Message><RequestId>x</RequestId></Error>"
            return (403 if denied else 503), "application/xml", xml.encode()
        code = "AccessDenied" if denied else "Throttling"
        xml = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>no</Message>"
            "</Error><RequestId>x</RequestId></ErrorResponse>"
        )
        return (403 if denied else 400), "text/xml", xml.encode()
