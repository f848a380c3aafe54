"""Terminal views of the store: findings, diffs, acceptances, policies, families.

Strings that come from targets (banners, certificate subjects, tags) are untrusted:
they are shown as plain text with control characters made visible, never interpreted
as rich markup or terminal escapes.
"""

from __future__ import annotations

import json
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


RICH_ROWS = 1000
"""Above this many rows a table is printed as plain aligned text: rich measures every
cell of every row first, which took 26 s for 33,000 findings."""
PLAIN_WIDTH = 48


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    if len(rows) > RICH_ROWS:
        _plain_table(title, columns, rows)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text(printable(cell)) for cell in row))
    Console(highlight=False).print(table)


def _plain_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Every row, aligned in columns at most PLAIN_WIDTH wide (a longer cell pushes its
    line on rather than being cut); the last column is left unpadded."""
    cells = [[printable(cell) for cell in row] for row in rows]
    widths = [
        min(PLAIN_WIDTH, max([len(column)] + [len(row[i]) for row in cells]))
        for i, column in enumerate(columns)
    ]

    def line(values: Sequence[str]) -> str:
        padded = [v.ljust(w) for v, w in zip(values[:-1], widths, strict=False)]
        return "  ".join([*padded, values[-1]])

    out = [title, line(list(columns)), "  ".join("-" * w for w in widths)]
    out.extend(line(row) for row in cells)
    click.echo("\n".join(out))


def print_findings(findings: Sequence[Finding], as_json: bool) -> None:
    """Findings as JSON lines, or as a table."""
    if as_json:
        if findings:
            click.echo("\n".join(dumps(finding.to_json()) for finding in findings))
        return
    rows = [
        (
            f.fingerprint[:12],
            f.status.value,
            f.severity.value,
            f.lifecycle.value if f.lifecycle else "",
            f.rule_id,
            f.system,
            f.resource_key,
            f.message,
        )
        for f in findings
    ]
    _table(
        f"{len(rows)} findings",
        ("id", "status", "severity", "lifecycle", "rule", "system", "resource", "message"),
        rows,
    )


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
    groups = store.compare(old, new)
    return ScanDiff(
        old,
        new,
        tuple(groups["new"]),
        tuple(groups["resolved"]),
        tuple(groups["still_open"]),
        tuple(groups["not_evaluated"]),
    )


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
