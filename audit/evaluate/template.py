"""Message templates: a sentence about one resource, from its facts, with no code in it.

A rule may say ``"Security group {name} ({group_id}) opens {world_open_admin_ports} to the
Internet"``. A placeholder is a dotted fact path only (``{certificate.days_left}``): no
function, index, attribute call or format spec, so a policy file cannot run anything or
reach beyond the resource's facts. Each is read with the JMESPath search rules use and
rendered as text (a list joined with commas, an absent fact as ``?``). Placeholders are
checked at load against the documented facts of the rule's type.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from audit.evaluate.conditions import search

_FIELD = re.compile(r"\{([^{}]*)\}")
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MISSING = "?"


class TemplateError(ValueError):
    """A template a policy may not hold: an unclosed brace or a placeholder that is not a
    plain fact path."""


def placeholders(template: str) -> list[str]:
    """The fact paths a template reads, in order; TemplateError when one is not a path."""
    names = _FIELD.findall(template)
    for name in names:
        if not _PATH.match(name):
            raise TemplateError(f"placeholder {{{name}}} is not a fact path like {{group_id}}")
    if "{" in _FIELD.sub("", template) or "}" in _FIELD.sub("", template):
        raise TemplateError("unbalanced '{' or '}' in the template")
    return names


def render(template: str, facts: Any) -> str:
    """The template with each placeholder replaced by the fact's value, as text."""
    return _FIELD.sub(lambda m: as_text(search(m.group(1), facts)), template)


def as_text(value: Any) -> str:
    """A fact as a reader sees it: lists joined, booleans in words, absent as ``?``."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(as_text(item) for item in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{k}={as_text(v)}" for k, v in value.items())
    return str(value)


# --- remediations: a command line with the finding's own resource ---------------------

_FILL = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\}")
"""In a remediation, only ``{fact.path}`` is a placeholder: any other brace is the text of
a command (``IpRanges=[{CidrIp=0.0.0.0/0}]``, a JSON argument) and stays as written."""


def fill_placeholders(text: str) -> list[str]:
    """The fact paths a remediation reads (``--bucket {name}``), in order."""
    return _FILL.findall(text)


def fill(text: str, facts: Any, quote: Callable[[str], str] = str) -> str:
    """``text`` with each ``{fact.path}`` replaced by the fact's value passed through
    ``quote``: ``shlex.quote`` for a command line, so a hostile name (``x; rm -rf /``) stays
    one argument of the command the reader copies, never a second command."""
    return _FILL.sub(lambda m: quote(as_text(search(m.group(1), facts))), text)


def unfilled(text: str) -> str:
    """``text`` with each placeholder shown as what it stands for (``--bucket <name>``),
    where no single resource fills it (a rule's sheet, an action over many resources)."""
    return _FILL.sub(lambda m: f"<{m.group(1)}>", text)
