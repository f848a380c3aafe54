"""ports:// URIs: malformed ones are refused with one line, good ones canonicalised."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from audit.errors import TargetError
from checks.ports import FAMILY
from checks.ports.docs import RESOURCE_TYPES
from checks.ports.targets import merge_ranges, parse, parse_port_spec


def parse_uri(uri: str):  # type: ignore[no-untyped-def]
    return parse(urlsplit(uri), uri)


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("ports://10.0.0.0/8", "too large a network"),
        ("ports://10.0.0.0/33", "longer than /32"),
        ("ports://[fd00::]/64", "too large a network"),
        ("ports://example.org/24", "needs an address"),
        ("ports://127.0.0.1?ports=0", "out of range"),
        ("ports://127.0.0.1?ports=70000", "out of range"),
        ("ports://127.0.0.1?ports=1-2-3", "not a port"),
        ("ports://127.0.0.1?ports=100-20", "runs backwards"),
        ("ports://127.0.0.1?ports=22,", "not a port"),
        ("ports://127.0.0.1?ports=", "is empty"),
        ("ports://127.0.0.1?ports=U:53", "only TCP"),
        ("ports://127.0.0.1?ports=22,T:80", "not a port"),
        ("ports://127.0.0.1?ports=ssh", "not a port"),
        ("ports://127.0.0.1?ports=-", "not a port"),
        ("ports://127.0.0.1?ports=22%20-oN/tmp/x", "not a port"),
        ("ports://-oN/tmp/x", "cannot start with '-'"),
        ("ports://-iL/etc/passwd", "cannot start with '-'"),
        ("ports://127.0.0.1;id", "not a valid host"),
        ("ports://$(id)", "not a valid host"),
        ("ports://a`b`", "not a valid host"),
        ("ports://127.0.0.1?ports=22&top=10", "unknown parameter 'top'"),
        ("ports://127.0.0.1?ports=22&ports=80", "given twice"),
        ("ports://127.0.0.1?sv=2", "sv must be 0 or 1"),
        ("ports://127.0.0.1?scan=udp", "scan must be"),
        ("ports://127.0.0.1/admin", "unexpected path"),
        ("ports://user:secret@127.0.0.1", "credentials"),
        ("ports://127.0.0.1:22", "not host:port"),
        ("ports://127.0.0.1#frag", "fragment"),
        ("ports://", "missing host"),
    ],
)
def test_malformed_uris_are_refused_with_one_line(uri: str, message: str) -> None:
    # Given a malformed target, when it is parsed, then one clear line says why
    with pytest.raises(TargetError) as refused:
        parse_uri(uri)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("uri", "canonical", "host"),
    [
        ("ports://127.0.0.1?ports=22,80", "ports://127.0.0.1?ports=22,80", "127.0.0.1"),
        ("ports://127.0.0.1?ports=80,22,21-23,1", None, "127.0.0.1"),
        ("ports://127.0.0.1?ports=T:443,80", "ports://127.0.0.1?ports=80,443", "127.0.0.1"),
        ("ports://LocalHost.?sv=1&scan=connect", "ports://localhost", "localhost"),
        ("ports://[::1]?ports=22", "ports://[::1]?ports=22", "::1"),
        ("ports://[0:0::1]/128", "ports://[::1]", "::1"),
        ("ports://10.0.0.7/24?sv=0", "ports://10.0.0.0/24?sv=0", "10.0.0.0/24"),
        ("ports://10.1.0.0/16", "ports://10.1.0.0/16", "10.1.0.0/16"),
        ("ports://127.0.0.1/32", "ports://127.0.0.1", "127.0.0.1"),
        ("ports://[fd00::1]/120?scan=syn&sv=0", "ports://[fd00::]/120?sv=0&scan=syn", "fd00::/120"),
        ("ports://127.0.0.1/?ports=1-65535", "ports://127.0.0.1?ports=1-65535", "127.0.0.1"),
    ],
)
def test_good_uris_are_canonicalised(uri: str, canonical: str | None, host: str) -> None:
    parsed = parse_uri(uri)
    if canonical is None:
        canonical = "ports://127.0.0.1?ports=1,21-23,80"
    assert parsed.uri == canonical
    assert parsed.host == host
    assert parsed.scheme == "ports"
    assert parse_uri(parsed.uri) == parsed  # the canonical form is a fixed point


def test_defaults_are_omitted_and_params_validated() -> None:
    parsed = parse_uri("ports://127.0.0.1?ports=22&sv=0&scan=syn")
    assert parsed.params == (("ports", "22"), ("sv", "0"), ("scan", "syn"))
    assert parse_uri("ports://127.0.0.1").params == ()


ranges = st.lists(st.tuples(st.integers(1, 65535), st.integers(0, 300)), min_size=1, max_size=12)


@given(ranges)
def test_port_spec_canonical_form_keeps_the_same_ports(items: list[tuple[int, int]]) -> None:
    # Given any list of ports and ranges, the canonical spec covers exactly the same ports
    spec = ",".join(
        f"{low}-{min(low + width, 65535)}" if width else str(low) for low, width in items
    )
    canonical = parse_port_spec(spec, "test")
    expected = {p for low, width in items for p in range(low, min(low + width, 65535) + 1)}
    got = set()
    for item in canonical.split(","):
        low, _, high = item.partition("-")
        got |= set(range(int(low), int(high or low) + 1))
    assert got == expected
    assert parse_port_spec(canonical, "test") == canonical


@given(st.text(max_size=30))
def test_port_spec_accepts_only_digits_commas_and_dashes(text: str) -> None:
    try:
        canonical = parse_port_spec(text, "test")
    except TargetError:
        return
    assert set(canonical) <= set("0123456789,-")


def test_merge_ranges_joins_adjacent_and_overlapping() -> None:
    assert merge_ranges([(80, 80), (20, 22), (23, 25), (81, 90), (85, 86)]) == [(20, 25), (80, 90)]


def test_every_documented_fact_is_in_the_package_docstring() -> None:
    import checks.ports as package

    doc = package.__doc__ or ""
    for resource_type in RESOURCE_TYPES:
        assert resource_type.name in doc
        for fact in resource_type.facts:
            assert f"``{fact.name}``" in doc, fact.name
            assert fact.description.strip()
    assert FAMILY.resource_type_names() == ("net.host", "net.service")
    assert FAMILY.schemes == ("ports",)
    assert FAMILY.preflight is not None


def test_importing_the_family_does_not_import_nmap() -> None:
    code = (
        "import sys, checks.ports; "
        "print('nmap' in sys.modules, 'checks.ports.collect' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out == ["False", "False"]
