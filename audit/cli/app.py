"""The ``rempart`` command line: thin click commands over the library.

Typed errors become one line on stderr and an exit code here, and only here:
0 nothing failed at or above ``--fail-on``; 1 something did; 2 usage, inventory,
policy or scope error (nothing was scanned); 3 ``--fail-on`` was given and some rule
could not be evaluated (a gate fails closed). Heavy modules are imported inside the
commands so ``rempart --help`` stays fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import click

from audit.cli.helptext import FORMAT_HELP, LANG_HELP, example
from audit.cli.language import LANGUAGE
from audit.models import SEVERITY_NAMES

if TYPE_CHECKING:
    from concurrent.futures import Executor

    from audit.engine import ScanPlan
    from audit.registry import Families
    from audit.scale.executors import ExecutorTrust
    from audit.store import Store

SEVERITIES = SEVERITY_NAMES
STATUSES = ("pass", "fail", "error", "skip")


def _db_option(func: Any) -> Any:
    return click.option(
        "--db",
        "db_path",
        envvar="REMPART_DB",
        default="rempart.db",
        show_default=True,
        help="SQLite store (also $REMPART_DB).",
    )(func)


def _min_coverage_option(func: Any) -> Any:
    """Reports give no index below this share of verified checks (audit.governance)."""
    return click.option(
        "--min-coverage",
        type=click.FloatRange(0, 100),
        default=None,
        metavar="PERCENT",
        help="No index, grade or homologation advice in reports when fewer of the "
        "applicable checks could be verified (default: 90).",
    )(func)


def _marking_option(func: Any) -> Any:
    """A protective marking printed on the report's cover and in every page footer."""
    return click.option(
        "--marking",
        default="",
        metavar="TEXT",
        help="Protective marking of the committee report, on its cover and in every page "
        "footer (e.g. 'Diffusion restreinte').",
    )(func)


def _families() -> Families:
    from audit.registry import allowed_plugins, load_families

    ctx = click.get_current_context()
    return load_families(allowed_plugins(ctx.find_root().params.get("plugins")))


def _open_store(path: str, readonly: bool = False) -> Store:
    from audit.store import Store

    _refuse_directory(path)
    return Store(path, readonly=readonly)


def _refuse_directory(path: str) -> None:
    """--db names the store's file; a directory is the commonest slip (``--db out/``)."""
    from audit.errors import StoreError

    if os.path.isdir(path):
        raise StoreError(
            f"--db {path}: is a directory; give the store's file "
            f"(e.g. {os.path.join(path, 'rempart.db')})"
        )


def _read_store(path: str) -> Store:
    """A store for a command that only reads: it must exist, and it is opened read-only,
    so nothing in the file runs or changes (see ``audit.store.open_for_reading``)."""
    from audit.errors import StoreError
    from audit.store import open_for_reading

    _refuse_directory(path)
    if not os.path.lexists(path):
        raise StoreError(f"{path}: no such store (scan first, or give --db)")
    return open_for_reading(path)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=example(
        "rempart demo                        # a flawed lab on loopback, scanned, reported",
        "rempart scan tls://portail.example.gouv.fr -p anssi-tls",
        "rempart findings",
        "rempart COMMAND --help              # each command's options and examples",
    ),
)
@click.version_option(package_name="rempart", prog_name="rempart")
@click.option(
    "--plugins",
    envvar="REMPART_PLUGINS",
    default=None,
    help="Comma-separated allow-list of check families to load (also $REMPART_PLUGINS).",
)
def cli(plugins: str | None) -> None:
    """Rempart audits TLS endpoints, exposed ports and cloud accounts against declarative
    policies, keeps every finding with its history, and writes committee reports."""


# --- scan ------------------------------------------------------------------------------


class ScanCommand(click.Command):
    """``scan --help`` ends with the target schemes of the loaded families, read only
    when that help is shown, so ``rempart --help`` loads no family."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        from audit.errors import RempartError

        try:
            families = _families()
        except RempartError:
            return
        rows = [
            (" ".join(f"{scheme}://" for scheme in family.schemes), family.description)
            for family in sorted(families.by_name.values(), key=lambda f: f.name)
        ]
        if "ports" in families.by_scheme:
            rows.append(PORTS_SYNTAX)
        with formatter.section("Target schemes (checks list --facts says what each observes)"):
            formatter.write_dl(rows)


PORTS_SYNTAX = (
    "ports://HOST?ports=SPEC",
    "HOST is a name, an address or a CIDR; SPEC lists TCP ports and ranges: 22,80,443 or "
    "1-1024 (quote the URI in a shell); &sv=0 skips version detection, &scan=syn needs root",
)


@cli.command(
    cls=ScanCommand,
    short_help="Scan targets against policies; store the findings.",
    epilog=example(
        "rempart scan tls://portail.example.gouv.fr -p anssi-tls",
        'rempart scan "ports://203.0.113.0/28?ports=22,80,443,3389"',
        "rempart scan -i inventory.yaml -o report.html -o report.sarif --fail-on high",
    ),
)
@click.argument("targets", nargs=-1)
@click.option("-i", "--inventory", type=click.Path(dir_okay=False), help="Inventory YAML file.")
@click.option(
    "-p",
    "--policy",
    "policies",
    multiple=True,
    help="Built-in policy name or policy file (repeatable).",
)
@_db_option
@click.option(
    "-o",
    "--output",
    "outputs",
    multiple=True,
    help="Write a report; format from the extension (repeatable; '-' for stdout, with --format).",
)
@click.option("--format", "fmt", default=None, help=FORMAT_HELP)
@_min_coverage_option
@_marking_option
@click.option("--lang", type=LANGUAGE, default="fr", show_default=True, help=LANG_HELP)
@click.option(
    "--fail-on",
    type=click.Choice(SEVERITIES),
    default=None,
    help="Exit 1 if a finding fails at or above this severity (3 on errors).",
)
@click.option(
    "--ca-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Extra trust anchors (PEM) for private PKIs.",
)
@click.option(
    "--resolver",
    "resolvers",
    multiple=True,
    metavar="HOST[:PORT]",
    help="DNS resolver (an address) for the checks that read DNS, dns:// and mail:// "
    "(repeatable; default: the system's).",
)
@click.option(
    "--dnssec-anchors",
    type=click.Path(dir_okay=False),
    default=None,
    help="DNSSEC trust anchors (DS or DNSKEY records, zone-file syntax) replacing the "
    "IANA root KSKs.",
)
@click.option(
    "--timeout", type=float, default=30.0, show_default=True, help="Per-target timeout in seconds."
)
@click.option(
    "--concurrency", type=int, default=32, show_default=True, help="Targets observed at once."
)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar and no summary table.")
@click.option(
    "--executor",
    "executor_url",
    default=None,
    help="Where checks run: 'threads' (default); 'processes[:N]', N processes of this host "
    "(default: one per core) sharing --concurrency; dask+tls://HOST:PORT, or dask://HOST:PORT "
    "(loopback only unless --executor-insecure).",
)
@click.option(
    "--executor-ca",
    type=click.Path(dir_okay=False),
    default=None,
    help="CA (PEM) that signed the Dask cluster's certificates (dask+tls://).",
)
@click.option(
    "--executor-cert",
    type=click.Path(dir_okay=False),
    default=None,
    help="This host's client certificate (PEM) for the Dask scheduler (dask+tls://).",
)
@click.option(
    "--executor-key",
    type=click.Path(dir_okay=False),
    default=None,
    help="The private key (PEM) of --executor-cert.",
)
@click.option(
    "--executor-insecure",
    is_flag=True,
    help="Allow plain, unauthenticated dask:// to a scheduler that is not on loopback.",
)
@click.option(
    "--shard",
    default=None,
    metavar="K/N",
    help="Scan only the K-th of N stable slices of the targets (1 ≤ K ≤ N).",
)
def scan(
    targets: Sequence[str],
    inventory: str | None,
    policies: Sequence[str],
    db_path: str,
    outputs: Sequence[str],
    fmt: str | None,
    lang: str,
    min_coverage: float | None,
    marking: str,
    fail_on: str | None,
    ca_file: str | None,
    resolvers: Sequence[str],
    dnssec_anchors: str | None,
    timeout: float,
    concurrency: int,
    quiet: bool,
    executor_url: str | None,
    executor_ca: str | None,
    executor_cert: str | None,
    executor_key: str | None,
    executor_insecure: bool,
    shard: str | None,
) -> None:
    """Scan TARGETS (URIs such as tls://host, ports://10.0.0.0/28, aws://profile), or the
    targets of an inventory (-i), against policies; store every finding."""
    import dataclasses

    from audit.cli.commandline import command_line
    from audit.cli.progress import run_with_ui
    from audit.planning import ScanRequest, build_plan

    _check_outputs(outputs, fmt)
    _refuse_directory(db_path)  # before the targets are planned and probed
    trust = _executor_trust(
        executor_url, executor_ca, executor_cert, executor_key, executor_insecure
    )
    families = _families()
    request = ScanRequest(
        tuple(targets),
        inventory,
        tuple(policies),
        ca_file,
        timeout,
        concurrency,
        family_options=_dns_options(resolvers, dnssec_anchors),
    )
    plan = build_plan(
        request, families, warn=lambda text: click.echo(f"rempart: warning: {text}", err=True)
    )
    plan = dataclasses.replace(plan, command=command_line(click.get_current_context()))
    _warn_contradictions(plan)
    if shard is not None:
        from audit.scale.sharding import select_shard

        plan = select_shard(plan, shard)
    _preflight(plan, families)
    store = _open_store(db_path)
    with _executor(executor_url, trust, concurrency) as executor:
        summary = run_with_ui(plan, families, store, quiet=quiet, executor=executor)
    _write_reports(store, summary.id, outputs, fmt, lang, min_coverage, marking)
    sys.exit(_gate(store, summary.id, fail_on))


def _dns_options(resolvers: Sequence[str], anchors: str | None) -> dict[str, dict[str, Any]]:
    """``--resolver`` and ``--dnssec-anchors`` as the dns family's settings block."""
    block: dict[str, Any] = {}
    if resolvers:
        block["resolvers"] = list(resolvers)
    if anchors is not None:
        from pathlib import Path

        block["dnssec_anchors"] = str(Path(anchors).resolve())
    return {"dns": block} if block else {}


def _warn_contradictions(plan: ScanPlan) -> None:
    """One warning line for each fact two applied packs judge differently (Mozilla's modern
    and intermediate profiles together, say): the scan runs, but its advice contradicts
    itself, as ``policy validate`` says of the same packs."""
    from audit.policy import contradictions

    for said in contradictions(plan.policies):
        click.echo(f"rempart: warning: {said}", err=True)


def _executor_trust(
    url: str | None, ca: str | None, cert: str | None, key: str | None, insecure: bool
) -> ExecutorTrust:
    """Check the executor options before anything is read or sent (no packet on refusal)."""
    from audit.errors import OptionError
    from audit.scale.executors import ExecutorTrust, check_trust, parse_executor_url
    from audit.scale.processes import parse_processes

    trust = ExecutorTrust(ca, cert, key, insecure)
    if url is None or url == "threads" or parse_processes(url) is not None:
        if trust.has_files or insecure:
            raise OptionError("--executor-ca/-cert/-key/-insecure need a dask executor")
        return trust
    check_trust(url, parse_executor_url(url), trust)
    return trust


@contextmanager
def _executor(url: str | None, trust: ExecutorTrust, concurrency: int) -> Iterator[Executor | None]:
    """None means the engine's own thread pool; ``processes[:N]`` shares ``concurrency``
    among N local worker processes; a Dask URL comes from audit.scale.executors."""
    if url is None or url == "threads":
        yield None
        return
    from audit.scale.processes import ProcessExecutor, parse_processes

    processes = parse_processes(url)
    if processes is not None:
        pool = ProcessExecutor(processes, -(-max(1, concurrency) // processes))
        try:
            yield pool
        finally:
            pool.shutdown()
        return
    from audit.scale.executors import open_executor

    with open_executor(url, trust) as executor:
        yield executor


def _preflight(plan: Any, families: Families) -> None:
    """Let families refuse early (a missing program) before the store is touched."""
    for scheme in {t.scheme for t in plan.targets}:
        family = families.by_scheme[scheme]
        if family.preflight is not None:
            family.preflight()


def _check_outputs(outputs: Sequence[str], fmt: str | None) -> None:
    from audit.errors import OptionError
    from audit.registry import load_renderers, renderer_for
    from audit.writing import STDOUT, check_destination

    renderers = load_renderers()
    if list(outputs).count(STDOUT) > 1:
        raise OptionError("-o -: standard output can take one report only")
    for path in outputs:
        if path == STDOUT and not fmt:
            raise OptionError("-o -: name the format of the report for standard output (--format)")
        renderer_for(path, fmt, renderers)
        if path == STDOUT:
            continue
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise OptionError(f"-o {path}: directory {parent} does not exist")
        check_destination(path)


def _write_reports(
    store: Store,
    scan_id: int,
    outputs: Sequence[str],
    fmt: str | None,
    lang: str,
    min_coverage: float | None = None,
    marking: str = "",
    warn_unfinished: bool = False,
) -> None:
    if not outputs:
        return
    from audit import __version__
    from audit.reporting import RenderOptions
    from audit.writing import write_report

    data = store.load_report(scan_id, tool_version=__version__)
    extra = {} if min_coverage is None else {"min_coverage": str(min_coverage)}
    if marking:
        extra["marking"] = marking
    if warn_unfinished and data.scan.status != "complete":
        extra["unreached"] = _warn_unfinished(store, data)
    for path in outputs:
        write_report(data, path, fmt, RenderOptions(lang=lang, extra=extra))
        click.echo(f"report written: {'standard output' if path == '-' else path}", err=True)


def _warn_unfinished(store: Store, data: Any) -> str:
    """Say on stderr that the scan did not finish, and return the planned targets it did
    not reach (one a line) for the report's banner."""
    planned = store.scan_record(data.scan.id).targets
    reached = {f.target for f in data.findings} | {r.target for r in data.resources}
    unreached = [t for t in planned if t not in reached]
    click.echo(
        f"rempart: warning: scan {data.scan.id} did not finish (status {data.scan.status}); "
        f"{len(unreached)} of {len(planned)} planned targets were not reached; "
        "the report shows only what was observed",
        err=True,
    )
    return "\n".join(unreached)


def _gate(store: Store, scan_id: int, fail_on: str | None) -> int:
    """Exit code per DESIGN.md; accepted findings do not trip the gate, expired ones do."""
    if fail_on is None:
        return 0
    from audit.models import Lifecycle, Severity

    threshold = Severity(fail_on).rank
    findings = store.findings(scan_id, statuses=("fail", "error"))  # passes cannot trip it
    failing = [
        f
        for f in findings
        if f.status.value == "fail"
        and f.severity.rank >= threshold
        and f.lifecycle is not Lifecycle.ACCEPTED
    ]
    if failing:
        return 1
    if any(f.status.value == "error" for f in findings):
        return 3
    return 0


# --- report ----------------------------------------------------------------------------


@cli.command(
    short_help="Render a stored scan (html, pdf, md, json, sarif…).",
    epilog=example(
        "rempart report -o report.html -o report.pdf",
        "rempart report --scan 3 --lang en -o findings.sarif",
    ),
)
@click.option("--scan", "scan_id", type=int, default=None, help="Scan id (default: latest).")
@click.option(
    "-o",
    "--output",
    "outputs",
    multiple=True,
    required=True,
    help="Output file; format from the extension (repeatable).",
)
@click.option("--format", "fmt", default=None, help=FORMAT_HELP)
@click.option("--lang", type=LANGUAGE, default="fr", show_default=True, help=LANG_HELP)
@_min_coverage_option
@_marking_option
@_db_option
def report(
    scan_id: int | None,
    outputs: Sequence[str],
    fmt: str | None,
    lang: str,
    min_coverage: float | None,
    marking: str,
    db_path: str,
) -> None:
    """Render a scan from the store (html, pdf, md, json, csv, sarif, junit, ocsf).

    A scan that did not finish is rendered with a warning here and a banner in the report.
    """
    _check_outputs(outputs, fmt)
    store = _read_store(db_path)
    scan = scan_id or store.latest_scan_id()
    _write_reports(store, scan, outputs, fmt, lang, min_coverage, marking, warn_unfinished=True)


# --- findings, diff, acceptances -------------------------------------------------------


@cli.command(
    short_help="List the findings of a scan (failing, errors).",
    epilog=example(
        "rempart findings --severity high",
        "rempart findings --all --target tls://portail.example.gouv.fr:443 --wide",
        "rempart findings --rule CERT-CHAIN-001 --json",
    ),
)
@click.option("--scan", "scan_id", type=int, default=None, help="Scan id (default: latest).")
@click.option(
    "--status",
    type=click.Choice(STATUSES),
    default=None,
    help="Only findings with this status (default: fail and error).",
)
@click.option(
    "--severity",
    type=click.Choice(SEVERITIES),
    default=None,
    help="Only findings of this severity.",
)
@click.option("--system", default=None, help="Only the findings of this system (its name).")
@click.option("--rule", default=None, help="Only the findings of this rule id.")
@click.option("--target", default=None, help="Only the findings of this target URI.")
@click.option("--all", "show_all", is_flag=True, help="Include passing and skipped findings.")
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of a table.")
@click.option(
    "--wide",
    is_flag=True,
    help="Every column (lifecycle, system) in full, one line a finding (for less -S).",
)
@_db_option
def findings(
    scan_id: int | None,
    status: str | None,
    severity: str | None,
    system: str | None,
    rule: str | None,
    target: str | None,
    show_all: bool,
    as_json: bool,
    wide: bool,
    db_path: str,
) -> None:
    """List the findings of a scan (failing and errors by default)."""
    from audit.cli.views import print_findings

    store = _read_store(db_path)
    scan_id = scan_id or store.latest_scan_id()
    default = None if status is not None or show_all else ("fail", "error")
    items = store.findings(
        scan_id,
        status=status,
        severity=severity,
        system=system,
        rule=rule,
        target=target,
        statuses=default,
    )
    print_findings(items, as_json, wide)


@cli.command(
    short_help="Compare two scans: new, resolved, still open.",
    epilog=example("rempart diff", "rempart diff 3 5 --json"),
)
@click.argument("old", type=int, required=False)
@click.argument("new", type=int, required=False)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of tables.")
@_db_option
def diff(old: int | None, new: int | None, as_json: bool, db_path: str) -> None:
    """Compare two scans (default: the last two complete ones): new, resolved, still open."""
    from audit.cli.views import diff_scans, print_diff
    from audit.errors import OptionError

    if (old is None) != (new is None):
        raise OptionError("give both OLD and NEW scan ids, or neither")
    if old is not None and old == new:
        raise OptionError(f"diff {old} {new}: give two different scans")
    store = _read_store(db_path)
    if old is None or new is None:
        complete = [s.id for s in store.scans(("complete",))]
        if len(complete) < 2:
            raise OptionError("diff needs two complete scans in the store")
        old, new = complete[-2], complete[-1]
    print_diff(diff_scans(store, old, new), as_json)


@cli.command(
    short_help="Accept a risk: a named owner, a reason, an expiry.",
    epilog=example(
        'rempart accept 3f2a9c1e --owner "M. Martin" --reason "bastion only" --until 2027-06-30',
        "rempart accept CERT-CHAIN-001 tls://intranet.example.gouv.fr:443 \\",
        '    --owner "RSSI" --reason "replaced in Q3" --until 2027-09-30 --decided-by CSSI',
    ),
)
@click.argument("finding")
@click.argument("resource", required=False)
@click.option("--owner", required=True, help="Who owns the accepted risk (a named person).")
@click.option("--reason", required=True, help="Why the risk is accepted.")
@click.option("--until", "until", required=True, help="Expiry date YYYY-MM-DD (≤ 3 years).")
@click.option("--compensating", default="", help="Compensating measures.")
@click.option("--decided-by", default="", help="Who decided (e.g. the committee).")
@click.option("--force", is_flag=True, help="Accept even a finding that passed in the latest scan.")
@_db_option
def accept(
    finding: str,
    resource: str | None,
    owner: str,
    reason: str,
    until: str,
    compensating: str,
    decided_by: str,
    force: bool,
    db_path: str,
) -> None:
    """Accept a risk: FINGERPRINT, or RULE_ID RESOURCE_KEY."""
    from datetime import date

    from audit.errors import OptionError
    from audit.policy import builtin_twins
    from audit.store import fingerprint_for

    try:
        expiry = date.fromisoformat(until)
    except ValueError:
        raise OptionError(f"--until {until!r}: expected a date YYYY-MM-DD") from None
    store = _open_store(db_path)
    with _acceptance_options():
        if resource is None:
            fp, rule_id, key = store.find_fingerprint(finding)
        else:
            fp, rule_id, key = fingerprint_for(finding, resource), finding, resource
        _refuse_acceptance(store, fp, rule_id, key, force)
        item = store.accept(
            fingerprint_=fp,
            rule_id=rule_id,
            resource_key=key,
            owner=owner,
            reason=reason,
            until=expiry,
            compensating=compensating,
            decided_by=decided_by,
            twins=builtin_twins().get(rule_id, ()),
        )
    from audit.cli.views import printable

    # the key may come from the store, that is from what a target or a cloud answered
    shown, rule = printable(key, 300), printable(rule_id)
    click.echo(f"accepted #{item.id}: {rule} on {shown} until {item.until} (owner: {owner})")
    for twin in store.twin_acceptances(item):
        click.echo(f"accepted #{twin.id}: {twin.rule_id} on {shown} as a twin of {rule}")


def _refuse_acceptance(store: Store, fp: str, rule_id: str, key: str, force: bool) -> None:
    """Refuse what would be recorded silently and mislead later: a finding the store has
    never seen (a typo in the rule or resource), a second live acceptance of the same
    finding (two owners, two expiries), or a finding that passes (nothing to accept)."""
    from datetime import UTC, datetime

    from audit.errors import AcceptanceError, OptionError

    where = f"{_shown(rule_id)} on {_shown(key)}"
    try:
        store.find_fingerprint(fp)
    except AcceptanceError:
        raise OptionError(
            f"no finding of {where} in {store.path} (see rempart findings --all)"
        ) from None
    today = datetime.now(UTC).date().isoformat()
    for live in store.acceptances(include_revoked=False):
        if live.fingerprint == fp and live.until >= today:
            raise OptionError(
                f"{where} is already accepted (#{live.id} until {live.until}); "
                f"revoke it first (rempart unaccept {live.id})"
            )
    status = _latest_status(store, fp, rule_id)
    if status in ("pass", "skip") and not force:
        raise OptionError(
            f"{where} is {'passing' if status == 'pass' else 'not applicable'} in the latest "
            "scan: there is no risk to accept (--force to record it anyway)"
        )


def _latest_status(store: Store, fp: str, rule_id: str) -> str | None:
    """The finding's status in the latest scan, or None when that scan did not judge it."""
    scans = store.scans()
    if not scans:
        return None
    found = store.findings(scans[-1].id, rule=rule_id)
    return next((f.status.value for f in found if f.fingerprint == fp), None)


def _shown(value: str) -> str:
    """A rule id or resource key typed by the user, echoed safely."""
    from audit.cli.views import printable

    return printable(value, 120)


@contextmanager
def _acceptance_options() -> Iterator[None]:
    """Phrase the store's acceptance rules in this command's options."""
    from audit.errors import AcceptanceError, OptionError

    options = {"until": "--until", "owner": "--owner and --reason"}
    try:
        yield
    except AcceptanceError as exc:
        option = options.get(exc.field)
        raise OptionError(f"{option}: {exc.detail}" if option else exc.detail) from None


@cli.command(
    short_help="Revoke a risk acceptance (kept in the trail).",
    epilog=example("rempart acceptances", "rempart unaccept 4"),
)
@click.argument("acceptance_id", type=int)
@_db_option
def unaccept(acceptance_id: int, db_path: str) -> None:
    """Revoke an acceptance by its id (it stays in the audit trail)."""
    item = _open_store(db_path).unaccept(acceptance_id)
    click.echo(f"revoked acceptance #{item.id} ({item.rule_id} on {item.resource_key})")


@cli.command(
    short_help="List live risk acceptances (owner, reason, expiry).",
    epilog=example("rempart acceptances", "rempart acceptances --expiring 30 --json"),
)
@click.option(
    "--expiring", type=int, default=None, metavar="DAYS", help="Only those expiring within DAYS."
)
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@_db_option
def acceptances(expiring: int | None, as_json: bool, db_path: str) -> None:
    """List live risk acceptances (owner, reason, expiry)."""
    from audit.cli.views import print_acceptances

    print_acceptances(_read_store(db_path).acceptances(include_revoked=False), expiring, as_json)


# --- policy ----------------------------------------------------------------------------


@cli.group(
    short_help="List, show, validate policies; print their schema.",
    epilog=example("rempart policy list", "rempart policy show anssi-tls"),
)
def policy() -> None:
    """List, show, validate policies; print their JSON Schema."""


@policy.command("list", epilog=example("rempart policy list"))
def policy_list() -> None:
    """Built-in policy packs."""
    from audit.planning import load_all_builtin

    for pack in load_all_builtin(_families().fact_catalogue()):
        click.echo(f"{pack.name:<24} {len(pack.rules):>3} rules  v{pack.version}  {pack.title}")


@policy.command(
    "show", epilog=example("rempart policy show anssi-tls", "rempart policy show ./mine.yaml")
)
@click.argument("name")
def policy_show(name: str) -> None:
    """Show a policy's rules (built-in name or file)."""
    from audit.cli.views import print_policy
    from audit.planning import resolve_policy

    print_policy(resolve_policy(name, _families().fact_catalogue()))


@policy.command(
    "validate",
    short_help="Validate policy files (every fault, then exit 2).",
    epilog=example("rempart policy validate policies/*.yaml"),
)
@click.argument("files", nargs=-1, required=True)
def policy_validate(files: Sequence[str]) -> None:
    """Validate policy files: every fault of every file, then exit 2 if there was one.

    Files validated together are also compared: two that require different things of
    the same fact (Mozilla's modern and intermediate profiles, say) get a warning.
    """
    from pathlib import Path

    from audit.errors import PolicyError
    from audit.policy import Policy, check_unique_ids, contradictions, load_policy, raise_all

    known = _families().fact_catalogue()
    loaded: list[Policy] = []
    problems: list[PolicyError] = []
    for name in files:
        try:
            loaded.append(load_policy(Path(name), known))
        except PolicyError as exc:
            problems.extend(getattr(exc, "problems", (exc,)))
    if not problems:
        check_unique_ids(loaded)
    for item in loaded:
        for warning in item.warnings:
            click.echo(f"warning: {warning}", err=True)
        click.echo(f"ok: {item.source} ({item.name}, {len(item.rules)} rules)")
    for said in contradictions(loaded):
        click.echo(f"warning: {said}", err=True)
    raise_all(problems)


@policy.command("schema", epilog=example("rempart policy schema > policy.schema.json"))
def policy_schema_cmd() -> None:
    """Print the JSON Schema of policy files (for editors)."""
    from audit.policy import policy_schema

    click.echo(json.dumps(policy_schema(), indent=2))


# --- checks ----------------------------------------------------------------------------


@cli.group(epilog=example("rempart checks list", "rempart checks permissions aws"))
def checks() -> None:
    """Describe the loaded check families."""


@checks.command(
    "list", epilog=example("rempart checks list", "rempart checks list --facts --format md")
)
@click.option("--facts", is_flag=True, help="Document every resource type's facts.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "md", "json"]),
    default="text",
    show_default=True,
    help="Plain text, Markdown or JSON.",
)
def checks_list(facts: bool, fmt: str) -> None:
    """Each family, its target schemes and resource types."""
    from audit.cli.views import describe_families

    click.echo(describe_families(_families(), facts, fmt), nl=False)


@checks.command(
    "permissions",
    short_help="Print the read-only permissions a family needs.",
    epilog=example("rempart checks permissions aws > rempart-audit-policy.json"),
)
@click.argument("family")
def checks_permissions(family: str) -> None:
    """Print the read-only permissions a family needs (an IAM policy for aws)."""
    from audit.errors import OptionError

    families = _families()
    chosen = families.by_name.get(family)
    if chosen is None:
        raise OptionError(
            f"unknown check family {family!r} (loaded: {', '.join(sorted(families.by_name))})"
        )
    if chosen.permissions is None:
        raise OptionError(f"check family {family!r} needs no cloud permissions")
    click.echo(json.dumps(chosen.permissions(), indent=2))


def _register_extensions() -> None:
    """Commands that live in their own modules (governance, demo) join the main group."""
    import importlib

    for name in ("audit.cli.governance", "audit.cli.demo", "audit.cli.scale"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:
                continue
            raise
        module.register(cli)


_register_extensions()


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point: run the CLI, turning typed errors into one line and an exit code."""
    from audit.errors import RempartError

    try:
        cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="rempart",
            standalone_mode=False,
        )
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("rempart: aborted", err=True)
        sys.exit(130)
    except RempartError as exc:
        for line in exc.lines():
            click.echo(f"rempart: error: {_one_line(line)}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("rempart: interrupted", err=True)
        sys.stdout.flush()
        os._exit(130)
    except Exception as exc:  # a bug: never the 0 or 1 a CI gate would read as a verdict
        _crashed(exc)
    sys.exit(0)


EXIT_CRASH = 70
"""An unexpected error (a bug), as sysexits' EX_SOFTWARE: distinct from every verdict."""


def _crashed(exc: Exception) -> NoReturn:
    """One line naming the error; the traceback only when REMPART_DEBUG asks for it."""
    if os.environ.get("REMPART_DEBUG"):
        import traceback

        traceback.print_exception(exc)
    from audit.cli.views import printable

    detail = printable(_one_line(str(exc)), 300)  # the message may quote what a target sent
    click.echo(
        f"rempart: internal error: {type(exc).__name__}: {detail} "
        f"(this is a bug; REMPART_DEBUG=1 shows the traceback)",
        err=True,
    )
    sys.stdout.flush()
    sys.exit(EXIT_CRASH)


def _one_line(message: str) -> str:
    return " ".join(message.split())
