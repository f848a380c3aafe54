"""Write reports atomically: a temporary file in the same directory, then a rename.

A full disk or a killed process must never leave a half-written report that a CI job
or a committee secretary would take for the real one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from audit.errors import ReportError
from audit.heap import heap_frozen
from audit.registry import load_renderers, renderer_for
from audit.reporting import RenderOptions, ReportData


def write_atomic(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file and ``os.replace``."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    except OSError as exc:
        raise ReportError(f"{path}: cannot write report: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise ReportError(f"{path}: cannot write report: {exc.strerror or exc}") from None


def write_report(data: ReportData, path: str, fmt: str | None, options: RenderOptions) -> None:
    """Render ``data`` in the format ``path`` (or ``fmt``) asks for, and write it."""
    renderer = renderer_for(path, fmt, load_renderers())
    with heap_frozen():  # the scan's findings are settled: collections need not walk them
        payload = renderer.render(data, options)
    write_atomic(path, payload)
