# ruff: noqa: E501  (the fact table reads best one fact a line)
"""The ``dns`` check family: a domain's zone, as its resolvers and nameservers show it.

Targets: ``dns://DOMAIN`` (a domain name; no port, path or parameter). One ``dns.zone``
resource per target, keyed ``dns://domain``.

How it observes (:mod:`checks.dns.collect`): the SOA, NS, CAA, DNSKEY, DS and NSEC3PARAM
questions go to the configured resolvers (``--resolver HOST[:PORT]``, repeatable, or the
inventory's ``dns: {resolvers: [...]}``; the system's by default) through the shared
client (:mod:`checks.dns.client`: DO bit, per-question timeout, TCP after truncation,
one asyncio loop, bounded concurrency per resolver). Two probes go to the zone's
nameservers themselves, at the addresses the resolver gave for them: an AXFR of the zone,
and a recursive question for the root's NS. They are sent only to nameservers the scope
guard admits; one outside the scope is listed and not probed, and the transfer and
recursion facts stay unknown unless another server already answered yes.

DNSSEC is validated by Rempart (:mod:`checks.dns.dnssec`), never read from a resolver's
AD bit: from the IANA root KSKs shipped in ``root-anchors.yaml``, or from the DS/DNSKEY
records of ``--dnssec-anchors FILE`` (also ``dns: {dnssec_anchors: FILE}`` or
``trust: {dnssec_anchors: FILE}`` in an inventory) for internal zones and tests.

Settings block (inventory ``dns:``): ``resolvers`` (list of ``HOST[:PORT]``, addresses
only), ``dnssec_anchors`` (a file), ``nameserver_port`` (where nameservers are probed,
default 53; for labs and non-standard deployments).

Unknown is not absent: a resolver that does not answer makes the facts that needed it
unknown with the reason (``timeout``, ``unreachable``), and a domain that does not exist
is a ``not_found`` problem; the rules reading them end ``error``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

from audit.models import Observation, Target
from audit.plugins import CheckContext, CheckFamily, FactDoc, ResourceTypeDoc

if TYPE_CHECKING:
    from concurrent.futures import Future

    from audit.labkit import DemoContext, DemoPart

FACTS = (
    FactDoc(
        "domain", "string", "The domain named by the target, lower-case, without the final dot."
    ),
    FactDoc("zone", "string", "The apex of the zone the domain is in (the owner of its SOA)."),
    FactDoc("soa", "object|null", "The zone's SOA record (null when the resolver gave none)."),
    FactDoc("soa.mname", "string", "Primary nameserver named in the SOA."),
    FactDoc(
        "soa.rname",
        "string",
        "Mailbox of the person responsible, in DNS form (`hostmaster.example.org`).",
    ),
    FactDoc("soa.serial", "integer", "Zone serial number."),
    FactDoc(
        "soa.refresh",
        "integer",
        "Seconds between secondary checks of the serial (RFC 1035 §3.3.13).",
    ),
    FactDoc("soa.retry", "integer", "Seconds before a failed refresh is retried."),
    FactDoc(
        "soa.expire",
        "integer",
        "Seconds after which secondaries stop answering without reaching the primary.",
    ),
    FactDoc("soa.minimum", "integer", "TTL of negative answers (RFC 2308 §4)."),
    FactDoc(
        "nameservers",
        "list[object]",
        "The zone's NS set: `{name, addresses}` per nameserver, addresses as the resolver gave them (A and AAAA).",
    ),
    FactDoc("nameserver_count", "integer", "Number of distinct nameserver names in the NS set."),
    FactDoc(
        "nameserver_networks",
        "list[string]",
        "The distinct networks the nameservers' addresses are in, counted as IPv4 /24 and IPv6 /48 prefixes.",
    ),
    FactDoc("nameserver_network_count", "integer", "Number of those distinct networks."),
    FactDoc(
        "zone_transfer_open",
        "bool",
        "A nameserver answered our AXFR with the zone. Unknown when none said yes and one could not be asked (silent, or outside the scope).",
    ),
    FactDoc(
        "zone_transfer_servers",
        "list[string]",
        "The nameservers (`name (address)`) that transferred the zone to us.",
    ),
    FactDoc(
        "recursion_open",
        "bool",
        "A nameserver answered a question outside its zone (the root's NS) with recursion available (RA). Unknown as `zone_transfer_open`.",
    ),
    FactDoc(
        "recursion_servers",
        "list[string]",
        "The nameservers (`name (address)`) that recursed for us.",
    ),
    FactDoc(
        "caa",
        "object",
        "The relevant CAA RRset, found by climbing the tree from the domain up to (not including) the root, RFC 8659 §3.",
    ),
    FactDoc("caa.present", "bool", "A CAA RRset applies to the domain (its own or an ancestor's)."),
    FactDoc("caa.found_at", "string|null", "The name whose CAA RRset applies."),
    FactDoc(
        "caa.issue",
        "list[string]",
        "Values of the `issue` properties (`;` alone forbids issuance).",
    ),
    FactDoc("caa.issuewild", "list[string]", "Values of the `issuewild` properties."),
    FactDoc(
        "caa.iodef",
        "list[string]",
        "Values of the `iodef` properties (where CAs report refused requests).",
    ),
    FactDoc(
        "dnssec",
        "object",
        "DNSSEC of the zone, validated by Rempart from the trust anchors (the resolver's AD bit is never read).",
    ),
    FactDoc(
        "dnssec.status",
        "string",
        "`secure` (valid chain from an anchor), `insecure` (under no anchor, or a delegation on the way proven to have no DS), `bogus` (should be signed and is not validly: expired or wrong signatures, DNSKEY not matching the DS, unproven DS absence) or `indeterminate` (the resolver answered SERVFAIL/REFUSED on the chain). Unknown when a question went unanswered.",
    ),
    FactDoc(
        "dnssec.reason",
        "string",
        "Why the status is what it is (the link of the chain that decided it).",
    ),
    FactDoc(
        "dnssec.algorithms",
        "list[integer]",
        "DNSSEC algorithm numbers (IANA registry, RFC 8624) of the DNSKEYs at the zone apex; empty when unsigned.",
    ),
    FactDoc(
        "dnssec.ds_digest_types",
        "list[integer]",
        "Digest types (1 SHA-1, 2 SHA-256, 4 SHA-384) of the DS records in the parent zone.",
    ),
    FactDoc(
        "dnssec.denial",
        "string|null",
        "Authenticated denial of existence: `nsec` or `nsec3` (null when unsigned).",
    ),
    FactDoc(
        "dnssec.nsec3_iterations",
        "integer|null",
        "Extra NSEC3 hash iterations (NSEC3PARAM; RFC 9276 asks for 0).",
    ),
    FactDoc(
        "dnssec.nsec3_salt",
        "string|null",
        "NSEC3 salt in hex, null when none (RFC 9276 asks for none).",
    ),
    FactDoc(
        "dnssec.signature_expires_in_days",
        "number|null",
        "Days until the soonest expiry among the RRSIGs seen on the apex's DNSKEY and SOA (negative: expired); null when unsigned.",
    ),
)

RESOURCE_TYPES = (
    ResourceTypeDoc(
        "dns.zone",
        "A domain's zone: SOA, nameservers and their networks, zone transfer, open recursion, CAA and DNSSEC (validated from trust anchors). "
        "Within one scan, an answer is reused for its TTL (five minutes at most) by every target and family asking the same server the same question; an unanswered question is not kept, and is sent again within its timeout (after 1 s, then 2 s more) before the facts that need it are called unknown.",
        FACTS,
    ),
)

_OPTIONS = frozenset({"resolvers", "dnssec_anchors", "nameserver_port"})


def validate_options(block: Any) -> None:
    """Check the inventory's ``dns:`` block when it loads (one line per fault, exit 2)."""
    from checks.dns.client import parse_server
    from checks.dns.dnssec import load_anchors

    if not isinstance(block, Mapping):
        raise ValueError("expected a mapping (resolvers, dnssec_anchors, nameserver_port)")
    extra = sorted(set(block) - _OPTIONS)
    if extra:
        raise ValueError(f"unknown field {extra[0]!r} (known: {', '.join(sorted(_OPTIONS))})")
    resolvers = block.get("resolvers", [])
    if not isinstance(resolvers, list) or not all(isinstance(r, str) for r in resolvers):
        raise ValueError("resolvers: expected a list of HOST[:PORT] strings")
    for resolver in resolvers:
        parse_server(resolver)
    anchors = block.get("dnssec_anchors")
    if anchors is not None:
        if not isinstance(anchors, str):
            raise ValueError("dnssec_anchors: expected a file name")
        load_anchors(anchors)
    port = block.get("nameserver_port", 53)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError("nameserver_port: expected a port number (1-65535)")


def _parse(split: SplitResult, raw: str) -> Target:
    from checks.dns.targets import parse

    return parse(split, raw)


def _collect(target: Target, ctx: CheckContext) -> Observation:
    from checks.dns.collect import collect

    return collect(target, ctx)


def _start(target: Target, ctx: CheckContext) -> Future[Observation]:
    from checks.dns.collect import start

    return start(target, ctx)


def _demo(ctx: DemoContext) -> DemoPart:
    from checks.dns.lab import demo_part

    return demo_part(ctx)


FAMILY = CheckFamily(
    name="dns",
    description="DNS zones: DNSSEC validated from trust anchors, nameservers, zone transfer, open recursion, CAA, SOA.",
    schemes=("dns",),
    resource_types=RESOURCE_TYPES,
    parse=_parse,
    collect=_collect,
    start=_start,
    validate_options=validate_options,
    scope_kind="domain",
    demo=_demo,
)

__all__ = ["FAMILY", "RESOURCE_TYPES", "validate_options"]
