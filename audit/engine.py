"""Run checks, evaluate rules, stream findings into the store.

One job per target goes to a :class:`concurrent.futures.Executor` (a thread pool by
default; any Executor fits the seam). Collecting is I/O and happens in the workers;
evaluating and storing happen here, in the parent, as each target completes, so the
store has a single writer and a scan killed halfway keeps every target it finished.

A target that could not be observed yields an ``error`` finding, with the reason, for
every rule that would have applied: never a silent pass, never a fake fail.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import (
    FIRST_COMPLETED,
    CancelledError,
    Executor,
    Future,
    ThreadPoolExecutor,
    wait,
)
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from audit.errors import ObservationError
from audit.evaluate import BoundRule, evaluate_observation
from audit.models import (
    Finding,
    Observation,
    Problem,
    Reason,
    ScanSummary,
    SystemInfo,
    Target,
)
from audit.plugins import CheckContext, CheckFamily
from audit.policy import Policy
from audit.registry import Families
from audit.scale.vetting import vet
from audit.store import Observed, Store

DEFAULT_CONCURRENCY = 32


@dataclass(frozen=True)
class ScanPlan:
    """Everything a scan needs, validated: targets in scope, policies, settings."""

    targets: tuple[Target, ...]
    policies: tuple[Policy, ...]
    context: CheckContext
    systems: tuple[SystemInfo, ...] = ()
    inventory: str | None = None
    scope_declared: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    tool_version: str = ""
    command: str | None = None
    """The command line the scan was asked with, secrets masked (the report's cover)."""

    def rules_by_type(self) -> dict[str, list[BoundRule]]:
        """Rules grouped by the resource type they judge."""
        grouped: dict[str, list[BoundRule]] = {}
        for policy in self.policies:
            for rule in policy.rules:
                grouped.setdefault(rule.resource, []).append(BoundRule(rule, policy.params))
        return grouped


@dataclass
class Progress:
    """Callbacks the CLI uses to draw progress; all optional."""

    on_start: Callable[[int], None] = lambda total: None
    on_target: Callable[[Target, Observation, Sequence[Finding]], None] = (
        lambda target, observation, findings: None
    )


@dataclass
class _Running:
    """Bookkeeping for one submitted target.

    ``started`` is filled by the worker when it is a thread of this process, or at
    submission for a target started on the probe loop; a remote worker fills its own
    copy, so ``submitted`` is what the parent can always rely on.
    """

    target: Target
    started: list[float] = field(default_factory=list)
    submitted: float = field(default_factory=time.monotonic)
    attempts: int = 1
    on_loop: bool = False


# --- collection ------------------------------------------------------------------------


def observe(family: CheckFamily, target: Target, ctx: CheckContext) -> Observation:
    """Run a check; whatever goes wrong becomes a problem, never an exception."""
    started = time.monotonic()
    try:
        observation = family.collect(target, ctx)
    except ObservationError as exc:
        observation = Observation(target, problems=(Problem(exc.reason, str(exc)),))
    except Exception as exc:
        message = f"check {family.name!r} failed: {type(exc).__name__}: {exc}"
        observation = Observation(target, problems=(Problem(Reason.BUG, message[:500]),))
    return replace(observation, target=target, duration_s=time.monotonic() - started)


def _timed_observe(
    family: CheckFamily, target: Target, ctx: CheckContext, running: _Running
) -> Observation:
    running.started.append(time.monotonic())
    return observe(family, target, ctx)


def hard_limit(ctx: CheckContext) -> float:
    """How long a target may run before the engine gives up on it (checks should not
    get near it: they honour ``ctx.timeout`` themselves; this guards against bugs)."""
    return ctx.timeout * 4 + 30


def run_scan(
    plan: ScanPlan,
    families: Families,
    store: Store,
    *,
    executor: Executor | None = None,
    progress: Progress | None = None,
) -> ScanSummary:
    """Scan every target of the plan and return the closed scan row.

    On KeyboardInterrupt (Ctrl-C, or SIGTERM turned into it by the CLI) the scan row is
    closed as ``interrupted`` and the exception propagates.
    """
    progress = progress or Progress()
    rules = plan.rules_by_type()
    scan_id = store.begin_scan(
        policies=[f"{p.name}@{p.version}" for p in plan.policies],
        inventory=plan.inventory,
        scope_declared=plan.scope_declared,
        targets=[t.uri for t in plan.targets],
        systems=plan.systems,
        tool_version=plan.tool_version,
        command=plan.command,
    )
    own = executor is None
    pool = executor or ThreadPoolExecutor(
        max_workers=max(1, plan.concurrency), thread_name_prefix="check"
    )
    status = "failed"
    try:
        _collect_all(plan, families, store, scan_id, pool, rules, progress, here=own)
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        if own:
            pool.shutdown(wait=False, cancel_futures=True)
        summary = store.finish_scan(scan_id, status)
        # imported here: governance loads the framework catalogues (and pydantic), about
        # 0.1 s that the first probe need not wait for
        from audit.governance import store_scores

        store_scores(store, scan_id, plan.tool_version)
    return summary


MAX_ATTEMPTS = 2
"""A target whose worker was lost is submitted once more before it becomes an error."""


def in_flight_bound(concurrency: int) -> int:
    """How many targets may be submitted and not yet stored at once.

    Twice the concurrency keeps every worker busy while the parent evaluates and stores,
    and keeps memory flat however many targets the inventory lists (20,000 targets are
    not 20,000 futures).
    """
    return max(1, concurrency) * 2


def _collect_all(
    plan: ScanPlan,
    families: Families,
    store: Store,
    scan_id: int,
    pool: Executor,
    rules: Mapping[str, list[BoundRule]],
    progress: Progress,
    *,
    here: bool = False,
) -> None:
    """Observe every target, at most ``concurrency`` at once, and store each result.

    ``here``: ``pool`` is the engine's own threads, so a family that can start its
    observation on the probe loop (:attr:`CheckFamily.start`) is started there instead.
    """
    progress.on_start(len(plan.targets))
    sink = _Sink(families, store, scan_id, rules, progress)
    window = _Window(pool, families, plan.context, plan.concurrency, here=here)
    try:
        _drain(window, iter(plan.targets), sink, store, plan)
    finally:
        window.cancel_all()  # an interrupted scan leaves nothing running on the loop


def _drain(
    window: _Window, queue: Iterator[Target], sink: _Sink, store: Store, plan: ScanPlan
) -> None:
    families = window.families
    window.refill(queue)
    limit = hard_limit(plan.context)
    uris = frozenset(t.uri for t in plan.targets)
    while window.pending:
        done, _ = wait(window.pending, timeout=1.0, return_when=FIRST_COMPLETED)
        finished: list[tuple[Target, Observation]] = []
        for future in done:
            running = window.take(future)
            observation = outcome(future, running.target)
            if _is_lost(observation) and running.attempts < MAX_ATTEMPTS:
                window.submit(running.target, running.attempts + 1)
                continue
            family = families.by_scheme[running.target.scheme]
            finished.append((running.target, vet(observation, running.target, family, uris)))
        for running in window.expire(limit):
            problem = Problem(Reason.TIMEOUT, f"no result within {limit:.0f} s")
            finished.append((running.target, Observation(running.target, problems=(problem,))))
        if finished:
            with store.batch():  # what finished together is written in one transaction
                sink.store_many(finished)
        window.refill(queue)


class _Window:
    """The futures in flight: never more than ``bound`` submitted and not yet stored.

    On the engine's own threads, never more than ``concurrency`` targets observed at
    once, whether on the threads or on the probe loop. The pool queues what its threads
    cannot run yet (up to ``bound``), but the loop runs whatever it is given at once: a
    target for the loop starts only while fewer than ``concurrency`` are started or
    queued, and while any runs there the pool gets no queue. What cannot go yet is held,
    in order (at most ``bound`` of them, so memory stays flat).
    """

    def __init__(
        self,
        pool: Executor,
        families: Families,
        ctx: CheckContext,
        concurrency: int,
        *,
        here: bool = False,
    ):
        self.pool, self.families, self.ctx, self.here = pool, families, ctx, here
        self.bound, self.concurrency = in_flight_bound(concurrency), max(1, concurrency)
        self.pending: dict[Future[Observation], _Running] = {}
        self.held: deque[Target] = deque()
        self.on_loop = 0
        """How many of ``pending`` run on the probe loop (the others are the pool's)."""
        self.contexts: dict[str, CheckContext] = {}
        self.last_done = time.monotonic()

    def take(self, future: Future[Observation]) -> _Running:
        self.last_done = time.monotonic()
        return self._forget(future)

    def _forget(self, future: Future[Observation]) -> _Running:
        running = self.pending.pop(future)
        if running.on_loop:
            self.on_loop -= 1
        return running

    def _fits(self, target: Target) -> bool:
        """Whether ``target`` may be submitted now (see the class)."""
        if len(self.pending) >= self.bound:
            return False
        if not self.here:
            return True
        started = len(self.pending)  # running or queued, on the loop or the pool
        if self.families.by_scheme[target.scheme].start is not None:
            return started < self.concurrency
        return started < self.concurrency or self.on_loop == 0

    def submit(self, target: Target, attempts: int = 1) -> None:
        running = _Running(target, attempts=attempts)
        family = self.families.by_scheme[target.scheme]
        if family.name not in self.contexts:
            self.contexts[family.name] = context_for(self.ctx, family)
        ctx = self.contexts[family.name]
        if self.here and family.start is not None:
            running.started.append(time.monotonic())
            running.on_loop = True
            self.on_loop += 1
            future = family.start(target, ctx)
        else:
            future = self.pool.submit(_timed_observe, family, target, ctx, running)
        self.pending[future] = running

    def refill(self, queue: Iterator[Target]) -> None:
        waiting, self.held = self.held, deque()
        for target in waiting:
            self._place(target)
        while len(self.pending) < self.bound and len(self.held) < self.bound:
            following = next(queue, None)
            if following is None:
                return
            self._place(following)

    def _place(self, target: Target) -> None:
        """Submit ``target`` if it fits now, else hold it (in order)."""
        if self._fits(target):
            self.submit(target)
        else:
            self.held.append(target)

    def cancel_all(self) -> None:
        """Cancel what is still pending (a coroutine on the loop stops at once)."""
        for future in list(self.pending):
            self._forget(future)
            future.cancel()

    def expire(self, limit: float) -> list[_Running]:
        """Give up on targets past the hard limit.

        A remote worker's start is not seen here; such a target may wait in the cluster's
        queue, so its clock starts at the later of its submission and the last result:
        it expires only once nothing at all has come back for the limit.
        """
        now, expired = time.monotonic(), []
        for future, running in list(self.pending.items()):
            seen = running.started[0] if running.started else None
            since = seen if seen is not None else max(running.submitted, self.last_done)
            if now - since > limit:
                self._forget(future)
                future.cancel()
                expired.append(running)
        return expired


def context_for(ctx: CheckContext, family: CheckFamily) -> CheckContext:
    """The context one family's checks get: its own settings block, no other family's.

    A job may run on another machine (a cluster worker), which then sees what the job
    carries; the AWS block has no business on a worker probing TLS. The scope stays:
    account families check the account they reach against it. The ``dns`` block (the
    resolvers and DNSSEC anchors, no secret) is shared: every family that reads DNS (mail)
    asks the resolvers the operator chose, not the system's.
    """
    names = (family.name, *SHARED_SETTINGS)
    options = {name: ctx.options[name] for name in names if name in ctx.options}
    return replace(ctx, options=options)


SHARED_SETTINGS = ("dns",)
"""Settings blocks every family receives besides its own (see :func:`context_for`)."""


def loop_start(
    fn: Callable[..., Observation], args: tuple[Any, ...]
) -> Callable[[], Future[Observation]] | None:
    """How to start a job on the probe loop, when it is the observation of a family that
    can be started there (:attr:`CheckFamily.start`); None for any other job. A worker
    process runs such jobs there rather than on its threads."""
    if fn is not _timed_observe or args[0].start is None:
        return None
    family, target, ctx, _ = args
    return partial(family.start, target, ctx)


def outcome(future: Future[Observation], target: Target) -> Observation:
    """A finished future's observation; an exception is a problem of the target's (what
    an ObservationError says, a lost worker, or a bug), never raised."""
    try:
        return future.result()
    except ObservationError as exc:  # as :func:`observe` reads it from ``collect``
        return Observation(target, problems=(Problem(exc.reason, str(exc)),))
    except Exception as exc:
        lost = isinstance(exc, CancelledError) or "worker" in type(exc).__name__.lower()
        reason = Reason.WORKER_LOST if lost else Reason.BUG
        return Observation(target, problems=(Problem(reason, f"{type(exc).__name__}: {exc}"),))


def _is_lost(observation: Observation) -> bool:
    return any(p.reason is Reason.WORKER_LOST for p in observation.problems)


class _Sink:
    """Evaluates each observation and writes it, in the parent: the store's only writer."""

    def __init__(
        self,
        families: Families,
        store: Store,
        scan_id: int,
        rules: Mapping[str, list[BoundRule]],
        progress: Progress,
    ):
        self.families, self.db, self.scan_id = families, store, scan_id
        self.rules, self.progress = rules, progress
        self.rule_ids = frozenset(b.rule.id for bound in rules.values() for b in bound)

    def store_many(self, done: Sequence[tuple[Target, Observation]]) -> None:
        """Evaluate the observations of targets that finished together and write them
        (:meth:`Store.record_many`: each whole, the statements they share run once).

        A target observed without any problem lets the store resolve failures whose
        resource has gone; a target with problems says nothing about what is missing.
        """
        records = []
        for target, observation in done:
            family = self.families.by_scheme[target.scheme]
            findings = evaluate_observation(observation, family, self.rules)
            observed = None if observation.problems else Observed(target.uri, self.rule_ids)
            records.append((observation.resources, findings, observed))
        stamped = self.db.record_many(self.scan_id, records)
        for (target, observation), written in zip(done, stamped, strict=True):
            self.progress.on_target(target, observation, written)
