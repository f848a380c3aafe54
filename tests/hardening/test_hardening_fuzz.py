"""Property tests: no generated input makes a parser raise anything but our typed errors.

Policy and inventory text goes through the real loaders, target URIs through the real
families and the scope guard, nmap XML through the reader and the resource builders,
server bytes through the TLS flight reader with well-formed records around hostile
handshake messages, facts through the evaluator with conditions the loader accepted.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape, quoteattr

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.errors import RempartError
from audit.evaluate import BoundRule, evaluate_rule
from audit.inventory import load_inventory, parse_target
from audit.models import Resource
from audit.plugins import Scope
from audit.policy import load_policy
from audit.registry import load_families
from audit.scope import ScopeGuard
from checks.ports import FAMILY as PORTS
from checks.ports.facts import ScanFacts, host_resource, parse_report, service_resources
from checks.tls import wire

FAMILIES = load_families()
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- YAML documents ---------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True),
    st.text(max_size=8),
    st.sampled_from(["tls.endpoint", "port", "eq", "in", "matches", "TLS-X-001", "high", "[", "@"]),
)
keys = st.sampled_from(
    ["policy", "title", "rules", "params", "id", "resource", "where", "expect", "severity",
     "controls", "remediation", "key", "op", "value", "param", "all", "any", "not", "each",
     "default", "scope", "systems", "targets", "name", "networks", "domains", "aws", "trust"]
)  # fmt: skip
trees = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(keys, inner, max_size=6)),
    max_leaves=25,
)
leaves = st.fixed_dictionaries(
    {
        "key": st.sampled_from(["port", "a.b", "length(x)", "x[?y=='z']", "@", "lenght(x)"]),
        "op": st.sampled_from(["eq", "in", "matches", "exists", "lt", "subset_of", "teleport"]),
    },
    optional={"value": trees, "param": st.sampled_from(["p", "q"])},
)
conditions = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(lambda items: {"all": items}, st.lists(inner, max_size=3)),
        st.builds(lambda items: {"any": items}, st.lists(inner, max_size=3)),
        st.builds(lambda item: {"not": item}, inner),
        st.builds(lambda item: {"each": {"key": "items", "expect": item}}, inner),
    ),
    max_leaves=6,
)
rules = st.fixed_dictionaries(
    {
        "id": st.sampled_from(["FUZZ-RULE-001", "bad id"]),
        "title": st.text(max_size=5),
        "resource": st.sampled_from(["tls.endpoint", "net.service", "nope"]),
        "expect": st.one_of(conditions, trees),
        "severity": st.sampled_from(["high", "low", "dire"]),
        "remediation": st.text(max_size=3),
    },
    optional={"where": conditions, "controls": trees},
)
policies = st.fixed_dictionaries(
    {"policy": st.sampled_from(["fuzz", "Bad Name"]), "title": st.text(max_size=5),
     "rules": st.lists(rules, max_size=3)},
    optional={"params": st.one_of(trees, st.dictionaries(
        st.sampled_from(["p", "q"]), st.fixed_dictionaries({"default": trees})))},
)  # fmt: skip
inventories = st.fixed_dictionaries(
    {},
    optional={
        "scope": trees,
        "systems": st.lists(
            st.fixed_dictionaries(
                {"name": st.text(max_size=3)},
                optional={"targets": st.lists(
                    st.sampled_from(["tls://localhost", "ports://127.0.0.1/30", "aws://",
                                     "tls://$(id)", 1, None]), max_size=3)},
            ),
            max_size=3,
        ),
        "policies": trees, "params": trees, "trust": trees, "aws": trees, "ports": trees,
    },
)  # fmt: skip


def dump(data: Any) -> str:
    try:
        return yaml.safe_dump(data, allow_unicode=True)
    except yaml.YAMLError:
        return "x: 1\n"


@FUZZ
@given(st.one_of(policies.map(dump), trees.map(dump), st.text(max_size=80)))
def test_policy_loader_raises_only_policy_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    with contextlib.suppress(RempartError):
        load_policy(path, FAMILIES.resource_types())


@FUZZ
@given(st.one_of(inventories.map(dump), trees.map(dump), st.text(max_size=80)))
def test_inventory_loader_raises_only_inventory_errors(tmp_path: Path, text: str) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    with contextlib.suppress(RempartError):
        load_inventory(path, FAMILIES)


# --- target URIs ------------------------------------------------------------------------

uri_parts = st.sampled_from(
    ["[", "]", "::1", "::ffff:127.0.0.1", "127.0.0.1", "fe80::1%eth0", "%25", "1", ":", "/",
     "24", "0", "?", "&", "=", "ports", "sv", "scan", "http_port", "sni", "regions",
     "endpoint", "role", "http://", "localhost", "-", ".", "a", "\u00e9", "xn--", "\u0660",
     "\uff10", "%41", "99999", "0x7f", "@", "#", ";", "$(", "`", "\n", " "]
)  # fmt: skip
uris = st.tuples(
    st.sampled_from(["tls://", "ports://", "aws://", "smtp://", ""]),
    st.lists(uri_parts, max_size=10).map("".join),
).map("".join)


@FUZZ
@given(st.one_of(uris, st.text(max_size=40)))
def test_target_parser_and_scope_guard_raise_only_typed_errors(raw: str) -> None:
    try:
        target = parse_target(raw, FAMILIES)
        guard = ScopeGuard(Scope(networks=("127.0.0.0/8",)), resolver_timeout=0.5)
        (admitted,) = guard.admit([target], FAMILIES)
    except RempartError:
        return
    assert not any(ch.isspace() or ord(ch) < 32 for ch in admitted.host)
    assert not admitted.host.startswith("-")


# --- nmap XML ---------------------------------------------------------------------------

tags = st.sampled_from(
    ["host", "status", "address", "hostnames", "hostname", "ports", "port", "state",
     "service", "cpe", "extraports", "runstats", "finished", "hosts"]
)  # fmt: skip
attribute_values = st.one_of(
    st.text(max_size=6),
    st.sampled_from(["up", "open", "tcp", "ipv4", "ipv6", "-1", "65536", "1e3", "true", "::1"]),
)
attributes = st.dictionaries(
    st.sampled_from(["state", "reason", "addr", "addrtype", "name", "portid", "protocol",
                     "product", "count", "up", "total", "exit", "errormsg", "timedout"]),
    attribute_values,
    max_size=4,
)  # fmt: skip


def element(tag: str, attrs: dict[str, str], children: list[str], text: str) -> str:
    rendered = "".join(f" {k}={quoteattr(v)}" for k, v in attrs.items())
    return f"<{tag}{rendered}>{escape(text)}{''.join(children)}</{tag}>"


elements = st.recursive(
    st.builds(element, tags, attributes, st.just([]), st.text(max_size=4)),
    lambda inner: st.builds(element, tags, attributes, st.lists(inner, max_size=4), st.just("")),
    max_leaves=20,
)
documents = st.lists(elements, max_size=4).map(lambda kids: f"<nmaprun>{''.join(kids)}</nmaprun>")
PORTS_TARGET = parse_target("ports://127.0.0.1", FAMILIES)


@FUZZ
@given(st.one_of(documents, elements, st.text(max_size=50)))
def test_nmap_xml_becomes_resources_or_a_bug_problem(xml: str) -> None:
    try:
        report = parse_report(xml)
    except RempartError:
        return
    scan = ScanFacts("top-1000", "connect", True)
    for host in report.hosts:
        host_resource(host, PORTS_TARGET, scan)
        for resource in service_resources(host, PORTS_TARGET, scan):
            assert resource.type == "net.service"
    assert PORTS.name == "ports"


# --- TLS server flights -----------------------------------------------------------------


def handshake(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + len(body).to_bytes(3, "big") + body


server_hellos = st.builds(
    lambda version, session, suite, compression, extensions: handshake(
        2, version + b"\x11" * 32 + bytes([len(session)]) + session + suite
        + bytes([compression]) + extensions
    ),
    st.sampled_from([b"\x03\x03", b"\x03\x01", b"\x7f\x1c"]),
    st.binary(max_size=32),
    st.sampled_from([b"\x00\x2f", b"\xc0\x2f", b"\x00\x9e", b"\x13\x01", b"\xff\xff"]),
    st.integers(0, 255),
    st.binary(max_size=40),
)  # fmt: skip
messages = st.lists(
    st.one_of(
        server_hellos,
        st.builds(handshake, st.sampled_from([2, 4, 11, 12, 13, 14, 22]), st.binary(max_size=60)),
    ),
    max_size=5,
)


@FUZZ
@given(
    messages,
    st.booleans(),
    st.sampled_from(["TLSv1.2", "TLSv1.0", "TLSv1.3", "SSLv3"]),
    st.integers(1, 50),
)
def test_flight_reader_decides_waits_or_says_not_tls(
    flight: list[bytes], want_certificate: bool, version: str, chunk: int
) -> None:
    body = b"".join(flight)
    data = b"\x16\x03\x03" + len(body).to_bytes(2, "big") + body
    reader = wire.FlightReader(wire.Hello(version, (0x002F,), want_certificate=want_certificate))
    try:
        for start in range(0, len(data), chunk):
            reader.feed(data[start : start + chunk])
            if reader.done:
                break
    except wire.NotTls:
        return
    assert reader.reply is None or reader.reply.kind in ("hello", "retry", "alert")


# --- evaluator on loaded rules ----------------------------------------------------------

facts = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["port", "a", "b", "x", "y", "items"]), inner, max_size=4)
    ),
    max_leaves=15,
)


@FUZZ
@given(conditions, facts)
def test_evaluator_judges_any_facts_with_any_loadable_condition(
    tmp_path: Path, condition: dict[str, Any], observed: Any
) -> None:
    path = tmp_path / "rule.yaml"
    path.write_text(dump({"policy": "fuzz", "title": "t", "params": {"p": {"default": 1}},
                          "rules": [{"id": "FUZZ-RULE-001", "title": "t",
                                     "resource": "tls.endpoint", "expect": condition,
                                     "severity": "low", "remediation": "r"}]}))  # fmt: skip
    try:
        policy = load_policy(path, FAMILIES.resource_types())
    except RempartError:
        return
    for facts_value in (observed, {"items": observed}):
        resource = Resource("tls.endpoint", "tls://x:443", "tls://x", "adhoc", facts_value)
        finding = evaluate_rule(BoundRule(policy.rules[0], policy.params), resource)
        assert finding.status.value in ("pass", "fail")
