"""Opening the store's file without trusting it.

The store is a file anyone with write access to its directory can replace or edit, and
SQLite obeys what the file says: a trigger planted in it runs inside every scan (it can
turn failures into passes under a CI gate), a view can be redefined, and a symbolic link
makes SQLite create or write a file elsewhere. So before a connection is handed out:

- the path, and the ``-wal`` / ``-shm`` / ``-journal`` files beside it, must be regular
  files and not symbolic links; a new store is created with ``O_EXCL | O_NOFOLLOW``, and
  the file SQLite opened must be the one that was checked;
- ``PRAGMA trusted_schema = OFF``, so functions with side effects cannot run from the
  schema at all;
- every trigger and view must be one of ours, with our definition; no object may take
  the name of one of ours with another type; our tables may not gain generated columns
  or unique keys (``ON CONFLICT REPLACE`` would delete rows). Tables and indexes of
  other names (added by datasette or a user) are left alone: nothing here reads them.

Every ``sqlite3.Error`` becomes a :class:`~audit.errors.StoreError` through
:func:`sqlite_errors`, so a hostile or damaged file gives one line, never a traceback.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, NamedTuple, ParamSpec, TypeVar
from urllib.parse import quote

from audit.errors import StoreError
from audit.store.schema import Migration, apply

SIDE_FILES = ("-wal", "-shm", "-journal")
"""Files SQLite opens beside the store, by the same name plus these suffixes."""
P = ParamSpec("P")
R = TypeVar("R")
C = TypeVar("C", bound=type)


# --- errors ---------------------------------------------------------------------------


@contextmanager
def sqlite_errors(path: str, action: str = "use") -> Iterator[None]:
    """Turn any ``sqlite3.Error`` raised inside into a one-line :class:`StoreError`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot {action} the store: {exc}") from None


def guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Wrap a method of an object with a ``path`` in :func:`sqlite_errors`."""

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with sqlite_errors(str(getattr(args[0], "path", "store"))):
            return method(*args, **kwargs)

    return wrapper


def guard_public_methods(cls: C) -> C:
    """Apply :func:`guarded` to ``__init__`` and every public method of a class: the
    façade is where SQLite's errors stop, not each query."""
    for name, value in list(vars(cls).items()):
        if callable(value) and (name == "__init__" or not name.startswith("_")):
            setattr(cls, name, guarded(value))
    return cls


# --- the file -------------------------------------------------------------------------


def check_path(path: str) -> bool:
    """Refuse a store path (or a file beside it) that is a link or not a regular file.

    Returns whether the store exists. ``lstat`` never follows the last component, so a
    dangling link is seen as the link it is.
    """
    exists = _check_one(path, path)
    for suffix in SIDE_FILES:
        _check_one(path + suffix, path)
    return exists


def _check_one(name: str, store: str) -> bool:
    try:
        mode = os.lstat(name).st_mode
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise StoreError(f"{store}: cannot examine {name}: {exc.strerror}") from None
    if stat.S_ISLNK(mode):
        raise StoreError(f"{name}: is a symbolic link; give the path of the store itself")
    if not stat.S_ISREG(mode):
        raise StoreError(f"{name}: is not a regular file")
    return True


def create_file(path: str) -> None:
    """Create an empty store file, never through a link: ``O_EXCL`` fails on any
    existing name (a link planted since the check included), ``O_NOFOLLOW`` says so
    twice. A file that appeared meanwhile is checked again rather than trusted."""
    parent = Path(path).absolute().parent
    if not parent.is_dir():
        raise StoreError(f"{path}: directory {parent} does not exist")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        os.close(os.open(path, flags, 0o644))
    except FileExistsError:
        check_path(path)
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the store: {exc.strerror}") from None


class FileId(NamedTuple):
    """Which file a name pointed at (device and inode)."""

    device: int
    inode: int


def file_id(path: str) -> FileId:
    """The identity of the regular file at ``path``, never following a link."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(info.st_mode):
        raise StoreError(f"{path}: is not a regular file")
    return FileId(info.st_dev, info.st_ino)


def check_same_file(path: str, expected: FileId) -> None:
    """After SQLite opened the path, it must still name the file that was checked (a
    swap in between is refused, not read)."""
    try:
        current = file_id(path)
    except OSError:
        current = None
    if current != expected:
        raise StoreError(f"{path}: the store file was replaced while it was being opened")


def uri(path: str, mode: str) -> str:
    """A ``file:`` URI for SQLite (absolute, so a relative path with ``?`` or ``#``
    cannot pass for parameters). Links in the directories above are the operator's."""
    return f"file:{quote(os.path.abspath(path))}?mode={mode}"


# --- the schema -----------------------------------------------------------------------


class SchemaObject(NamedTuple):
    """A row of ``sqlite_master`` that matters here."""

    type: str
    name: str
    table: str
    sql: str


UniqueKey = tuple[str, tuple[str, ...]]


class Expected(NamedTuple):
    """What the migrations create: every object by name, and each table's unique keys."""

    objects: dict[str, SchemaObject]
    unique: dict[str, frozenset[UniqueKey]]


def expected_schema(migrations: tuple[Migration, ...]) -> dict[str, SchemaObject]:
    """Every object the migrations create, by name."""
    return _expected(migrations).objects


@functools.cache
def _expected(migrations: tuple[Migration, ...]) -> Expected:
    """The schema the migrations build, from the cache when it holds this code's.

    Building it runs every migration in memory (sqlite-utils included): about 80 ms
    that every command paid when it opened a store. The result depends only on the
    migrations' code and the SQLite and sqlite-utils versions, which key the entry.
    """
    key = _expected_key(migrations)
    if key is not None:
        from audit.cache import read_json

        cached = read_json(f"store-schema-{len(migrations)}.json", key)
        if cached is not None:
            try:
                return _decode_expected(cached)
            except (KeyError, TypeError, ValueError):
                pass
    with closing(_built(migrations)) as conn:
        tables = [o.name for o in _objects(conn) if o.type == "table"]
        expected = Expected(
            {row.name: row for row in _objects(conn)},
            {name: _unique_keys(conn, name) for name in tables},
        )
    if key is not None:
        from audit.cache import write_json

        write_json(f"store-schema-{len(migrations)}.json", key, _encode_expected(expected))
    return expected


def _expected_key(migrations: tuple[Migration, ...]) -> str | None:
    """The cache key of the released migrations' first N; None for any other tuple."""
    import hashlib
    from importlib.metadata import PackageNotFoundError, version

    from audit.store import schema

    if migrations != schema.MIGRATIONS[: len(migrations)]:
        return None
    try:
        tools = f"{sqlite3.sqlite_version}/{version('sqlite-utils')}"
        code = Path(schema.__file__).read_bytes()
    except (OSError, PackageNotFoundError):
        return None
    seed = f"rempart-store-schema/1/{len(migrations)}/{tools}/".encode()
    return hashlib.sha256(seed + code).hexdigest()


def _encode_expected(expected: Expected) -> dict[str, object]:
    return {
        "objects": [list(obj) for obj in expected.objects.values()],
        "unique": {
            table: sorted([origin, list(columns)] for origin, columns in keys)
            for table, keys in expected.unique.items()
        },
    }


def _decode_expected(data: Any) -> Expected:
    objects = [SchemaObject(*map(str, row)) for row in data["objects"]]
    unique = {
        str(table): frozenset((str(origin), tuple(map(str, columns))) for origin, columns in keys)
        for table, keys in data["unique"].items()
    }
    return Expected({obj.name: obj for obj in objects}, unique)


def _built(migrations: tuple[Migration, ...]) -> sqlite3.Connection:
    """An in-memory database the migrations were run on."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    for migration in migrations:
        apply(conn, migration)
    return conn


def verify_schema(conn: sqlite3.Connection, path: str, migrations: tuple[Migration, ...]) -> None:
    """Refuse a store whose schema holds what we did not put there (see module doc).

    A store at schema N is compared with what the first N migrations create. Our own
    triggers and views may be missing (the first stores had no triggers), not altered.
    """
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(migrations):
        return  # refused by the caller, with the version in the message
    ours = expected_schema(migrations[:version])
    alien = [obj for obj in _objects(conn) if not _is_ours(obj, ours)]
    if alien:
        names = ", ".join(f"{obj.type} {obj.name}" for obj in alien)
        raise StoreError(
            f"{path}: refusing a store whose schema was altered ({names}); "
            "drop what was added, or restore the store from a backup"
        )
    _check_tables(conn, path, ours, migrations[:version])


def _objects(conn: sqlite3.Connection) -> list[SchemaObject]:
    rows = conn.execute(
        "SELECT type, name, tbl_name, COALESCE(sql, '') FROM sqlite_master "
        "WHERE name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return [SchemaObject(t, n, tbl, " ".join(sql.split())) for t, n, tbl, sql in rows]


def _is_ours(obj: SchemaObject, ours: dict[str, SchemaObject]) -> bool:
    """Triggers and views must be ours, verbatim; no object may borrow one of our
    names with another type (a table standing in for ``findings_full``), nor one of our
    tables be a virtual table (its module, not SQLite, would keep the rows)."""
    mine = ours.get(obj.name)
    if mine is None:
        return obj.type not in ("trigger", "view")
    if mine.type != obj.type:
        return False
    if obj.type == "table":
        return not obj.sql.upper().startswith("CREATE VIRTUAL")
    return obj.type not in ("trigger", "view") or mine.sql == obj.sql


def _check_tables(
    conn: sqlite3.Connection,
    path: str,
    ours: dict[str, SchemaObject],
    migrations: tuple[Migration, ...],
) -> None:
    """Our tables keep plain columns and their own unique keys (compared by structure:
    stores written by older versions have the same tables in other words)."""
    expected = _unique_keys_of(migrations)
    for name in sorted(n for n, obj in ours.items() if obj.type == "table"):
        generated = [row[1] for row in conn.execute(f"PRAGMA table_xinfo({name})") if row[6]]
        if generated:
            raise StoreError(
                f"{path}: refusing a store whose table {name} has generated columns "
                f"({', '.join(generated)}); restore the store from a backup"
            )
        if _unique_keys(conn, name) - expected.get(name, frozenset()):
            raise StoreError(
                f"{path}: refusing a store whose table {name} has a unique key that is "
                "not ours; drop it, or restore the store from a backup"
            )


def _unique_keys_of(migrations: tuple[Migration, ...]) -> dict[str, frozenset[UniqueKey]]:
    return _expected(migrations).unique


def _unique_keys(conn: sqlite3.Connection, table: str) -> frozenset[UniqueKey]:
    """The unique indexes of a table, as (origin, columns): ``c`` is CREATE INDEX,
    ``u`` a UNIQUE clause, ``pk`` the primary key."""
    keys = set()
    for _, index, unique, origin, _partial in conn.execute(f"PRAGMA index_list({table})"):
        if unique:
            columns = tuple(row[2] for row in conn.execute(f"PRAGMA index_info({index})"))
            keys.add((origin, columns))
    return frozenset(keys)


# --- connecting -----------------------------------------------------------------------


def connect(path: str, migrations: tuple[Migration, ...], *, readonly: bool) -> sqlite3.Connection:
    """A connection to the store at ``path`` once the file and its schema are checked.

    Writing creates the file when missing; reading needs it. Reading opens the file
    read-only, so nothing in it runs or changes: no recovery, no trigger, no migration.
    """
    with sqlite_errors(path, "open"):
        exists = check_path(path)
        if not exists and readonly:
            raise StoreError(f"{path}: no such store")
        if not exists:
            create_file(path)
        checked = file_id(path)
        conn = _open_read_only(path) if readonly else _open(path, "rw")
        try:
            check_same_file(path, checked)
            verify_schema(conn, path, migrations)
        except BaseException:
            conn.close()
            raise
        return conn


def _open(path: str, mode: str) -> sqlite3.Connection:
    """Connect, distrust the schema, and read it once (SQLite opens lazily)."""
    conn = sqlite3.connect(
        uri(path, mode), uri=True, timeout=BUSY_S, isolation_level=None, check_same_thread=False
    )
    try:
        conn.execute("PRAGMA trusted_schema = OFF")
        conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


BUSY_S = 30.0
"""How long a connection waits for another's lock before it gives up."""
READ_RETRY_S = 2.0
"""How long a read-only open is tried again in a directory that can be written."""


def _open_read_only(path: str) -> sqlite3.Connection:
    """Open for reading.

    Only on read-only media, where SQLite cannot create the WAL index and no writer can
    be at work, is the file opened as immutable (a store that was closed has no pending
    WAL). Anywhere else a failed open is tried again for READ_RETRY_S, then raised: a
    read-only connection can meet a WAL index that a writer is still building (SQLite's
    READONLY_RECOVERY, READONLY_CANTINIT), and an immutable reader beside a writer does
    not see its WAL and reads pages as they are checkpointed: a stale report, or
    "database disk image is malformed".
    """
    deadline = time.monotonic() + READ_RETRY_S
    while True:
        try:
            return _open(path, "ro")
        except sqlite3.OperationalError:
            if _read_only_media(path):
                return _open(path, "ro&immutable=1")
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.02)


def _read_only_media(path: str) -> bool:
    """The store's directory cannot be written: a read-only file system, or no right to."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        mounted_read_only = bool(os.statvfs(directory).f_flag & os.ST_RDONLY)
    except OSError:
        mounted_read_only = False
    return mounted_read_only or not os.access(directory, os.W_OK)
