"""Commands for scaled-out runs: ``rempart db merge OUT.db IN.db...``.

A scheduler (a Kubernetes Indexed Job, a CI matrix) runs ``rempart scan --shard K/N``
in N processes, each writing its own store; ``db merge`` then folds them into one scan
of the store that keeps the history, and can be the run's gate (``--fail-on``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from audit.models import SEVERITY_NAMES

SEVERITIES = SEVERITY_NAMES


@click.group()
def db() -> None:
    """Maintain stores: merge the stores of a sharded run."""


@db.command("merge")
@click.argument("out", metavar="OUT.db", type=click.Path(dir_okay=False))
@click.argument(
    "inputs", metavar="IN.db...", nargs=-1, required=True, type=click.Path(dir_okay=False)
)
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    default=None,
    help="Exit 1 if the merged scan fails at or above this severity (3 on errors).",
)
@click.option(
    "--shards",
    type=click.IntRange(1, 10_000),
    default=None,
    metavar="N",
    help="Check that the inputs are exactly the N slices of one --shard K/N run.",
)
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def merge(
    out: str, inputs: Sequence[str], fail_on: str | None, shards: int | None, quiet: bool
) -> None:
    """Merge the latest scan of each shard store IN into one new scan of OUT.

    OUT keeps the history: lifecycle (new, open, resolved, reopened) is computed
    against its earlier scans. Merging the same stores again changes nothing.
    """
    from audit.cli import _gate, _open_store
    from audit.merge import merge_stores

    result = merge_stores(out, inputs, shards=shards)
    if not quiet:
        verb = "merged" if result.is_new else "already merged; nothing changed:"
        click.echo(
            f"{verb} {result.sources} store(s) into {out} as scan #{result.scan_id} "
            f"({result.status}, {result.targets} targets, {result.findings} findings)",
            err=True,
        )
    if fail_on is not None:
        store = _open_store(out, readonly=True)
        try:
            sys.exit(_gate(store, result.scan_id, fail_on))
        finally:
            store.close()


def register(cli: click.Group) -> None:
    """Add the ``db`` group to the main command."""
    cli.add_command(db)
