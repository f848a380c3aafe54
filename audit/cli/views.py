"""Terminal views of the store: findings, diffs, acceptances, policies, families.

Strings that come from targets (banners, certificate subjects, tags) are untrusted:
they are shown as plain text with control characters made visible, never interpreted
as rich markup or terminal escapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import click

from audit.jsontext import dumps, dumps_indented
from audit.models import Acceptance, Finding
from audit.store import Store

if TYPE_CHECKING:  # policy models pull in pydantic: 0.1 s that findings and diff never need
    from audit.policy import Policy
    from audit.registry import Families


def printable(value: object, limit: int = 200) -> str:
    """Make a string safe for a terminal: control characters escaped, length bounded."""
    text = str(value)
    if len(text) <= limit and text.isprintable():
        return text  # the common case, without a Python loop over the characters
    cleaned = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1] + "…"


UNBOUNDED = 100_000
RICH_ROWS = 1000
"""Above this many rows a table is printed as plain aligned text: rich measures every
cell of every row first, which took 26 s for 33,000 findings."""
PLAIN_WIDTH = 48


def _table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    limits: Sequence[int | None] | None = None,
) -> None:
    """Rows under a title, wrapped in the terminal's width. ``limits`` keeps each row on
    one line: a column is at most its limit wide, cut with "…", and the last one (limit
    None) takes what the terminal has left. Empty ``limits``: one line a row, every cell
    whole, however wide."""
    if len(rows) > RICH_ROWS:
        _plain_table(title, columns, rows, limits)
        return
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False)
    cells = [[printable(cell, 200 if limits is None else 10_000) for cell in row] for row in rows]
    if limits is None:
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")
    elif not limits:  # wide: every cell whole, as wide as it takes (for less -S, a file)
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, no_wrap=True)
        console = Console(highlight=False, width=UNBOUNDED)
    else:
        table = Table(
            title=title,
            title_justify="left",
            box=box.SIMPLE_HEAD,
            show_edge=False,
            pad_edge=False,
            padding=(0, 1, 0, 0),
        )
        widths = _fit(columns, cells, limits, console.width - 2 * (len(columns) - 1))
        for column, width in zip(columns, widths, strict=True):
            table.add_column(column, no_wrap=True, overflow="ellipsis", width=width)
    for row in cells:
        table.add_row(*(Text(cell) for cell in row))
    console.print(table)


def _fit(
    columns: Sequence[str], cells: Sequence[Sequence[str]], limits: Sequence[int | None], room: int
) -> list[int]:
    """Column widths: each as wide as its widest cell up to its limit; the last one gets
    the rest of ``room``, and when that is under MIN_LAST the one before it (a resource
    key, say) gives way, down to MIN_LAST as well."""
    widths = [
        min(limit or 10_000, max([len(column)] + [len(row[i]) for row in cells]))
        for i, (column, limit) in enumerate(zip(columns, limits, strict=True))
    ]
    natural = widths[-1]
    widths[-1] = room - sum(widths[:-1])
    if widths[-1] < MIN_LAST and len(widths) > 1:
        given = min(MIN_LAST - widths[-1], max(0, widths[-2] - MIN_LAST))
        widths[-2] -= given
        widths[-1] += given
    widths[-1] = max(MIN_LAST, min(natural, widths[-1]))
    return widths


MIN_LAST = 16


def _plain_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[object]],
    limits: Sequence[int | None] | None = None,
) -> None:
    """Every row, aligned in columns at most PLAIN_WIDTH wide (a longer cell pushes its
    line on rather than being cut, unless ``limits`` cut it); the last column is left
    unpadded."""
    cells = [[printable(cell, 200 if limits is None else 10_000) for cell in row] for row in rows]
    if not limits:
        cap = PLAIN_WIDTH if limits is None else UNBOUNDED
        widths = [
            min(cap, max([len(column)] + [len(row[i]) for row in cells]))
            for i, column in enumerate(columns)
        ]
    else:
        widths = _fit(columns, cells, limits, _terminal_width() - 2 * (len(columns) - 1))
        cells = [
            [_cut(cell, width) for cell, width in zip(row, widths, strict=True)] for row in cells
        ]

    def line(values: Sequence[str]) -> str:
        padded = [v.ljust(w) for v, w in zip(values[:-1], widths, strict=False)]
        return "  ".join([*padded, values[-1]])

    out = [title, line(list(columns)), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in cells)
    click.echo("\n".join(out))


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((80, 24)).columns


UNEVALUATED = "could not be evaluated: "
"""The prefix the engine puts on an error finding's message."""
FINDING_LIMITS = (8, 6, 8, 16, 32, None)
"""id, status, severity, rule, resource, message: one line a finding at 80 columns."""


def print_findings(findings: Sequence[Finding], as_json: bool, wide: bool = False) -> None:
    """Findings as JSON lines, or as a table: one line each, cut to the terminal, unless
    ``wide`` asks for every column in full (one line each, however long)."""
    if as_json:
        if findings:
            click.echo("\n".join(dumps(finding.to_json()) for finding in findings))
        return
    if wide:
        rows = [_wide_row(f) for f in findings]
        _table(f"{len(findings)} findings", WIDE_COLUMNS, rows, limits=())
        return
    rows = [
        (
            f.fingerprint[:8],
            f.status.value,
            f.severity.value,
            f.rule_id,
            f.resource_key,
            f.message.removeprefix(UNEVALUATED),  # the status column says so already
        )
        for f in findings
    ]
    columns = ("id", "status", "severity", "rule", "resource", "message")
    _table(f"{len(rows)} findings (--wide for every column)", columns, rows, FINDING_LIMITS)


WIDE_COLUMNS = ("id", "status", "severity", "lifecycle", "rule", "system", "resource", "message")


def _wide_row(f: Finding) -> tuple[str, ...]:
    lifecycle = f.lifecycle.value if f.lifecycle else ""
    return (
        f.fingerprint[:12], f.status.value, f.severity.value, lifecycle, f.rule_id,
        f.system, f.resource_key, f.message,
    )  # fmt: skip


@dataclass(frozen=True)
class ScanDiff:
    """What changed between two scans, by fingerprint."""

    old: int
    new: int
    new_failures: tuple[Finding, ...]
    resolved: tuple[Finding, ...]
    still_open: tuple[Finding, ...]
    not_seen: tuple[Finding, ...]


def diff_scans(store: Store, old: int, new: int) -> ScanDiff:
    """Compare the failing findings of two scans (joined in SQL, by fingerprint)."""
    groups = {
        name: tuple(sorted(items, key=diff_order))
        for name, items in store.compare(old, new).items()
    }
    return ScanDiff(
        old, new, groups["new"], groups["resolved"], groups["still_open"], groups["not_evaluated"]
    )


def diff_order(f: Finding) -> tuple[str, str, tuple[str | int, ...]]:
    """By system, rule, then resource key with its numbers compared as numbers, so
    ``tcp://host:443`` comes before ``tcp://host:8080`` and 10.0.0.9 before 10.0.0.10."""
    return (f.system, f.rule_id, natural_key(f.resource_key))


def natural_key(text: str) -> tuple[str | int, ...]:
    """``text`` split into text and numbers (they alternate, so each position compares
    like with like)."""
    parts = re.split(r"(\d+)", text)
    return tuple(int(part) if index % 2 else part for index, part in enumerate(parts))


def print_diff(result: ScanDiff, as_json: bool) -> None:
    """A diff as JSON or as tables."""
    groups = {
        "new": result.new_failures,
        "resolved": result.resolved,
        "still_open": result.still_open,
        "not_evaluated": result.not_seen,
    }
    if as_json:
        click.echo(
            dumps_indented(
                {
                    "old": result.old,
                    "new": result.new,
                    **{k: [f.to_json() for f in v] for k, v in groups.items()},
                }
            )
        )
        return
    click.echo(
        f"scan {result.old} → {result.new}: {len(result.new_failures)} new, "
        f"{len(result.resolved)} resolved, {len(result.still_open)} still open, "
        f"{len(result.not_seen)} not evaluated"
    )
    for name, items in groups.items():
        if items:
            _table(
                name.replace("_", " "),
                ("severity", "rule", "resource", "system"),
                [(f.severity.value, f.rule_id, f.resource_key, f.system) for f in items],
            )


def print_acceptances(items: Sequence[Acceptance], expiring: int | None, as_json: bool) -> None:
    """Live acceptances, optionally only those expiring within ``expiring`` days."""
    today = datetime.now(UTC).date()
    if expiring is not None:
        horizon = today + timedelta(days=expiring)
        items = [a for a in items if date.fromisoformat(a.until) <= horizon]
    if as_json:
        click.echo(json.dumps([a.__dict__ for a in items], ensure_ascii=False, indent=2))
        return
    rows = [
        (
            a.id,
            a.rule_id,
            a.resource_key,
            a.owner,
            a.until,
            "expired" if date.fromisoformat(a.until) < today else "live",
            a.reason,
        )
        for a in items
    ]
    _table(
        f"{len(rows)} acceptances",
        ("id", "rule", "resource", "owner", "until", "state", "reason"),
        rows,
    )


def print_policy(policy: Policy) -> None:
    """A policy's header, parameters and rules."""
    click.echo(f"{policy.name} v{policy.version} — {policy.title}\nsource: {policy.source}")
    for name, value in policy.params.items():
        click.echo(f"param {name} = {value!r}  {policy.param_docs.get(name, '')}")
    rows = [
        (
            r.id,
            r.severity.value,
            r.resource,
            r.title,
            ", ".join(f"{fw}:{'/'.join(ids)}" for fw, ids in r.controls.items()),
        )
        for r in policy.rules
    ]
    _table(f"{len(rows)} rules", ("id", "severity", "resource", "title", "controls"), rows)


def describe_families(families: Families, facts: bool, fmt: str) -> str:
    """Families, schemes, resource types and (optionally) facts, as text, Markdown or JSON."""
    data = [_family_json(f) for f in sorted(families.by_name.values(), key=lambda f: f.name)]
    if fmt == "json":
        return json.dumps(data, indent=2) + "\n"
    if fmt == "md":
        return _families_md(data, facts)
    return _families_text(data, facts)


def _family_json(family: Any) -> dict[str, Any]:
    return {
        "name": family.name,
        "description": family.description,
        "schemes": list(family.schemes),
        "resource_types": [
            {
                "name": rt.name,
                "description": rt.description,
                "facts": [
                    {"name": f.name, "type": f.type, "description": f.description} for f in rt.facts
                ],
            }
            for rt in family.resource_types
        ],
    }


def _families_text(data: list[dict[str, Any]], facts: bool) -> str:
    lines = []
    for family in data:
        schemes = ", ".join(f"{s}://" for s in family["schemes"])
        lines.append(f"{family['name']}  ({schemes})  {family['description']}")
        for rt in family["resource_types"]:
            lines.append(f"  {rt['name']}: {rt['description']}")
            if facts:
                lines.extend(
                    f"    {f['name']} ({f['type']}): {f['description']}" for f in rt["facts"]
                )
    return "\n".join(lines) + "\n"


def _families_md(data: list[dict[str, Any]], facts: bool) -> str:
    lines = ["# Check families", ""]
    for family in data:
        schemes = ", ".join(f"`{s}://`" for s in family["schemes"])
        lines += [
            f"## {family['name']}",
            "",
            f"{family['description']}",
            "",
            f"Targets: {schemes}",
            "",
        ]
        for rt in family["resource_types"]:
            lines += [f"### `{rt['name']}`", "", rt["description"], ""]
            if facts:
                lines += ["| fact | type | meaning |", "|---|---|---|"]
                lines += [
                    f"| `{f['name']}` | {f['type']} | {f['description']} |" for f in rt["facts"]
                ]
                lines.append("")
    return "\n".join(lines)
