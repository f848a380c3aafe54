"""The contract between the engine and a check family.

A check family is an object with a ``name``, the URI ``schemes`` it serves, the
resource types it documents, a ``parse`` function that validates a target URI, and a
``collect`` function that observes one target and returns an :class:`Observation`.
Families register through the ``rempart.checks`` entry-point group; the built-in
ones are registered the same way (and loaded first, see :mod:`audit.registry`).

Checks never decide pass or fail: they return facts. Everything that touches the
network comes in through the :class:`CheckContext` the engine passes down, which is
plain, picklable data, so a check can run in a thread, a process or a cluster worker.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

from audit.models import Observation, Target

if TYPE_CHECKING:
    from concurrent.futures import Future

    from audit.labkit.demo import DemoContext, DemoPart


@dataclass(frozen=True)
class FactDoc:
    """One documented fact of a resource type (part of the public contract)."""

    name: str
    type: str
    description: str


@dataclass(frozen=True)
class ResourceTypeDoc:
    """A resource type a family produces, and the facts policies may rely on."""

    name: str
    description: str
    facts: tuple[FactDoc, ...]


@dataclass(frozen=True)
class Scope:
    """The declared perimeter, as checks may need it (AWS checks the account id)."""

    networks: tuple[str, ...] = ()
    domains: tuple[str, ...] = ()
    blocks: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict, hash=False)
    """Per-family perimeters (``scope: {aws: {accounts: [...]}}``), as each family's
    ``validate_scope`` normalised them: the core knows no vendor field."""

    @property
    def is_declared(self) -> bool:
        """True when the inventory declared any perimeter at all."""
        declared = any(values for block in self.blocks.values() for values in block.values())
        return bool(self.networks or self.domains or declared)

    def block(self, family: str) -> Mapping[str, tuple[str, ...]]:
        """One family's perimeter (empty when the inventory declared none for it)."""
        return self.blocks.get(family, {})


@dataclass(frozen=True)
class CheckContext:
    """Settings a check observes with; plain data, no live connections.

    ``options`` carries family-specific settings from the inventory (for instance the
    ``aws:`` block), keyed by family name. ``shared`` is the one exception to "plain
    data": a scratch space the checks of one scan share, every family's context pointing
    at the same dict, for what is worth keeping from one target to the next within a scan
    and no longer (the DNS answers a thousand domains have in common). A family keys its
    entries with its own name.
    """

    timeout: float = 30.0
    ca_file: str | None = None
    scope: Scope = field(default_factory=Scope)
    options: Mapping[str, Any] = field(default_factory=dict)
    is_root: bool = False
    shared: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        """A context sent to another process (a cluster worker) leaves ``shared`` behind:
        it holds this process's live objects. It carries the scan's token instead, so the
        jobs of one scan that a worker runs share one space there (see :func:`_worker_shared`)."""
        state = dict(self.__dict__)
        state["shared"] = _scan_token(self.shared)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        token = state.get("shared")
        shared = _worker_shared(token) if isinstance(token, str) else {}
        for name, value in {**state, "shared": shared}.items():
            object.__setattr__(self, name, value)

    def family_options(self, family: str) -> Mapping[str, Any]:
        """The inventory settings for one family (empty when none were given)."""
        value = self.options.get(family, {})
        return value if isinstance(value, Mapping) else {}


SCAN_MARK = "scan.mark"
WORKER_SCANS_KEPT = 4
"""Scans whose shared space a worker process keeps (the oldest go first, and what they
held — a DNS session's sockets — is closed when nothing else refers to it)."""
_worker_scans: OrderedDict[str, dict[str, Any]] = OrderedDict()
_worker_lock = threading.Lock()


def _scan_token(shared: dict[str, Any]) -> str:
    """The token naming this scan's shared space (made on first use)."""
    token = shared.get(SCAN_MARK)
    if not isinstance(token, str):
        import secrets

        token = shared.setdefault(SCAN_MARK, secrets.token_hex(16))
    return str(token)


def _worker_shared(token: str) -> dict[str, Any]:
    """The shared space of the scan named ``token`` in this process.

    Why: each job reaches a worker with its own copy of the context. Without this, every
    target would start a DNS session of its own (its own sockets, never reused, and no
    answer shared with the next target); with it, the jobs of one scan in one worker
    share one, as the threads of a local scan do.
    """
    with _worker_lock:
        found = _worker_scans.get(token)
        if found is None:
            found = _worker_scans[token] = {SCAN_MARK: token}
            while len(_worker_scans) > WORKER_SCANS_KEPT:
                _worker_scans.popitem(last=False)
        _worker_scans.move_to_end(token)
        return found


@dataclass(frozen=True)
class Reach:
    """An API endpoint a check will call beyond its target, and whether the user named it.

    The scope guard admits it as it admits a network target, before anything is sent,
    since a check sends it credentials and signed requests. ``url`` is ``http(s)://host
    [:port]``; a host label in braces (``fcu.{region}.example.com``) stands for any label,
    so only a declared domain covering the rest of the name can admit it.
    ``named_on_command_line``: the URL came from a target typed on the command line
    (which the no-scope rule allows), not from an inventory.
    """

    url: str
    named_on_command_line: bool = False


ParseFn = Callable[[SplitResult, str], Target]
"""Validate a split URI (and the raw text, for messages) into a Target, or raise TargetError."""

CollectFn = Callable[[Target, CheckContext], Observation]
"""Observe one target. Must respect ``ctx.timeout`` and return problems as data."""

StartFn = Callable[[Target, CheckContext], "Future[Observation]"]
"""Start the observation ``collect`` makes, without a thread of the caller's, and return
its future (which never raises for the target's sake: problems are data)."""

DemoFn = Callable[["DemoContext"], "DemoPart"]
"""Start the family's part of ``rempart demo`` on the context's exit stack and say what
to scan, with which policies, and how to fix part of it between the two scans."""

AdmitFn = Callable[[Target, Scope, Mapping[str, Any]], tuple[Reach, ...]]
"""Admit one target of a family whose scope kind is not ``network``, given the scope and
the family's inventory settings: raise ScopeError for what the scope alone refuses, and
return the endpoints the check will call, which the scope guard then admits."""


SCOPE_KINDS = ("network", "account", "domain")
"""What the scope guard knows how to check; a family declaring another kind never loads."""


@dataclass(frozen=True)
class CheckFamily:
    """A pluggable check family: what it scans and the facts it returns."""

    name: str
    description: str
    schemes: tuple[str, ...]
    resource_types: tuple[ResourceTypeDoc, ...]
    parse: ParseFn
    collect: CollectFn
    start: StartFn | None = None
    """For a family whose observation waits on the network on the process's event loop
    (tls, dns, mail): the same observation as ``collect``, started on that loop. A scan
    on the engine's own threads starts such targets with it rather than parking a thread
    on each one's wait: a thousand domains are a thousand coroutines on one loop, not a
    thousand hand-offs between threads fighting for the interpreter. The engine still
    runs at most ``--concurrency`` of them at once and cancels one past its hard limit. A
    worker of ``--executor processes`` starts them on its own loop; a cluster's worker calls
    ``collect``."""
    permissions: Callable[[], Mapping[str, Any]] | None = None
    validate_options: Callable[[Any], None] | None = None
    """Check the family's settings block of an inventory (``aws:``, say) when the inventory
    loads; raise ValueError or an InputError with a one-line message."""
    preflight: Callable[[], None] | None = None
    """Raise a typed error (e.g. DependencyError: a program is missing) before a scan
    starts, so the user gets exit 2 and one line instead of an error per target."""
    scope_kind: str = "network"
    """``network``: the engine checks host/CIDR against the declared networks and domains
    before anything is sent; ``account``: ``admit`` is required, and the family checks the
    cloud account or project against its own block (``ctx.scope.block(name)``) once it
    knows it (STS), before collecting; ``domain``: the target is a domain whose records
    the family reads through resolvers (DNS, mail), admitted by name against the declared
    domains, with no lookup of its own (the servers the family derives from it pass
    ``admit_derived``). Any other kind is refused at registration."""
    validate_scope: Callable[[Any], Mapping[str, tuple[str, ...]]] | None = None
    """Check and normalise the family's block of the inventory's ``scope:`` (``aws:
    {accounts: [...]}``); raise ValueError with a one-line message. Without it, the
    family has no scope block, and an inventory that gives one is refused."""
    admit: AdmitFn | None = None
    """How the scope guard admits a target of a kind other than ``network``; without it,
    such a target is refused (the guard never admits what it cannot check)."""
    demo: DemoFn | None = None
    """The family's part of ``rempart demo`` (its lab servers, targets, policies, fix), so
    the demo asks the registry instead of knowing the families; None: no part."""

    def resource_type_names(self) -> tuple[str, ...]:
        """Names of the resource types this family can produce."""
        return tuple(rt.name for rt in self.resource_types)
