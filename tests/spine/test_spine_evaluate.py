"""The condition evaluator: every operator, the combinators, and no input crashes it."""

from __future__ import annotations

from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jmespath.exceptions import JMESPathError

from audit.evaluate import (
    OPERATORS,
    AllOf,
    AnyOf,
    Each,
    Leaf,
    Not,
    Undecidable,
    evaluate,
    referenced_facts,
)

FACTS = {
    "port": 443,
    "name": "portail.example.gouv.fr",
    "protocols": ["TLSv1.2", "TLSv1.3"],
    "flag": True,
    "certificate": {"key_bits": 2048, "san": ["a.example", "b.example"]},
    "rules": [{"port": 22, "cidr": "0.0.0.0/0"}, {"port": 443, "cidr": "10.0.0.0/8"}],
}


@pytest.mark.parametrize(
    ("key", "op", "value", "expected"),
    [
        ("port", "eq", 443, True),
        ("port", "eq", 80, False),
        ("port", "ne", 80, True),
        ("port", "lt", 1024, True),
        ("port", "le", 443, True),
        ("port", "gt", 443, False),
        ("port", "ge", 443, True),
        ("port", "in", [80, 443], True),
        ("port", "not_in", [80, 443], False),
        ("protocols", "contains", "TLSv1.3", True),
        ("name", "contains", "gouv", True),
        ("protocols", "not_contains", "SSLv3", True),
        ("protocols", "subset_of", ["TLSv1.2", "TLSv1.3"], True),
        ("protocols", "subset_of", ["TLSv1.3"], False),
        ("protocols", "disjoint_from", ["SSLv3", "TLSv1.0"], True),
        ("protocols", "disjoint_from", ["TLSv1.2"], False),
        ("name", "matches", r"\.gouv\.fr$", True),
        ("name", "matches", r"^evil", False),
        ("certificate.key_bits", "ge", 2048, True),
        ("missing", "exists", None, False),
        ("missing", "absent", None, True),
        ("port", "exists", None, True),
        ("length(certificate.san)", "eq", 2, True),
        ("rules[?cidr=='0.0.0.0/0'].port", "eq", [22], True),
    ],
)
def test_operator(key: str, op: str, value: Any, expected: bool) -> None:
    # Given a leaf condition, when evaluated on the facts, then it holds as expected
    outcome = evaluate(Leaf(key, op, value), FACTS, {})
    assert outcome.holds is expected
    assert key in outcome.evidence


@pytest.mark.parametrize("op", ["lt", "le", "gt", "ge"])
def test_ordering_on_missing_or_mismatched_is_false(op: str) -> None:
    assert evaluate(Leaf("missing", op, 3), FACTS, {}).holds is False
    assert evaluate(Leaf("name", op, 3), FACTS, {}).holds is False


def test_booleans_are_not_numbers() -> None:
    assert evaluate(Leaf("flag", "eq", 1), FACTS, {}).holds is False
    assert evaluate(Leaf("flag", "eq", True), FACTS, {}).holds is True


def test_param_value_and_missing_param() -> None:
    assert evaluate(Leaf("port", "in", param="allowed"), FACTS, {"allowed": [443]}).holds
    assert not evaluate(Leaf("port", "in", param="allowed"), FACTS, {}).holds


def test_combinators() -> None:
    yes, no = Leaf("port", "eq", 443), Leaf("port", "eq", 80)
    assert evaluate(AllOf((yes, yes)), FACTS, {}).holds
    assert not evaluate(AllOf((yes, no)), FACTS, {}).holds
    assert evaluate(AnyOf((no, yes)), FACTS, {}).holds
    assert evaluate(Not(no), FACTS, {}).holds


def test_each_reports_the_failing_elements() -> None:
    cond = Each("rules", Leaf("cidr", "ne", "0.0.0.0/0"))
    outcome = evaluate(cond, FACTS, {})
    assert outcome.holds is False
    assert outcome.evidence == {"rules": [{"port": 22, "cidr": "0.0.0.0/0"}]}
    assert evaluate(Each("protocols", Leaf("@", "matches", "^TLS")), FACTS, {}).holds
    assert evaluate(Each("missing", Leaf("@", "eq", 1)), FACTS, {}).holds  # empty list


def test_referenced_facts_are_the_root_fields() -> None:
    cond = AllOf(
        (
            Leaf("certificate.key_bits", "ge", 2048),
            Leaf("length(rules[?cidr=='x'])", "eq", 0),
            Each("protocols", Leaf("@", "eq", "x")),
        )
    )
    assert referenced_facts(cond) == {"certificate", "rules", "protocols"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=6), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    facts=json_values,
    op=st.sampled_from(sorted(OPERATORS)),
    value=json_values,
    key=st.sampled_from(["a", "a.b", "a[0]", "length(a)", "a[?b>`1`]", "@", "a.*", "x||y"]),
)
def test_no_input_crashes_the_evaluator(facts: Any, op: str, value: Any, key: str) -> None:
    # The one exception allowed: a pattern RE2 refuses (the loader refuses it first)
    condition = AnyOf((Leaf(key, op, value), Each(key, Leaf("@", op, value))))
    try:
        outcome = evaluate(condition, facts, {})
    except Undecidable as exc:
        assert op == "matches"
        assert "cannot be used" in str(exc)
        return
    assert outcome.holds in (True, False)


def test_a_pattern_re2_refuses_is_undecidable_not_false() -> None:
    with pytest.raises(Undecidable, match="RE2 syntax"):
        evaluate(Leaf("name", "matches", "(["), FACTS, {})


PATHS = ["a", "a.b", "a.b.c", "length(a)", "length(a.b)", "length(a.b.c)", '"x-y".b', "b"]
_leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=3)
_trees = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.lists(inner, max_size=3).map(tuple)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "x-y"]), inner, max_size=3)
    ),
    max_leaves=12,
)


@given(facts=_trees, key=st.sampled_from(PATHS))
@settings(max_examples=400, deadline=None)
def test_the_plain_readers_read_as_jmespath_does(facts: Any, key: str) -> None:
    # Given any facts, a field path or length() of one read by the plain reader
    from audit.evaluate.conditions import compile_key, reader, search

    assert reader(key) is not compile_key(key).search  # the plain reader is the one used
    try:
        expected = jmespath.search(key, facts)
    except JMESPathError:
        expected = None
    # Then it finds what JMESPath's interpreter finds, None where JMESPath fails
    assert search(key, facts) == expected
    assert type(search(key, facts)) is type(expected)
