"""A per-user cache of compiled built-in policy packs, so a scan starts without pydantic.

Validating a pack (pydantic models, documented facts, framework controls, RE2 patterns)
costs a scan about a third of a second before its first packet, and the built-in packs
are the same every time. The compiled :class:`~audit.policy.Policy` is kept as plain
JSON (never pickle: a file that a security tool unpickles is code an attacker can plant)
and rebuilt into the frozen dataclasses without pydantic.

An entry is used only when everything that decided its compilation is unchanged: the
pack's bytes and path, the fact catalogue it was checked against, the framework
catalogues, Rempart's version and the code that validates and compiles. The directory
(``$XDG_CACHE_HOME/rempart``, else ``~/.cache/rempart``) is created 0700; a directory or
file that is not ours, is writable by group or others, or is not a plain file is ignored,
as is an entry that does not decode: the pack is compiled again, never an error.
``REMPART_NO_CACHE=1`` turns the cache off.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

from audit import __version__
from audit.cache import is_enabled, read_json, write_json
from audit.errors import PolicyError
from audit.evaluate import AllOf, AnyOf, Condition, Each, Leaf, Not
from audit.frameworks import catalogues_digest
from audit.models import Severity, Translation
from audit.policy import Declaration, FactCatalogue, Policy, Reference, Rule, compile_file
from audit.yamlfile import MAX_FILE_BYTES, FileTooLarge, parse_yaml, read_regular_file

FORMAT = 2
"""Bumped when the entry layout changes."""

_CODE = ("policy.py", "policyfile.py", "policycache.py", "evaluate", "evaluate.py", "regex.py")
"""The modules (files, or packages whose every file counts) whose code decides what a pack
compiles to: an edit invalidates entries even when the version does not move (a
development tree). A name that does not exist counts as empty."""


def load_through_cache(path: Path, catalogue: FactCatalogue | None) -> Policy:
    """The compiled pack at ``path``: from the cache when its entry is current, else fresh.

    A fresh compilation is stored for the next process. Faults in the pack are raised as
    :func:`audit.policy.load_policy` raises them; cache faults are never raised.
    """
    if not is_enabled():
        return compile_file(path, catalogue)
    try:
        content = read_regular_file(path, MAX_FILE_BYTES)
        text = content.decode("utf-8")
        key = entry_key(str(path), content, catalogue)
    except (OSError, FileTooLarge, UnicodeDecodeError):
        return compile_file(path, catalogue)  # the loader names the pack's own fault
    name = _slot(str(path), catalogue)
    cached = read_entry(name, key)
    if cached is not None:
        return cached
    from audit.policyfile import compile_document

    policy = compile_document(parse_yaml(text, str(path), PolicyError), catalogue)
    write_entry(name, key, policy)
    return policy


def entry_key(source: str, content: bytes, catalogue: FactCatalogue | None) -> str:
    """What an entry must have been compiled from to stand for this pack, as a digest."""
    digest = hashlib.sha256()
    for part in (
        f"rempart-policy-cache/{FORMAT}/{__version__}".encode(),
        source.encode(),
        content,
        _catalogue_bytes(catalogue),
        catalogues_digest(),
        _code_digest(),
    ):
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()


def _slot(source: str, catalogue: FactCatalogue | None) -> str:
    """One file per pack and catalogue: a changed pack overwrites its stale entry."""
    seed = hashlib.sha256(source.encode() + b"\0" + _catalogue_bytes(catalogue)).hexdigest()
    return f"policy-{Path(source).stem[:40]}-{seed[:24]}.json"


def _catalogue_bytes(catalogue: FactCatalogue | None) -> bytes:
    if catalogue is None:
        return b"null"
    plain = {name: sorted(facts) for name, facts in catalogue.items()}
    return json.dumps(plain, sort_keys=True).encode()


@functools.cache
def _code_digest() -> bytes:
    here = Path(__file__).parent
    digest = hashlib.sha256()
    for name in _CODE:
        path = here / name
        for file in sorted(path.glob("*.py")) if path.is_dir() else [path]:
            with suppress(OSError):
                digest.update(f"{file.relative_to(here)}".encode() + b"\0" + file.read_bytes())
    return digest.digest()


def read_entry(name: str, key: str) -> Policy | None:
    """The policy stored under ``name`` for ``key``; None when absent, foreign or bad."""
    payload = read_json(name, key)
    if payload is None:
        return None
    try:
        return decode_policy(payload)
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return None


def write_entry(name: str, key: str, policy: Policy) -> None:
    """Store ``policy`` atomically; a policy JSON cannot carry exactly is not stored."""
    payload = _exact_payload(policy)
    if payload is not None:
        write_json(name, key, payload)


def _exact_payload(policy: Policy) -> Any:
    """The policy as JSON data, or None when reading it back would not give it exactly.

    A YAML value JSON has no type for (a date, a mapping with integer keys, a NaN) makes
    the round trip differ; such a pack is simply compiled every time.
    """
    try:
        payload = json.loads(json.dumps(encode_policy(policy), allow_nan=False))
        return payload if decode_policy(payload) == policy else None
    except (ValueError, TypeError, RecursionError):
        return None


# -- Policy <-> plain JSON data --------------------------------------------------------


def encode_policy(policy: Policy) -> dict[str, Any]:
    """The compiled policy as JSON-ready data (tuples become lists, enums strings)."""
    return {
        "name": policy.name,
        "title": policy.title,
        "version": policy.version,
        "source": policy.source,
        "rules": [_encode_rule(rule) for rule in policy.rules],
        "params": dict(policy.params),
        "param_docs": dict(policy.param_docs),
        "description": policy.description,
        "warnings": list(policy.warnings),
    }


def decode_policy(data: Mapping[str, Any]) -> Policy:
    """Rebuild the frozen dataclasses from :func:`encode_policy`'s data."""
    return Policy(
        name=_str(data["name"]),
        title=_str(data["title"]),
        version=_str(data["version"]),
        source=_str(data["source"]),
        rules=tuple(_decode_rule(rule) for rule in data["rules"]),
        params=dict(data["params"]),
        param_docs={_str(k): _str(v) for k, v in data["param_docs"].items()},
        description=_str(data["description"]),
        warnings=tuple(_str(w) for w in data["warnings"]),
    )


def _encode_rule(rule: Rule) -> dict[str, Any]:
    return {
        "id": rule.id,
        "policy": rule.policy,
        "title": rule.title,
        "resource": rule.resource,
        "expect": _encode_condition(rule.expect),
        "severity": rule.severity.value,
        "remediation": rule.remediation,
        "where": None if rule.where is None else _encode_condition(rule.where),
        "controls": {fw: list(ids) for fw, ids in rule.controls.items()},
        "description": rule.description,
        "reads": sorted(rule.reads),
        "where_reads": sorted(rule.where_reads),
        "translations": {
            lang: [t.title, t.remediation, t.message] for lang, t in rule.translations.items()
        },
        "references": [_encode_reference(ref) for ref in rule.references],
        "context": list(rule.context),
        "declared": None if rule.declared is None else [rule.declared.param, rule.declared.message],
        "same_as": list(rule.same_as),
        "message": rule.message,
    }


def _decode_rule(data: Mapping[str, Any]) -> Rule:
    where, declared = data["where"], data["declared"]
    return Rule(
        id=_str(data["id"]),
        policy=_str(data["policy"]),
        title=_str(data["title"]),
        resource=_str(data["resource"]),
        expect=_decode_condition(data["expect"]),
        severity=Severity(data["severity"]),
        remediation=_str(data["remediation"]),
        where=None if where is None else _decode_condition(where),
        controls={_str(fw): tuple(_str(i) for i in ids) for fw, ids in data["controls"].items()},
        description=_str(data["description"]),
        reads=frozenset(_str(r) for r in data["reads"]),
        where_reads=frozenset(_str(r) for r in data["where_reads"]),
        translations={
            _str(lang): Translation(_str(t[0]), _str(t[1]), _str(t[2]))
            for lang, t in data["translations"].items()
        },
        references=tuple(_decode_reference(ref) for ref in data["references"]),
        context=tuple(_str(c) for c in data["context"]),
        declared=None if declared is None else Declaration(_str(declared[0]), _str(declared[1])),
        same_as=tuple(_str(i) for i in data["same_as"]),
        message=_str(data["message"]),
    )


def _encode_reference(ref: Reference) -> list[str | None]:
    return [ref.document, ref.version, ref.section, ref.url, ref.note]


def _decode_reference(data: Any) -> Reference:
    document, version, section, url, note = data
    url = None if url is None else _str(url)
    return Reference(_str(document), _str(version), _str(section), url, _str(note))


def _encode_condition(condition: Condition) -> dict[str, Any]:
    """One key naming the node's kind, as in a policy file."""
    if isinstance(condition, Leaf):
        return {"leaf": [condition.key, condition.op, condition.value, condition.param]}
    if isinstance(condition, AllOf | AnyOf):
        kind = "all" if isinstance(condition, AllOf) else "any"
        return {kind: [_encode_condition(c) for c in condition.conditions]}
    if isinstance(condition, Not):
        return {"not": _encode_condition(condition.condition)}
    return {"each": [condition.key, _encode_condition(condition.expect)]}


def _decode_condition(data: Mapping[str, Any]) -> Condition:
    ((kind, body),) = data.items()
    if kind == "leaf":
        key, op, value, param = body
        return Leaf(_str(key), _str(op), value, None if param is None else _str(param))
    if kind in ("all", "any"):
        subs = tuple(_decode_condition(c) for c in body)
        return AllOf(subs) if kind == "all" else AnyOf(subs)
    if kind == "not":
        return Not(_decode_condition(body))
    if kind == "each":
        return Each(_str(body[0]), _decode_condition(body[1]))
    raise ValueError(f"unknown condition kind {kind!r}")


def _str(value: Any) -> str:
    """A text field must come back as text: anything else means a damaged entry."""
    if not isinstance(value, str):
        raise TypeError(f"expected text, found {type(value).__name__}")
    return value
