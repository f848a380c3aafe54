"""Cloud APIs that misbehave, through a real loopback HTTP proxy in front of moto.

The proxy (tests/aws/conftest.py's, extended here) answers chosen operations with a
500, a body cut in the middle, or silence; tests/aws covers AccessDenied, throttling
and an endpoint that is down at the collect level. Each misbehaviour must end as an
``unknown`` fact or a problem naming the IAM action, with a reason, in bounded time,
and the rest of the account must still be observed.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

import pytest

from audit.models import Observation, Reason
from audit.plugins import CheckContext
from checks.aws import FAMILY
from tests.aws.conftest import FaultProxy

from .conftest import rempart

HANG_S = 30


class MisbehavingProxy(FaultProxy):
    """Operations in ``broken`` get a 500, a truncated body or no answer at all.

    Only FaultProxy's server and its naming of operations are reused; answers, good and
    bad, are written here."""

    def __init__(self, upstream: str, broken: dict[str, str]):
        self.broken = broken
        super().__init__(upstream, denied=set(broken), throttled=set())

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy, base = self, super()._handler()

        class Handler(base):  # type: ignore[valid-type,misc]
            def _any(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                operation = proxy.operation(self.command, self.path, self.headers, body)
                mode = proxy.broken.get(operation)
                if mode is None:
                    self._pass_through(body)
                elif mode == "hang":
                    time.sleep(HANG_S)
                elif mode == "500":
                    self._answer(500, b"<Error><Code>InternalError</Code><Message>boom</Message>"
                                 b"</Error>")  # fmt: skip
                else:
                    self._truncated(body)

            do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _any

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _upstream(self, body: bytes) -> tuple[int, list[tuple[str, str]], bytes]:
                upstream = proxy.upstream
                conn = http.client.HTTPConnection(str(upstream.hostname), upstream.port)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                payload = answer.read()
                conn.close()
                return answer.status, answer.getheaders(), payload

            def _pass_through(self, body: bytes) -> None:
                status, headers, payload = self._upstream(body)
                self.send_response(status)
                for key, value in headers:
                    if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _truncated(self, body: bytes) -> None:
                """Moto's real answer, cut in the middle: the connection closes early."""
                payload = self._upstream(body)[2]
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload[: len(payload) // 2])
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True

        return Handler


def collect(uri: str, timeout: float = 2) -> tuple[Observation, float]:
    target = FAMILY.parse(urlsplit(uri), uri)
    started = time.monotonic()
    observation = FAMILY.collect(
        target, CheckContext(timeout=timeout, options={"aws": {"max_attempts": 2}})
    )
    return observation, time.monotonic() - started


@pytest.fixture(scope="module")
def misbehaving(aws_lab: Any) -> dict[str, Any]:
    broken = {
        "ListKeys": "500",
        "GetBucketVersioning": "truncated",
        "DescribeSecurityGroups": "truncated",
        "DescribeDBInstances": "hang",
    }
    with MisbehavingProxy(aws_lab.url, broken) as proxy:
        observation, elapsed = collect(f"aws://?endpoint={proxy.url}&regions=eu-west-3")
    return {"observation": observation, "elapsed": elapsed}


def problems_for(observation: Observation, resource_type: str) -> list[Any]:
    return [p for p in observation.problems if p.resource_type == resource_type]


def test_a_500_is_a_service_error_for_that_type_only(misbehaving: dict[str, Any]) -> None:
    observation = misbehaving["observation"]
    (problem,) = problems_for(observation, "aws.kms.key")
    assert problem.reason is Reason.UNREACHABLE and "kms:ListKeys" in problem.message
    assert "HTTP 500" in problem.message
    assert any(r.type == "aws.s3.bucket" for r in observation.resources)


def test_a_truncated_answer_leaves_the_fact_unknown(misbehaving: dict[str, Any]) -> None:
    buckets = [r for r in misbehaving["observation"].resources if r.type == "aws.s3.bucket"]
    assert buckets
    for bucket in buckets:
        unknown = {name: p for name, p in bucket.unknown.items() if "Versioning" in p.message}
        assert unknown, bucket.unknown
        assert all(p.reason is not Reason.ACCESS_DENIED for p in unknown.values())
        assert all("s3:GetBucketVersioning" in p.message for p in unknown.values())
        assert "encryption" in " ".join(bucket.facts) or bucket.facts  # the rest observed


def test_a_truncated_list_is_unreachable_not_a_bug(misbehaving: dict[str, Any]) -> None:
    (problem,) = problems_for(misbehaving["observation"], "aws.ec2.security_group")
    assert problem.reason is Reason.UNREACHABLE
    assert "ec2:DescribeSecurityGroups: unreadable answer" in problem.message


def test_a_silent_api_is_a_timeout_within_the_budget(misbehaving: dict[str, Any]) -> None:
    (problem,) = problems_for(misbehaving["observation"], "aws.rds.instance")
    assert problem.reason is Reason.TIMEOUT and "rds:DescribeDBInstances" in problem.message
    # 2 s per call, two attempts: bounded well below the proxy's 30 s silence
    assert misbehaving["elapsed"] < HANG_S / 2


def test_an_endpoint_that_is_down_ends_as_errors_on_the_command_line(tmp_path: Any) -> None:
    run = rempart(
        "scan", "aws://?endpoint=http://127.0.0.1:9&regions=eu-west-3", "-p", "aws-baseline",
        "--db", str(tmp_path / "r.db"), "--timeout", "3", "--fail-on", "high", "--quiet",
        "-o", str(tmp_path / "r.json"),
        env={"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y",
             "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
             "AWS_EC2_METADATA_DISABLED": "true"},
    )  # fmt: skip
    # a gate fails closed: exit 3, every rule an error with the reason
    assert run.code == 3, run.err
    assert run.elapsed < 20
    findings = json.loads((tmp_path / "r.json").read_text())["findings"]
    assert findings and {f["status"] for f in findings} == {"error"}
    assert {f["reason"] for f in findings} == {"unreachable"}


def test_a_denied_call_errors_only_the_rules_that_need_it(aws_lab: Any, tmp_path: Any) -> None:
    # Given an audit role that may not read bucket policies, scanned end to end
    from audit.planning import resolve_policy
    from audit.registry import load_families

    packs = ("aws-baseline", "cis-aws-foundations")
    with FaultProxy(aws_lab.url, denied={"GetBucketPolicy"}, throttled=set()) as proxy:
        run = rempart(
            "scan", f"aws://?endpoint={proxy.url}&regions=eu-west-3",
            *(a for pack in packs for a in ("-p", pack)),
            "--db", str(tmp_path / "r.db"), "-o", str(tmp_path / "r.json"), "--quiet",
            env=aws_lab.environment(),
        )  # fmt: skip
    assert run.code == 0, run.err
    findings = json.loads((tmp_path / "r.json").read_text())["findings"]
    buckets = [f for f in findings if f["resource_type"] == "aws.s3.bucket"]
    types = load_families().resource_types()
    reads = {r.id: r.reads for p in packs for r in resolve_policy(p, types).rules}
    policy_facts = {"policy_allows_public", "denies_insecure_transport", "is_public"}
    # Then the bucket rules that read a policy-derived fact are errors naming the action,
    needing = [f for f in buckets if reads[f["rule_id"]] & policy_facts]
    others = [f for f in buckets if not reads[f["rule_id"]] & policy_facts]
    assert needing and others
    assert all(f["status"] == "error" and f["reason"] == "access_denied" for f in needing)
    assert all("s3:GetBucketPolicy" in f["message"] for f in needing)
    # and every other bucket rule is judged as usual
    assert {f["status"] for f in others} <= {"pass", "fail", "skip"}
    assert {"pass", "fail"} <= {f["status"] for f in others}
