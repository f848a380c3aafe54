"""``rempart demo``: the whole product on an embedded lab, in one command."""

from __future__ import annotations

from pathlib import Path

import click

from audit.cli.helptext import example


@click.command(
    short_help="A flawed lab on loopback, scanned twice, reported.",
    epilog=example("rempart demo", "rempart demo -o /tmp/rempart-demo --keep"),
)
@click.option(
    "-o",
    "--output",
    "output",
    default="rempart-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Directory for the reports and the store.",
)
@click.option("--keep", is_flag=True, help="Keep the lab's certificates and files.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary tables.")
def demo(output: str, keep: bool, quiet: bool) -> None:
    """Start a flawed estate on loopback, scan it twice with a fix between, write reports."""
    from audit.lab import run_demo

    result = run_demo(
        Path(output), keep=keep, quiet=quiet, echo=lambda line: click.echo(line, err=True)
    )
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(
        f"scans {result.scans[0]} and {result.scans[1]} stored in {result.directory / 'rempart.db'}"
    )
    for path in result.reports:
        click.echo(f"written: {path}")
    click.echo(f"open the committee report: {result.directory.resolve() / 'report-fr.html'}")


def register(cli: click.Group) -> None:
    """Add ``demo`` to the main command group."""
    cli.add_command(demo)
