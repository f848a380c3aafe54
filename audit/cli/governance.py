"""``rempart frameworks list|show``: the catalogues and what the shipped rules cover.

Thin click commands over :mod:`audit.frameworks`; imports stay inside the commands so
``rempart --help`` does not load pydantic, YAML or the policies.
"""

from __future__ import annotations

import click

from audit.cli.helptext import example
from audit.cli.language import LANGUAGE


@click.group(
    "frameworks",
    short_help="Framework catalogues and what the rules cover.",
    epilog=example("rempart frameworks list", "rempart frameworks show anssi-tls --lang en"),
)
def frameworks() -> None:
    """Framework catalogues (ANSSI, NIS 2, ISO 27001, CIS, RGS) and rule coverage."""


@frameworks.command(
    "list",
    short_help="Each catalogue and how many controls rules cover.",
    epilog=example("rempart frameworks list"),
)
def frameworks_list() -> None:
    """Every catalogue with its source, version and how many controls rules cover."""
    from audit.frameworks import coverage, load_catalogues
    from audit.policy import builtin_rule_controls

    rules = builtin_rule_controls()
    for fw_id, framework in load_catalogues().items():
        covered = sum(1 for c in coverage(framework, rules) if not c.is_manual)
        click.echo(
            f"{fw_id:<14} {covered:>3}/{len(framework.controls):<3} automated  "
            f"{framework.title_en}  [{framework.source}]"
        )


@frameworks.command(
    "show",
    short_help="The controls of a framework and their rules.",
    epilog=example("rempart frameworks show nis2", "rempart frameworks show rgs --manual-only"),
)
@click.argument("framework_id", metavar="ID")
@click.option(
    "--lang",
    type=LANGUAGE,
    default="fr",
    show_default=True,
    help="Language of the control labels.",
)
@click.option("--manual-only", is_flag=True, help="Only controls no rule supports.")
def frameworks_show(framework_id: str, lang: str, manual_only: bool) -> None:
    """Each control of framework ID with the rules that give evidence for it."""
    from audit.errors import OptionError
    from audit.frameworks import coverage, get_framework, load_catalogues
    from audit.policy import builtin_rule_controls

    framework = get_framework(framework_id)
    if framework is None:
        known = ", ".join(load_catalogues())
        raise OptionError(f"unknown framework {framework_id!r} (known: {known})")
    click.echo(f"{framework.label(lang)} — {framework.source}")
    items = coverage(framework, builtin_rule_controls())
    automated = sum(1 for c in items if not c.is_manual)
    click.echo(f"{automated}/{len(items)} controls automated, {len(items) - automated} manual\n")
    for item in items:
        if manual_only and not item.is_manual:
            continue
        level = f" [{item.control.level}]" if item.control.level else ""
        rules = ", ".join(item.rules) if item.rules else "manual"
        click.echo(f"{item.control.id:<16} {item.control.label(lang)}{level}\n{'':<16} → {rules}")


def register(cli_group: click.Group) -> None:
    """Add the governance commands to the main ``rempart`` group."""
    cli_group.add_command(frameworks)
