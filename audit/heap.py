"""The cyclic garbage collector around bulk work on findings.

Reading or rendering 100,000 findings allocates a few containers per finding, and they
all survive: the collector's generations keep filling and it walks the whole growing
heap again and again, a quarter or more of the time of the bulk step. Findings, their
evidence and their texts form no reference cycles, so nothing is lost by keeping the
collector off them.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """No collection while the block builds many lasting, acyclic objects."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Collections during the block skip every object that existed before it.

    For a step that allocates a lot while a large, settled dataset is alive (a report
    rendered from a whole scan): what the step itself creates is still collected.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
