"""DANE for SMTP (RFC 7672): TLSA records at ``_25._tcp.<MX>``, judged by what senders use.

A sending MTA uses an MX's TLSA records only when the MX host's address records and the
TLSA RRset are DNSSEC-secure (RFC 7672 §2.2): an insecure or bogus zone gives no DANE at
all. Among the records, only DANE-TA(2) and DANE-EE(3) are usable for SMTP (§3.1.3:
PKIX-TA(0) and PKIX-EE(1) "SHOULD NOT" be published and senders treat them as unusable),
with a known selector (0 full certificate, 1 SubjectPublicKeyInfo) and matching type
(0 full, 1 SHA-256, 2 SHA-512) whose data has the right length.
"""

from __future__ import annotations

import re
from typing import Any

_HEX = re.compile(r"^[0-9a-fA-F]+$")
_DIGEST_BYTES = {1: 32, 2: 64}


def usable(record: str) -> bool:
    """One TLSA record in presentation form (``3 1 1 ABCD...``) is usable for SMTP."""
    parts = record.split()
    if len(parts) < 4 or not all(p.isdigit() for p in parts[:3]):
        return False
    usage, selector, mtype = (int(p) for p in parts[:3])
    data = "".join(parts[3:])
    if usage not in (2, 3) or selector not in (0, 1) or mtype not in (0, 1, 2):
        return False
    if not _HEX.match(data) or len(data) % 2:
        return False
    expected = _DIGEST_BYTES.get(mtype)
    return expected is None or len(data) // 2 == expected


def host_facts(host: str, records: tuple[str, ...], dnssec: str) -> dict[str, Any]:
    """One MX's DANE facts: what is published, and whether a sender would use it."""
    secure = dnssec == "secure"
    return {
        "host": host,
        "dnssec": dnssec,
        "tlsa_present": bool(records),
        "usable": secure and any(usable(r) for r in records),
        "records": list(records[:20]),
    }


def summary(hosts: list[dict[str, Any]]) -> dict[str, Any]:
    """The ``dane`` fact: per MX, and counts a policy can read without a filter."""
    secure = [h for h in hosts if h["dnssec"] == "secure"]
    return {
        "hosts": hosts,
        "secure_mx": len(secure),
        "usable_mx": sum(1 for h in secure if h["usable"]),
    }
