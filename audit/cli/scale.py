"""Commands that maintain stores: ``rempart db merge OUT.db IN.db...``, ``db prune``.

A scheduler (a Kubernetes Indexed Job, a CI matrix) runs ``rempart scan --shard K/N``
in N processes, each writing its own store; ``db merge`` then folds them into one scan
of the store that keeps the history, and can be the run's gate (``--fail-on``).
``db prune --keep N`` drops the scans older than the N latest (retention).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from audit.cli.helptext import example
from audit.models import SEVERITY_NAMES

SEVERITIES = SEVERITY_NAMES


@click.group(
    short_help="Maintain stores: merge shards, prune old scans.",
    epilog=example(
        "rempart db merge estate.db shard-*.db --shards 4", "rempart db prune --keep 30"
    ),
)
def db() -> None:
    """Maintain stores: merge the stores of a sharded run, prune old scans."""


@db.command(
    "merge",
    short_help="Merge the stores of a sharded run into one scan.",
    epilog=example("rempart db merge estate.db shard-1.db shard-2.db --shards 2 --fail-on high"),
)
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
    from audit.cli.app import _gate, _open_store
    from audit.scale.merge import merge_stores

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


@db.command(
    "prune",
    short_help="Drop the scans older than the N latest.",
    epilog=example(
        "rempart db prune --keep 30", "rempart db prune --keep 12 --db /var/lib/rempart/estate.db"
    ),
)
@click.option(
    "--keep",
    type=click.IntRange(1, None),
    required=True,
    metavar="N",
    help="Keep the N latest scans (and any scan still running).",
)
@click.option(
    "--db",
    "db_path",
    envvar="REMPART_DB",
    default="rempart.db",
    show_default=True,
    help="SQLite store (also $REMPART_DB).",
)
@click.option("--no-vacuum", is_flag=True, help="Leave the freed pages in the file.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")
def prune(keep: int, db_path: str, no_vacuum: bool, quiet: bool) -> None:
    """Drop the scans older than the N latest.

    Acceptances and the audit trail stay whole, and so does each finding's history: a
    finding last seen in a dropped scan keeps its state. The file is then vacuumed
    (this needs as much free space as the store while it runs).
    """
    import os

    from audit.cli.app import _open_store
    from audit.errors import StoreError

    if not os.path.lexists(db_path):
        raise StoreError(f"{db_path}: no such store (give --db)")
    store = _open_store(db_path)
    try:
        result = store.prune(keep, vacuum=not no_vacuum)
    finally:
        store.close()
    if not quiet:
        mb = (result.bytes_before / 1e6, result.bytes_after / 1e6)
        click.echo(
            f"pruned {len(result.scans)} scan(s) from {db_path}; removed "
            f"{result.finding_rows} finding row(s), {result.resource_rows} resource row(s); "
            f"{mb[0]:.1f} MB -> {mb[1]:.1f} MB",
            err=True,
        )


def register(cli: click.Group) -> None:
    """Add the ``db`` group to the main command."""
    cli.add_command(db)
