"""The store's schema: the migrations that build it, and how a store is brought to it.

``PRAGMA user_version`` holds the number of migrations a store has been through. A
newer rempart migrates an older store in place, one transaction per step, the first
time it opens it; an older rempart refuses a newer store. The expected schema of a
store at version N (what :mod:`audit.store.file` compares a file with) is what the
first N migrations create in an empty database, so a migration is never edited once
released: a change is a new migration.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from audit.errors import StoreError

if TYPE_CHECKING:
    import sqlite_utils

Migration = str | Callable[[sqlite3.Connection], None]
"""A script (the first schemas), or a function of the connection (sqlite-utils)."""

FINDINGS_FULL = (
    "SELECT m.scan_id, f.fingerprint, f.rule_id, t.policy, t.title, f.resource_type, "
    "f.resource_key, f.target, f.system, f.status, f.severity, f.message, f.evidence, "
    "t.controls, t.remediation, f.reason, f.history, f.first_seen, t.title_fr, "
    "t.remediation_fr FROM scan_findings m JOIN findings f ON f.rowid = m.row "
    "JOIN rule_texts t ON t.id = f.texts"
)
"""Schema 3's ``findings_full``: the columns findings had in schema 1, one row per
finding of each scan, whether the scan wrote the row or referred to an earlier one."""


def _membership(conn: sqlite3.Connection, name: str) -> None:
    """A table of (scan, row) pairs, the rows a scan holds. WITHOUT ROWID, which
    sqlite-utils cannot create: the pairs are the key, so an entry costs 11 bytes
    (a rowid table with an index on them costs twice that)."""
    conn.execute(
        f"CREATE TABLE {name} (scan_id INTEGER NOT NULL, row INTEGER NOT NULL, "
        "PRIMARY KEY (scan_id, row)) WITHOUT ROWID"
    )


def history_by_reference(conn: sqlite3.Connection) -> None:
    """3: a scan refers to the rows of findings and resources that did not change.

    ``findings`` and ``resources`` become versions: a row is written when a finding's
    status, evidence, message or lifecycle changes (a resource's facts), and kept with
    the scan that first wrote it (``first_scan``). ``scan_findings`` and
    ``scan_resources`` say which rows each scan holds. A weekly scan of 100,000
    findings that mostly do not change added 22 MB; it now adds what changed plus 11
    bytes per finding. A finding's row carries a digest of its content, and
    ``finding_state`` the digest of each fingerprint's latest row, so a writer tells an
    unchanged finding from the state alone. Rows keep their rowids (``last_row`` and the
    new tables point at them); existing scans refer to their own rows, which have no
    digest (the first scan after the migration writes its findings whole).
    """
    import sqlite_utils

    db = sqlite_utils.Database(conn)
    conn.execute("DROP VIEW IF EXISTS findings_full")
    conn.execute("DROP INDEX IF EXISTS findings_status")
    for table, members in (("findings", "scan_findings"), ("resources", "scan_resources")):
        _membership(conn, members)
        conn.execute(
            f"INSERT INTO {members} SELECT scan_id, rowid FROM {table} "  # noqa: S608
            "ORDER BY scan_id, rowid"
        )
        _versions(db.table(table))
    db.table("findings").add_column("digest", int)
    db.table("finding_state").add_column("last_digest", int)
    db.table("resources").create_index(["key"], index_name="resources_key")
    db.create_view("findings_full", FINDINGS_FULL)


FINDINGS_FULL_4 = (
    "SELECT m.scan_id, f.fingerprint, f.rule_id, t.policy, t.title, f.resource_type, "
    "f.resource_key, f.target, f.system, f.status, f.severity, f.message, f.evidence, "
    "t.controls, t.remediation, f.reason, f.history, f.first_seen, "
    "IFNULL(json_extract(t.translations, '$.fr.title'), '') AS title_fr, "
    "IFNULL(json_extract(t.translations, '$.fr.remediation'), '') AS remediation_fr, "
    "t.translations FROM scan_findings m JOIN findings f ON f.rowid = m.row "
    "JOIN rule_texts t ON t.id = f.texts"
)
"""Schema 4's ``findings_full``: schema 1's columns (French read from the translations,
for SQL written against them), and every language's texts in ``translations``."""


def texts_per_language(conn: sqlite3.Connection) -> None:
    """4: a rule's texts in other languages are data, not columns; a scan keeps its
    command line.

    ``rule_texts`` had ``title_fr`` and ``remediation_fr``, so a third language needed a
    migration. They become ``translations``, a JSON object ``{lang: {title,
    remediation, message}}`` written with sorted keys (one content, one text: the
    table's key), encoded here by the same function as the write path. Ids are kept
    (findings point at them). ``scans.command`` holds the command line a scan was run
    with, its secrets masked, for the report's cover.
    """
    import sqlite_utils

    from audit.models import Translation
    from audit.store.rows import translations_json

    db = sqlite_utils.Database(conn)
    conn.execute("DROP VIEW IF EXISTS findings_full")
    conn.execute(
        "CREATE TABLE rule_texts_v4 (id INTEGER PRIMARY KEY, policy TEXT NOT NULL, "
        "title TEXT NOT NULL, controls TEXT NOT NULL, remediation TEXT NOT NULL, "
        "translations TEXT NOT NULL DEFAULT '{}', "
        "UNIQUE (policy, title, controls, remediation, translations))"
    )
    old = conn.execute(
        "SELECT id, policy, title, controls, remediation, title_fr, remediation_fr "
        "FROM rule_texts ORDER BY id"
    ).fetchall()
    for row in old:
        french = Translation(row[5], row[6], "")
        texts = translations_json({"fr": french} if french != Translation() else {})
        conn.execute("INSERT INTO rule_texts_v4 VALUES (?,?,?,?,?,?)", (*tuple(row)[:5], texts))
    conn.execute("DROP TABLE rule_texts")
    conn.execute("ALTER TABLE rule_texts_v4 RENAME TO rule_texts")
    db.table("scans").add_column("command", str)
    db.create_view("findings_full", FINDINGS_FULL_4)


def _versions(table: sqlite_utils.db.Table) -> None:
    """A table of versions: ``scan_id`` becomes ``first_scan``, no longer a foreign key
    (pruning a scan keeps the rows later scans refer to), and the key is ``id``, an
    INTEGER PRIMARY KEY equal to the old rowid: other tables refer to rows by it, and
    VACUUM (``db prune``) may renumber the rowids of a table without one."""
    table.add_column("id", int)
    table.db.execute(f"UPDATE {table.name} SET id = rowid")  # noqa: S608
    table.transform(
        rename={"scan_id": "first_scan"},
        drop_foreign_keys=["scan_id"],
        pk="id",
        column_order=["id"],
    )


MIGRATIONS: tuple[Migration, ...] = (
    # 1: the initial schema
    """
    CREATE TABLE scans (
        id INTEGER PRIMARY KEY,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        status TEXT NOT NULL,
        policies TEXT NOT NULL DEFAULT '[]',
        counts TEXT NOT NULL DEFAULT '{}',
        inventory TEXT,
        scope_declared INTEGER NOT NULL DEFAULT 1,
        targets TEXT NOT NULL DEFAULT '[]',
        systems TEXT NOT NULL DEFAULT '[]',
        scores TEXT,
        pid INTEGER,
        host TEXT,
        tool_version TEXT
    );
    CREATE TABLE resources (
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        key TEXT NOT NULL,
        type TEXT NOT NULL,
        target TEXT NOT NULL,
        system TEXT NOT NULL,
        facts TEXT NOT NULL,
        unknown TEXT NOT NULL DEFAULT '{}',
        PRIMARY KEY (scan_id, key)
    );
    CREATE TABLE findings (
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        fingerprint TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        policy TEXT NOT NULL,
        title TEXT NOT NULL,
        resource_type TEXT NOT NULL,
        resource_key TEXT NOT NULL,
        target TEXT NOT NULL,
        system TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        message TEXT NOT NULL,
        evidence TEXT,
        controls TEXT NOT NULL DEFAULT '{}',
        remediation TEXT NOT NULL DEFAULT '',
        reason TEXT,
        history TEXT,
        first_seen TEXT,
        title_fr TEXT NOT NULL DEFAULT '',
        remediation_fr TEXT NOT NULL DEFAULT '',
        PRIMARY KEY (scan_id, fingerprint)
    );
    CREATE INDEX findings_status ON findings (scan_id, status, severity);
    CREATE TABLE finding_state (
        fingerprint TEXT PRIMARY KEY,
        last_scan_id INTEGER NOT NULL,
        last_status TEXT NOT NULL,
        ever_failed INTEGER NOT NULL,
        first_seen TEXT,
        target TEXT NOT NULL DEFAULT ''
    ) WITHOUT ROWID;
    CREATE INDEX finding_state_target ON finding_state (target, last_status);
    CREATE TABLE acceptances (
        id INTEGER PRIMARY KEY,
        fingerprint TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        resource_key TEXT NOT NULL,
        owner TEXT NOT NULL,
        reason TEXT NOT NULL,
        compensating TEXT NOT NULL DEFAULT '',
        decided_by TEXT NOT NULL DEFAULT '',
        until TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT
    );
    CREATE INDEX acceptances_fingerprint ON acceptances (fingerprint);
    CREATE TABLE finding_events (
        id INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        scan_id INTEGER,
        fingerprint TEXT NOT NULL,
        event TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX finding_events_fingerprint ON finding_events (fingerprint);
    CREATE TRIGGER finding_events_append_only_update BEFORE UPDATE ON finding_events
    BEGIN SELECT RAISE(ABORT, 'finding_events is append-only'); END;
    CREATE TRIGGER finding_events_append_only_delete BEFORE DELETE ON finding_events
    BEGIN SELECT RAISE(ABORT, 'finding_events is append-only'); END;
    """,
    # 2: findings lose their (scan_id, fingerprint) key. Fingerprints are hashes, so that
    # index took every insert at a random place and each per-target commit rewrote most
    # of its pages (about 5 KB of WAL per finding). Rows now append in write order;
    # finding_state keeps the row of each fingerprint's latest record, and duplicates
    # within a scan are folded away when the scan closes. A rule's texts (titles,
    # remediations in both languages, controls) are stored once in rule_texts, not on
    # every finding of the rule; the view findings_full joins them back, with the columns
    # findings had in schema 1, for SQL written against it. The trail loses its
    # fingerprint index: that key too was random, and only the per-finding trail (rare,
    # interactive) read through it.
    """
    CREATE TABLE rule_texts (
        id INTEGER PRIMARY KEY,
        policy TEXT NOT NULL,
        title TEXT NOT NULL,
        controls TEXT NOT NULL,
        remediation TEXT NOT NULL,
        title_fr TEXT NOT NULL,
        remediation_fr TEXT NOT NULL,
        UNIQUE (policy, title, controls, remediation, title_fr, remediation_fr)
    );
    INSERT OR IGNORE INTO rule_texts (policy, title, controls, remediation, title_fr,
        remediation_fr) SELECT policy, title, controls, remediation, title_fr, remediation_fr
        FROM findings ORDER BY rowid;
    CREATE TABLE findings_v2 (
        scan_id INTEGER NOT NULL REFERENCES scans(id),
        fingerprint TEXT NOT NULL,
        rule_id TEXT NOT NULL,
        texts INTEGER NOT NULL,
        resource_type TEXT NOT NULL,
        resource_key TEXT NOT NULL,
        target TEXT NOT NULL,
        system TEXT NOT NULL,
        status TEXT NOT NULL,
        severity TEXT NOT NULL,
        message TEXT NOT NULL,
        evidence TEXT,
        reason TEXT,
        history TEXT,
        first_seen TEXT
    );
    INSERT INTO findings_v2 SELECT f.scan_id, f.fingerprint, f.rule_id, t.id, f.resource_type,
        f.resource_key, f.target, f.system, f.status, f.severity, f.message, f.evidence,
        f.reason, f.history, f.first_seen
        FROM findings f JOIN rule_texts t ON t.policy = f.policy AND t.title = f.title
        AND t.controls = f.controls AND t.remediation = f.remediation
        AND t.title_fr = f.title_fr AND t.remediation_fr = f.remediation_fr
        ORDER BY f.scan_id, f.fingerprint;
    CREATE INDEX findings_v2_migration ON findings_v2 (scan_id, fingerprint);
    ALTER TABLE finding_state ADD COLUMN last_row INTEGER;
    UPDATE finding_state SET last_row = (SELECT v.rowid FROM findings_v2 v
        WHERE v.scan_id = finding_state.last_scan_id
        AND v.fingerprint = finding_state.fingerprint);
    DROP INDEX findings_v2_migration;
    DROP TABLE findings;
    ALTER TABLE findings_v2 RENAME TO findings;
    CREATE INDEX findings_status ON findings (scan_id, status, severity);
    DROP INDEX IF EXISTS finding_state_target;
    CREATE INDEX finding_state_failing ON finding_state (target) WHERE last_status = 'fail';
    DROP INDEX IF EXISTS finding_events_fingerprint;
    CREATE VIEW findings_full AS SELECT f.scan_id, f.fingerprint, f.rule_id, t.policy,
        t.title, f.resource_type, f.resource_key, f.target, f.system, f.status, f.severity,
        f.message, f.evidence, t.controls, t.remediation, f.reason, f.history, f.first_seen,
        t.title_fr, t.remediation_fr
        FROM findings f JOIN rule_texts t ON t.id = f.texts;
    """,
    history_by_reference,
    texts_per_language,
)


_LATE_V1_COLUMNS = (
    ("findings", "title_fr", "TEXT NOT NULL DEFAULT ''"),
    ("findings", "remediation_fr", "TEXT NOT NULL DEFAULT ''"),
    ("finding_state", "target", "TEXT NOT NULL DEFAULT ''"),
)
"""Columns added to schema 1 in place: (table, column, definition as in MIGRATIONS[0])."""


SCHEMA_VERSION = len(MIGRATIONS)
"""The schema this code reads and writes."""

Transaction = Callable[[], AbstractContextManager[None]]


def version_of(conn: sqlite3.Connection, path: str) -> int:
    """The store's schema version; a newer one than this code knows is refused."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise StoreError(
            f"{path}: store schema {version} is newer than this "
            f"version of rempart understands ({len(MIGRATIONS)})"
        )
    return version


def migrate(conn: sqlite3.Connection, version: int, transaction: Transaction) -> int:
    """Apply the migrations a store at ``version`` lacks, one transaction each."""
    for number in range(version, len(MIGRATIONS)):
        if number == 1:
            complete_first_schema(conn, transaction)  # migration 2 copies the late columns
        with transaction():
            apply(conn, MIGRATIONS[number])
            conn.execute(f"PRAGMA user_version = {number + 1}")
    return len(MIGRATIONS)


def complete_first_schema(conn: sqlite3.Connection, transaction: Transaction) -> None:
    """Add the columns schema 1 gained after stores were first written with it.

    A store created before them is still at ``user_version`` 1, and every write
    failed on it with a raw "no such column" error.
    """
    for table, column, definition in _LATE_V1_COLUMNS:
        names = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in names:
            with transaction():
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {definition}")
    indexed = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'finding_state_target'"
    ).fetchone()
    if indexed is None:
        with transaction():
            conn.execute("CREATE INDEX finding_state_target ON finding_state (target, last_status)")


def apply(conn: sqlite3.Connection, migration: Migration) -> None:
    """Run one migration inside the caller's transaction."""
    if callable(migration):
        migration(conn)
        return
    for statement in statements(migration):
        conn.execute(statement)


def statements(script: str) -> Iterator[str]:
    """Split a migration script into statements (triggers keep their inner ';')."""
    buffer = ""
    for line in script.strip().splitlines():
        buffer += line + "\n"
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
