"""A private, per-user cache of JSON data that is costly to compute and never changes
between two runs of the same code: compiled built-in policy packs, the framework
catalogues, the store's expected schema.

Entries are plain JSON (never pickle: a file that a security tool unpickles is code an
attacker can plant), each under a key that digests everything that decided it, with a
digest of its payload. The directory (``$XDG_CACHE_HOME/rempart``, else
``~/.cache/rempart``) is created 0700; a directory or file that is not ours, is writable
by group or others, or is not a plain file is ignored, as is an entry that does not
decode: the data is computed again, never an error. ``REMPART_NO_CACHE=1`` turns the
cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

ENVELOPE = 1
"""Bumped when the envelope (format, key, digest, payload) changes."""

DISABLE_ENV = "REMPART_NO_CACHE"
MAX_ENTRY_BYTES = 8 << 20
"""Largest entry read back; the biggest compiled built-in pack is well under 1 MiB."""


def is_enabled() -> bool:
    """False when ``REMPART_NO_CACHE`` is set to anything but empty or ``0``."""
    return os.environ.get(DISABLE_ENV, "").strip() in ("", "0")


def cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/rempart`` (when absolute, as the spec says), else ``~/.cache``.

    None when neither names a place (no home directory): the cache is then off.
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    if os.path.isabs(base):
        return Path(base) / "rempart"
    try:
        return Path.home() / ".cache" / "rempart"
    except (RuntimeError, KeyError):
        return None


# -- the directory and its files: ours, private, or ignored ---------------------------


def _is_private(info: os.stat_result) -> bool:
    """Owned by us and writable by nobody else: what a cache we trust must be."""
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


@contextmanager
def _open_dir(create: bool) -> Iterator[int | None]:
    """A descriptor on the cache directory when it is ours and private, else None.

    Every later open is relative to this descriptor, so the directory checked is the
    directory used, whatever is renamed in its parent meanwhile.
    """
    directory = cache_dir()
    if directory is None:
        yield None
        return
    if create:
        with suppress(OSError):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        yield None
        return
    try:
        info = os.fstat(fd)
        yield fd if stat.S_ISDIR(info.st_mode) and _is_private(info) else None
    finally:
        os.close(fd)


def read_json(name: str, key: str) -> Any:
    """The JSON data stored under ``name`` for ``key`` (a compiled pack, the framework
    catalogues, the store's expected schema); None when absent, foreign, stale or bad."""
    if not is_enabled():
        return None
    with _open_dir(create=False) as dir_fd:
        if dir_fd is None:
            return None
        raw = _read_private(dir_fd, name)
    if raw is None:
        return None
    try:
        return _decode_entry(raw, key)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


def _read_private(dir_fd: int, name: str) -> bytes | None:
    """The file's bytes if it is a private regular file of ours, of reasonable size."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not (stat.S_ISREG(info.st_mode) and _is_private(info)):
            return None
        if info.st_size > MAX_ENTRY_BYTES:
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read(MAX_ENTRY_BYTES + 1)
    except OSError:
        return None
    finally:
        os.close(fd)


def _decode_entry(raw: bytes, key: str) -> Any:
    """The entry's payload once its key and digest are checked; None otherwise."""
    entry = json.loads(raw)
    if entry.get("format") != ENVELOPE or entry.get("key") != key:
        return None
    payload = entry["policy"]
    if entry.get("digest") != _payload_digest(payload):
        return None  # edited or damaged after it was written
    return payload


def _payload_digest(payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def write_json(name: str, key: str, payload: Any) -> None:
    """Store JSON data under ``name`` for ``key``, atomically, in the private directory
    (faults are ignored: the data is computed again next time)."""
    if not is_enabled():
        return
    entry = {"format": ENVELOPE, "key": key, "digest": _payload_digest(payload), "policy": payload}
    data = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    with _open_dir(create=True) as dir_fd:
        if dir_fd is not None:
            _write_atomically(dir_fd, name, data)


def _write_atomically(dir_fd: int, name: str, data: bytes) -> None:
    """Write beside the entry, then rename over it: a reader sees all of it or none."""
    temp = f".{name}.{os.getpid()}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temp, flags, 0o600, dir_fd=dir_fd)
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except OSError:
        with suppress(OSError):
            os.unlink(temp, dir_fd=dir_fd)
