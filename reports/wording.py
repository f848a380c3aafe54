"""What a finding says, in the reader's words.

The engine writes its messages for logs and machine exports, in English and in its own
notation (``expected monitoring.vpc_changes eq True``, ``could not be evaluated: …``).
A committee reads prose: this module turns a finding into « attendu : … ; observé : … »
in the reader's language, keeps the raw value apart for the appendix, and splits a
remediation into what to decide (the body) and what to type (the technical annex).

Every phrase is a gettext message marked with :func:`N_`, so the catalog test sees it.
Target strings are never translated: they stay data, escaped by the template.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from audit.models import Finding, Status
from reports._text import one_line, shorten
from reports.i18n import translations


def N_(message: str) -> str:
    """Mark a message for the catalog; it is translated where it is shown."""
    return message


OPERATORS: Mapping[str, str] = {
    "eq": N_("equal to"),
    "ne": N_("different from"),
    "lt": N_("less than"),
    "le": N_("at most"),
    "gt": N_("greater than"),
    "ge": N_("at least"),
    "in": N_("one of"),
    "not_in": N_("none of"),
    "contains": N_("containing"),
    "not_contains": N_("not containing"),
    "subset_of": N_("only among"),
    "disjoint_from": N_("with nothing in common with"),
    "matches": N_("matching the pattern"),
    "exists": N_("present"),
    "absent": N_("absent"),
}
LITERALS: Mapping[str, str] = {
    "True": N_("true"),
    "False": N_("false"),
    "None": N_("none"),
    "true": N_("true"),
    "false": N_("false"),
    "null": N_("none"),
    "and": N_("and"),
    "or": N_("or"),
    "not": N_("not"),
    "each": N_("each"),
}
PHRASES: Mapping[str, str] = {
    "expected": N_("expected"),
    "observed": N_("observed"),
    "passed": N_("compliant"),
    "skipped": N_("not applicable: the rule does not concern this resource"),
    "unevaluated": N_("not evaluated"),
    "empty": N_("empty list"),
    "nothing": N_("nothing observed"),
    "declared": N_("declared in the inventory"),
}

_QUOTED = re.compile(r"""('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")""")
_WORD = re.compile(
    r"\b(" + "|".join(sorted({*OPERATORS, *LITERALS}, key=len, reverse=True)) + r")\b"
)
_CONTEXT = re.compile(r"^(?P<head>.*?)(?: \((?P<context>[^()]*)\))?$")

EXPECTED_PREFIX = "expected "
UNEVALUATED_PREFIX = "could not be evaluated: "
RAW_LIMIT = 300


@dataclass(frozen=True)
class Said:
    """A finding as read: the verdict in words, and the raw matter kept for the annex.

    ``expected`` and ``observed`` are prose; ``detail`` is the probe's own (English,
    technical) explanation of an error; ``raw`` is the evidence as JSON.
    """

    expected: str
    observed: str
    detail: str
    raw: str


Part = tuple[str, bool]
"""A piece of prose, and whether it is an identifier (a fact name, a suite) to set as code."""

_IDENTIFIER = re.compile(
    r"((?:[A-Za-z0-9]+_[A-Za-z0-9_]*|[a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)(?:\([^()]*\))?(?:\[\])?"
    r"|values\([^()]*\)(?:\[\])?)"
)


def parts(text: str) -> list[Part]:
    """``text`` cut into prose and identifiers, so a template sets ``root_mfa_enabled`` or
    ``TLS_RSA_WITH_AES_128_CBC_SHA`` as code and the words around them as prose."""
    pieces = _IDENTIFIER.split(text)
    return [(piece, i % 2 == 1) for i, piece in enumerate(pieces) if piece]


def gettext_of(lang: str) -> Callable[[str], str]:
    """The catalog's ``gettext`` for ``lang``."""
    return translations(lang).gettext


def in_words(notation: str, lang: str) -> str:
    """The engine's notation (``key eq True and …``) with operators and literals in words.

    Quoted values (patterns, names) are left as written: they are data.
    """
    tr = gettext_of(lang)
    parts = _QUOTED.split(notation)
    for i in range(0, len(parts), 2):
        parts[i] = _WORD.sub(
            lambda m: tr(OPERATORS.get(m.group(1)) or LITERALS[m.group(1)]), parts[i]
        )
    return "".join(parts).replace(": ", " : " if lang == "fr" else ": ")


def value_in_words(value: Any, lang: str, limit: int = 160) -> str:
    """One observed value as prose: yes/no, a list joined by commas, a number."""
    tr = gettext_of(lang)
    if value is None:
        return tr(LITERALS["None"])
    if isinstance(value, bool):
        return tr(LITERALS[str(value)])
    if isinstance(value, list | tuple):
        if not value:
            return tr(PHRASES["empty"])
        return shorten(", ".join(value_in_words(v, lang, 60) for v in value), limit)
    if isinstance(value, dict):
        inner = " ; ".join(f"{k} = {value_in_words(v, lang, 60)}" for k, v in value.items())
        return shorten(inner, limit)
    return shorten(one_line(value), limit)


def observed(evidence: Any, lang: str) -> str:
    """The evidence as prose: ``key = value`` pairs, or the value itself."""
    if evidence is None or evidence == {}:
        return gettext_of(lang)(PHRASES["nothing"])
    if isinstance(evidence, dict):
        pairs = [f"{k} = {value_in_words(v, lang)}" for k, v in evidence.items()]
        return shorten(" ; ".join(pairs), 400)
    return value_in_words(evidence, lang, 400)


def raw_json(evidence: Any) -> str:
    """The evidence exactly as recorded, compact JSON, shortened for the appendix."""
    if evidence is None:
        return ""
    text = json.dumps(evidence, ensure_ascii=False, sort_keys=True, default=str)
    return shorten(one_line(text), RAW_LIMIT)


def said(finding: Finding, lang: str) -> Said:
    """What ``finding`` says, by status (see the module docstring)."""
    tr = gettext_of(lang)
    raw = raw_json(finding.evidence)
    message = finding.message or ""
    if finding.status is Status.ERROR:
        detail = message.removeprefix(UNEVALUATED_PREFIX)
        return Said("", tr(PHRASES["unevaluated"]), one_line(detail), raw)
    if finding.status is Status.SKIP:
        return Said("", tr(PHRASES["skipped"]), "", raw)
    if finding.status is Status.PASS and not message.startswith(EXPECTED_PREFIX):
        seen = observed(finding.evidence, lang) if finding.evidence is not None else ""
        return Said("", seen or tr(PHRASES["passed"]), "", raw)
    match = _CONTEXT.match(message.removeprefix(EXPECTED_PREFIX))
    head = match.group("head") if match else message
    context = match.group("context") if match else None
    expected = in_words(head, lang) if message.startswith(EXPECTED_PREFIX) else one_line(message)
    seen = observed(finding.evidence, lang)
    if context:
        seen = f"{seen} ({in_words(context, lang)})"
    return Said(shorten(expected, 400), seen, "", raw)


# --- remediation: what to decide, what to type ------------------------------------------

_SEGMENT = re.compile(r"(?<=[.;])\s+")
_COMMAND = re.compile(
    r"^\s*(console|cli|commande|command|aws |gcloud |az |openssl |certbot )", re.I
)


def split_remediation(text: str) -> tuple[str, str]:
    """``(advice, commands)``: the sentences a committee decides on, and the console
    paths and command lines an operator types, which belong to the technical annex."""
    advice: list[str] = []
    commands: list[str] = []
    for segment in _SEGMENT.split(text.strip()):
        if segment and (commands or _COMMAND.match(segment)):
            commands.append(segment)  # what follows a command line continues it
        elif segment:
            advice.append(segment)
    return " ".join(advice), " ".join(commands)


def filled_commands(commands: str, facts: Mapping[str, Any] | None) -> str:
    """The command lines of a remediation that name the resource (``--bucket {name}``),
    filled with one finding's resource, values shell-quoted so a hostile name stays one
    argument; empty when no line names the resource or its facts are not known."""
    from audit.evaluate.template import fill, fill_placeholders

    if facts is None:
        return ""
    lines = [s for s in _SEGMENT.split(commands.strip()) if fill_placeholders(s)]
    return " ".join(fill(line, facts, shlex.quote) for line in lines)


def generic(text: str) -> str:
    """A remediation where no single resource fills it: ``--bucket <name>``."""
    from audit.evaluate.template import unfilled

    return unfilled(text)
