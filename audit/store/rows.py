"""The row codec: how findings, resources, scans and acceptances become rows and back.

One codec for every reader of the store (the façade, the write path's history, ``db
merge`` reading its inputs), so a column is encoded and decoded in one place only.
Findings are decoded from plain tuples on the hot path (100,000 per ``findings``); the
other records are few and read through ``sqlite3.Row``.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson

from audit.jsontext import dumps as _dumps
from audit.jsontext import loads as _loads
from audit.models import (
    Acceptance,
    Finding,
    Lifecycle,
    Problem,
    Reason,
    Resource,
    ScanSummary,
    Severity,
    Status,
    SystemInfo,
    Translation,
    Translations,
)

FINDING_FIELDS = (
    "fingerprint", "rule_id", "texts", "resource_type", "resource_key", "target", "system",
    "status", "severity", "message", "evidence", "reason", "history", "first_seen",
)  # fmt: skip
"""The columns of a row of ``findings`` after ``first_scan``: what a version is."""
FINDING_COLUMNS = "first_scan, " + ", ".join(FINDING_FIELDS)
"""A row of ``findings`` as :func:`finding` decodes it (the scan first)."""
FINDINGS_OF_SCAN = "m.scan_id, " + ", ".join(f"f.{name}" for name in FINDING_FIELDS)
"""The same, for each finding of a scan: ``scan_findings m JOIN findings f``."""
FINDINGS_JOIN = "scan_findings m JOIN findings f ON f.rowid = m.row"
FINDING_WIDTH = len(FINDING_FIELDS) + 1
RESOURCE_FIELDS = ("key", "type", "target", "system", "facts", "unknown")
RESOURCE_COLUMNS = ", ".join(RESOURCE_FIELDS)

_STATUS = {s.value: s for s in Status}
_SEVERITY = {s.value: s for s in Severity}
_REASON = {r.value: r for r in Reason}
_LIFECYCLE = {lc.value: lc for lc in Lifecycle}


class RuleTexts(NamedTuple):
    """What every finding of one version of a rule shares (a row of ``rule_texts``)."""

    policy: str
    title: str
    controls: Mapping[str, tuple[str, ...]]
    remediation: str
    translations: Translations


class TextCache:
    """Every rule version's texts, read once and then only the rows added since (rows
    are never changed or deleted; another process may add some)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.by_id: dict[int, RuleTexts] = {}

    def current(self) -> Mapping[int, RuleTexts]:
        cursor = self.conn.cursor()
        cursor.row_factory = None
        for row in cursor.execute(
            "SELECT id, policy, title, controls, remediation, translations "
            "FROM rule_texts WHERE id > ? ORDER BY id",
            (max(self.by_id, default=0),),
        ):
            self.by_id[row[0]] = RuleTexts(
                row[1], row[2], controls(row[3]), row[4], translations(row[5])
            )
        return self.by_id


# --- findings ----------------------------------------------------------------------------


def finding(row: Sequence[Any], texts: Mapping[int, RuleTexts]) -> Finding:
    """A finding from a row of FINDING_COLUMNS or FINDINGS_OF_SCAN (tuples: this is
    the hot path).

    Built like :meth:`Finding.evolve`, without the frozen dataclass's per-field
    ``object.__setattr__``: every value here comes typed from our own columns. The
    rule's texts are shared objects, one per distinct rule version.
    """
    rule = texts[row[3]]
    decoded = object.__new__(Finding)
    decoded.__dict__.update(
        rule_id=row[2],
        policy=rule.policy,
        title=rule.title,
        resource_type=row[4],
        resource_key=row[5],
        target=row[6],
        system=row[7],
        status=_STATUS[row[8]],
        severity=_SEVERITY[row[9]],
        message=row[10],
        evidence=_loads(row[11]) if row[11] else None,
        controls=rule.controls,
        remediation=rule.remediation,
        reason=_REASON[row[12]] if row[12] else None,
        lifecycle=_LIFECYCLE[row[13]] if row[13] else None,
        first_seen=row[14],
        scan_id=row[0],
        translations=rule.translations,
        fingerprint=row[1],
    )
    return decoded


def finding_row(scan_id: int, f: Finding, texts: int) -> tuple[Any, ...]:
    """The row of FINDING_COLUMNS that :func:`finding` reads back (``row[1:]`` is what
    a version is: two findings with equal ones share a row)."""
    return (
        scan_id,
        f.fingerprint,
        f.rule_id,
        texts,
        f.resource_type,
        f.resource_key,
        f.target,
        f.system,
        f.status._value_,
        f.severity._value_,
        f.message,
        _dumps(f.evidence),
        f.reason._value_ if f.reason else None,
        f.lifecycle._value_ if f.lifecycle else None,
        f.first_seen,
    )


_CONTROLS_JSON: dict[int, tuple[Mapping[str, tuple[str, ...]], str]] = {}


def controls_json(value: Mapping[str, tuple[str, ...]]) -> str:
    """Serialise a rule's control map once: every finding of the rule shares the object."""
    cached = _CONTROLS_JSON.get(id(value))
    if cached is not None and cached[0] is value:
        return cached[1]
    text = _dumps({k: list(v) for k, v in value.items()})
    if len(_CONTROLS_JSON) > 10_000:
        _CONTROLS_JSON.clear()
    _CONTROLS_JSON[id(value)] = (value, text)
    return text


def controls(text: str) -> Mapping[str, tuple[str, ...]]:
    """A control map back from its column (read once per rule version)."""
    return MappingProxyType({k: tuple(v) for k, v in json.loads(text).items()})


_TRANSLATIONS_JSON: dict[int, tuple[Translations, str]] = {}


def translations_json(value: Translations) -> str:
    """A rule's texts in other languages as their column: ``{lang: {title, remediation,
    message}}``, keys sorted, so one content has one text (the rule_texts key). Once per
    rule: every finding of the rule shares the object."""
    cached = _TRANSLATIONS_JSON.get(id(value))
    if cached is not None and cached[0] is value:
        return cached[1]
    content = {
        lang: {"title": t.title, "remediation": t.remediation, "message": t.message}
        for lang, t in value.items()
    }
    text = orjson.dumps(content, option=orjson.OPT_SORT_KEYS).decode()
    if len(_TRANSLATIONS_JSON) > 10_000:
        _TRANSLATIONS_JSON.clear()
    _TRANSLATIONS_JSON[id(value)] = (value, text)
    return text


def translations(text: str) -> Translations:
    """A rule's translations back from their column (read once per rule version)."""
    return MappingProxyType(
        {
            lang: Translation(t.get("title", ""), t.get("remediation", ""), t.get("message", ""))
            for lang, t in json.loads(text or "{}").items()
        }
    )


def digest(content: Sequence[Any]) -> int:
    """A 64-bit digest of a row's content (what a version is), the same in every
    process: two findings with the same digest share a row. The content is encoded as a
    JSON array (strings, small integers and None: unambiguous, and a third of ``repr``'s
    time); a collision, one in 2**64 per comparison, would only keep a previous row."""
    try:
        data = orjson.dumps(content)
    except orjson.JSONEncodeError:  # not from our columns; still one digest per content
        data = repr(tuple(content)).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big", signed=True)


def text_key(f: Finding) -> tuple[str, ...]:
    """The columns of ``rule_texts`` a finding's rule version is stored under."""
    return (
        f.policy,
        f.title,
        controls_json(f.controls),
        f.remediation,
        translations_json(f.translations),
    )


def listing_order(f: Finding) -> tuple[str, str, str]:
    """The order every listing of findings uses (as ``findings``' ORDER BY)."""
    return (f.system, f.rule_id, f.resource_key)


# --- resources, scans, acceptances -------------------------------------------------------


def resource_row(r: Resource) -> tuple[Any, ...]:
    """A resource as the columns of RESOURCE_COLUMNS."""
    unknown = {k: {"reason": p.reason.value, "message": p.message} for k, p in r.unknown.items()}
    return (r.key, r.type, r.target, r.system, _dumps(dict(r.facts)), _dumps(unknown))


def resource(row: Sequence[Any]) -> Resource:
    """A resource back from a row of RESOURCE_COLUMNS."""
    key, type_, target, system, facts, unknown = row[:6]
    problems = {
        name: Problem(Reason(p["reason"]), p["message"]) for name, p in _loads(unknown).items()
    }
    return Resource(type_, key, target, system, _loads(facts), problems)


def summary(row: sqlite3.Row) -> ScanSummary:
    """A scan row; the score snapshot joins the counts so trends read one mapping."""
    counts = json.loads(row["counts"])
    if row["scores"]:
        counts.update(json.loads(row["scores"]))
    return ScanSummary(
        id=row["id"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        status=row["status"],
        policies=tuple(json.loads(row["policies"])),
        counts=counts,
        scope_declared=bool(row["scope_declared"]),
        inventory=row["inventory"],
        command=row["command"] if "command" in row.keys() else None,  # noqa: SIM118 (Row: `in` tests values)
    )


def systems(text: str) -> tuple[SystemInfo, ...]:
    """The ``systems`` column of a scan."""
    return tuple(SystemInfo(**s) for s in json.loads(text))


def system_json(system: SystemInfo) -> dict[str, str]:
    """One system as the ``systems`` column holds it."""
    return {
        "name": system.name,
        "owner": system.owner,
        "criticality": system.criticality,
        "description": system.description,
    }


def acceptance(row: sqlite3.Row) -> Acceptance:
    """An acceptance from its row."""
    return Acceptance(
        id=row["id"],
        fingerprint=row["fingerprint"],
        rule_id=row["rule_id"],
        resource_key=row["resource_key"],
        owner=row["owner"],
        reason=row["reason"],
        until=row["until"],
        created_at=row["created_at"],
        decided_by=row["decided_by"],
        compensating=row["compensating"],
        revoked_at=row["revoked_at"],
    )
