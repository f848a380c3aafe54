"""What a person sees while a scan runs: a progress bar, then a summary table.

The progress bar shows only on a terminal (never in CI logs, never with ``--quiet``);
the summary table (failing findings per system and severity, and errors) is printed
at the end unless ``--quiet``. SIGTERM is handled like Ctrl-C, so a scheduler that
stops a scan leaves it marked ``interrupted`` with everything it finished stored.
"""

from __future__ import annotations

import signal
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType

from audit.cli.views import UNEVALUATED
from audit.engine import Progress, ScanPlan, run_scan
from audit.models import SEVERITY_NAMES, Finding, Observation, ScanSummary, Target
from audit.registry import Families
from audit.store import Store

SEVERITY_ORDER = SEVERITY_NAMES


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt for the duration of a scan."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_with_ui(
    plan: ScanPlan,
    families: Families,
    store: Store,
    *,
    quiet: bool,
    executor: Executor | None = None,
) -> ScanSummary:
    """Run the scan with progress on a TTY; print the summary table unless quiet."""
    tally = Tally()
    with sigterm_as_interrupt():
        if quiet or not sys.stderr.isatty():
            summary = run_scan(
                plan, families, store, executor=executor, progress=_tally_progress(tally)
            )
        else:
            summary = _run_with_bar(plan, families, store, tally, executor)
    if not quiet:
        print_summary(summary, tally)
    return summary


@dataclass
class Tally:
    """What the summary prints, counted as findings stream in: failures per (system,
    severity), errors per system, and errors per (why, target), since "48 errors" with no
    reason sends a newcomer to the store to find out that the target was down."""

    by_system: Counter[tuple[str, str]] = field(default_factory=Counter)
    reasons: Counter[tuple[str, str]] = field(default_factory=Counter)

    def count(self, findings: Sequence[Finding]) -> None:
        """Add one target's findings."""
        for finding in findings:
            if finding.status.value == "fail":
                self.by_system[(finding.system, finding.severity.value)] += 1
            elif finding.status.value == "error":
                self.by_system[(finding.system, "error")] += 1
                why = finding.message.removeprefix(UNEVALUATED)
                self.reasons[(why or str(finding.reason or "unknown"), finding.target)] += 1


TOP_REASONS = 3


def _tally_progress(tally: Tally) -> Progress:
    def on_target(target: Target, observation: Observation, findings: Sequence[Finding]) -> None:
        tally.count(findings)

    return Progress(on_target=on_target)


def _run_with_bar(
    plan: ScanPlan,
    families: Families,
    store: Store,
    tally: Tally,
    executor: Executor | None,
) -> ScanSummary:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from audit.cli.views import printable
    from audit.engine import Progress as EngineProgress

    columns = (
        TextColumn("[bold]scanning"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}", markup=False),  # a target URI is not markup
    )
    with Progress(*columns, transient=True) as bar:
        task = bar.add_task("", total=len(plan.targets))

        def on_target(
            target: Target, observation: Observation, findings: Sequence[Finding]
        ) -> None:
            tally.count(findings)
            bar.update(task, advance=1, description=printable(target.uri, 60))

        return run_scan(
            plan, families, store, executor=executor, progress=EngineProgress(on_target=on_target)
        )


def print_summary(summary: ScanSummary, tally: Tally) -> None:
    """The table at the end of a scan: failing findings per system × severity, errors,
    then the commonest reasons for the errors."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from audit.cli.views import printable

    table = Table(title=f"scan #{summary.id} — {summary.status}", title_justify="left")
    table.add_column("system")
    for severity in SEVERITY_ORDER:
        table.add_column(severity, justify="right")
    table.add_column("errors", justify="right")
    counted = tally.by_system
    systems = sorted({system for system, _ in counted}) or ["—"]
    for system in systems:
        table.add_row(
            Text(printable(system)),  # an inventory's name: neither markup nor escapes
            *(str(counted.get((system, s), 0)) for s in SEVERITY_ORDER),
            str(counted.get((system, "error"), 0)),
        )
    console = Console(stderr=True, highlight=False)
    console.print(table)
    counts = summary.counts
    console.print(
        f"{counts.get('pass', 0)} passed, {counts.get('fail', 0)} failed, "
        f"{counts.get('error', 0)} errors, {counts.get('skip', 0)} not applicable "
        f"on {counts.get('resources', 0)} resources",
        markup=False,
    )
    for line in error_lines(tally.reasons, counts):
        console.print(line, markup=False, soft_wrap=True)
    if not summary.scope_declared:
        console.print("note: no scope declared", markup=False)


def error_lines(reasons: Counter[tuple[str, str]], counts: Mapping[str, int]) -> list[str]:
    """The commonest reasons for errors, with counts, and a hint when nothing at all
    could be evaluated (a target down or filtered is the usual cause, not the rules)."""
    from audit.cli.views import printable

    top = reasons.most_common(TOP_REASONS)
    lines = [f"{n} × {printable(why, 120)} on {printable(target, 80)}" for (why, target), n in top]
    if len(reasons) > TOP_REASONS:
        rest = sum(reasons.values()) - sum(n for _, n in top)
        lines.append(f"… and {rest} more errors for {len(reasons) - TOP_REASONS} other reasons")
    judged = sum(counts.get(status, 0) for status in ("pass", "fail", "skip"))
    if counts.get("error", 0) and not judged:
        lines.append(
            "nothing could be evaluated: is the target up and reachable from here? "
            "is it in scope? (rempart findings --status error)"
        )
    return lines
