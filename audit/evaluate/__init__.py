"""Evaluation: conditions over facts (:mod:`.conditions`), rules over resources (:mod:`.rules`).

Conditions are the policy language's semantics, pure and total; rules turn them into
findings with evidence, messages and the reasons a rule could not be judged.
"""

from audit.evaluate.conditions import (
    MISSING_PARAM,
    OPERATORS,
    VALUELESS_OPS,
    AllOf,
    AnyOf,
    Condition,
    Each,
    Leaf,
    Not,
    Outcome,
    Undecidable,
    compile_key,
    evaluate,
    read_paths,
    referenced_facts,
    search,
)
from audit.evaluate.rules import (
    BoundRule,
    describe,
    evaluate_observation,
    evaluate_rule,
    problem_findings,
)

__all__ = [
    "MISSING_PARAM",
    "OPERATORS",
    "VALUELESS_OPS",
    "AllOf",
    "AnyOf",
    "BoundRule",
    "Condition",
    "Each",
    "Leaf",
    "Not",
    "Outcome",
    "Undecidable",
    "compile_key",
    "describe",
    "evaluate",
    "evaluate_observation",
    "evaluate_rule",
    "problem_findings",
    "read_paths",
    "referenced_facts",
    "search",
]
