"""Write reports atomically: a temporary file in the same directory, then a rename.

A full disk or a killed process must never leave a half-written report that a CI job
or a committee secretary would take for the real one.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
from pathlib import Path

from audit.errors import ReportError
from audit.heap import heap_frozen
from audit.registry import load_renderers, renderer_for
from audit.reporting import RenderOptions, ReportData

STDOUT = "-"
"""``-o -``: the report goes to standard output (the scan's summary goes to stderr)."""


def check_destination(path: str | Path) -> None:
    """Refuse to replace anything but a regular file (or nothing).

    ``os.replace`` swaps whatever the name points at: run as root, ``-o /dev/null``
    would put a report where the null device was, and a planted link to
    ``/proc/self/fd/1`` or to a file elsewhere would be replaced by a regular file. A
    report path is untrusted in a shared directory, so an existing device, FIFO, socket,
    directory or symbolic link is refused before anything is rendered.
    """
    if str(path) == STDOUT:
        return
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise ReportError(f"{path}: cannot write report: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise ReportError(
            f"{path}: exists and is not a regular file ({_kind(info.st_mode)}); not replacing it"
        )


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a file")


def _mode_for(target: Path) -> int:
    """The previous file's permissions, or what ``open()`` would give under the umask."""
    try:
        return stat.S_IMODE(os.lstat(target).st_mode)
    except OSError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (threads are running)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_atomic(path: str | Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` through a temporary file and ``os.replace``.

    ``-`` writes to standard output. The file keeps the mode of the one it replaces, or
    gets the umask's; an existing path that is not a regular file is refused.
    """
    if str(path) == STDOUT:
        _write_stdout(payload)
        return
    target = Path(path)
    check_destination(target)
    mode = _mode_for(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent or ".")
    except OSError as exc:
        raise ReportError(f"{path}: cannot write report: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        check_destination(target)  # planted while we rendered and wrote? still refused
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


def _write_stdout(payload: bytes) -> None:
    try:
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
    except OSError as exc:
        raise ReportError(
            f"cannot write report to standard output: {exc.strerror or exc}"
        ) from None
