"""Stable slices of an inventory, for schedulers that run many scanning processes.

``rempart scan --shard K/N`` keeps the targets whose URI hashes into slice K of N. The
hash is SHA-256 of the canonical URI, so every process, host and Python version agrees on
the slices (Python's ``hash()`` is salted per process and would not), and adding a target
to the inventory moves no other target between slices. Each shard writes its own store;
``rempart db merge`` folds them into one scan (see :mod:`audit.scale.merge`).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace

from audit.engine import ScanPlan
from audit.errors import OptionError

MAX_SHARDS = 10_000
_SPEC = re.compile(r"(\d{1,6})/(\d{1,6})")


@dataclass(frozen=True)
class Shard:
    """Slice ``index`` (1-based) of ``count``."""

    index: int
    count: int

    def holds(self, uri: str) -> bool:
        """True when the target with this canonical URI belongs to this slice."""
        return shard_of(uri, self.count) == self.index


def parse_shard(spec: str) -> Shard:
    """``"K/N"`` with 1 ≤ K ≤ N ≤ 10,000; OptionError (one line) otherwise."""
    match = _SPEC.fullmatch(spec.strip())
    if match is None:
        raise OptionError(f"--shard {spec!r}: expected K/N, e.g. 2/8")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise OptionError(f"--shard {spec!r}: N must be between 1 and {MAX_SHARDS}")
    if not 1 <= index <= count:
        raise OptionError(f"--shard {spec!r}: K must be between 1 and N ({count})")
    return Shard(index, count)


def shard_of(uri: str, count: int) -> int:
    """The 1-based slice a target URI falls in, the same in every process."""
    digest = hashlib.sha256(uri.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def select_shard(plan: ScanPlan, spec: str) -> ScanPlan:
    """The plan restricted to one slice of its targets (possibly none of them).

    Everything else (policies, systems, inventory, settings) is kept, so the shard
    stores of one run agree on what they are slices of and can be merged.
    """
    shard = parse_shard(spec)
    return replace(plan, targets=tuple(t for t in plan.targets if shard.holds(t.uri)))
