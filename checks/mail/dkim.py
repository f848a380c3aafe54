"""DKIM (RFC 6376, RFC 8301, RFC 8463): the keys published for the declared selectors.

DKIM selectors cannot be listed from DNS; the audit looks only at those the operator
declares (the target's ``?dkim=`` and the inventory's ``mail: {dkim: ...}``). Each is read
at ``<selector>._domainkey.<domain>``: present when one record carries a usable ``p=``
(an empty ``p=`` is a revoked key, RFC 6376 §3.6.1), with the key's type and size read
by ``cryptography``. ``domainkey_node`` tells whether ``_domainkey.<domain>`` exists at
all (RFC 8020: NOERROR means the node exists even with no record of its own; NXDOMAIN
means nothing lies below it, so no selector can exist).
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from checks.mail.dmarc import parse_tags
from checks.mail.spf import Query

_SELECTOR = re.compile(r"^(?!-)[a-z0-9_-]{1,63}(?<!-)(\.(?!-)[a-z0-9_-]{1,63}(?<!-))*$")
MAX_SELECTORS = 20
MAX_KEY_TEXT = 8192


class DkimUnknown(Exception):
    """The resolver did not answer: the ``dkim`` fact stays unknown."""


def valid_selector(name: str) -> bool:
    """A selector is one or more DNS labels (RFC 6376 §3.1)."""
    return len(name) <= 200 and bool(_SELECTOR.match(name.lower()))


def key_facts(texts: tuple[str, ...]) -> dict[str, Any]:
    """``present``, ``key_type``, ``key_bits`` (and why not) from a selector's TXT strings."""
    records = [t for t in texts if _looks_like_key(t)]
    facts: dict[str, Any] = {"present": False, "key_type": None, "key_bits": None}
    if not records:
        return facts
    if len(records) > 1:
        return {**facts, "error": f"{len(records)} key records (RFC 6376 §3.6.2.2: ambiguous)"}
    tags = parse_tags(records[0][:MAX_KEY_TEXT])
    facts["testing"] = "y" in [f.strip() for f in tags.get("t", "").lower().split(":")]
    kind = tags.get("k", "rsa").lower()
    data = re.sub(r"\s+", "", tags.get("p", ""))
    if not data:
        return {**facts, "revoked": True, "error": "empty p=: the key is revoked"}
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return {**facts, "error": "p= is not base64"}
    described = describe_key(kind, raw)
    if isinstance(described, str):
        return {**facts, "error": described}
    key_type, bits = described
    return {**facts, "present": True, "key_type": key_type, "key_bits": bits, "revoked": False}


def _looks_like_key(text: str) -> bool:
    tags = parse_tags(text)
    version = tags.get("v")
    return "p" in tags and (version is None or version == "DKIM1")


def describe_key(kind: str, raw: bytes) -> tuple[str, int] | str:
    """(``RSA``, bits) or (``Ed25519``, 256); a string says why the key is unusable."""
    if kind == "ed25519":
        return ("Ed25519", 256) if len(raw) == 32 else "an ed25519 key is 32 bytes (RFC 8463)"
    if kind != "rsa":
        return f"unknown key type k={kind[:16]}"
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:  # SubjectPublicKeyInfo, or the bare PKCS#1 RSAPublicKey some signers publish
        key = load_der_public_key(raw)
    except (ValueError, TypeError):
        return "p= is not a DER RSA public key"
    if not isinstance(key, rsa.RSAPublicKey):
        return "k=rsa but p= holds another kind of key"
    return ("RSA", key.key_size)


async def check_domain(domain: str, selectors: tuple[str, ...], query: Query) -> dict[str, Any]:
    """The ``dkim`` fact (raises :class:`DkimUnknown` when DNS did not answer)."""
    node = await query(f"_domainkey.{domain}", "TXT")
    _known(node, f"_domainkey.{domain}")
    found: dict[str, Any] = {}
    for selector in selectors[:MAX_SELECTORS]:
        answer = await query(f"{selector}._domainkey.{domain}", "TXT")
        _known(answer, f"TXT {selector}._domainkey.{domain}")
        found[selector] = key_facts(answer.records)
    return {"domainkey_node": node.rcode == "NOERROR", "selectors": found}


def _known(answer: Any, what: str) -> None:
    if answer.error is not None:
        raise DkimUnknown(f"{what}: {answer.error}")
    if answer.rcode not in ("NOERROR", "NXDOMAIN"):
        raise DkimUnknown(f"{what}: {answer.rcode} from the resolver")
