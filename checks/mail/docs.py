# ruff: noqa: E501  (the fact table reads best one fact a line)
"""The documented facts of ``mail.domain``: the contract policies rely on."""

from __future__ import annotations

from audit.plugins import FactDoc, ResourceTypeDoc

RESOURCE_TYPE = "mail.domain"

FACTS = (
    FactDoc("domain", "string", "The mail domain, lower-case, no trailing dot."),
    FactDoc(
        "mx",
        "list[string]",
        "MX hosts by preference (lowest first), the null MX `.` excluded; empty when the domain publishes no MX, or only the null MX. Unknown when the resolver did not answer.",
    ),
    FactDoc("mx_records", "list[object]", "Every MX record as {preference, host}."),
    FactDoc(
        "null_mx",
        "bool",
        "The domain publishes the null MX of RFC 7505 (a single `0 .` record): it accepts no mail.",
    ),
    FactDoc(
        "mx_out_of_scope",
        "list[string]",
        "MX hosts the scope guard refused: listed, never contacted (no STARTTLS findings for them).",
    ),
    FactDoc(
        "smtp_targets",
        "list[string]",
        "Keys of the derived `smtp://MX:25` targets the scope admitted; each is judged by the tls family's packs as a `tls.endpoint` resource returned with this domain.",
    ),
    FactDoc(
        "spf",
        "object",
        "SPF (RFC 7208) as found at the domain. Unknown when a lookup the evaluation needed got no answer (RFC 7208's temperror).",
    ),
    FactDoc(
        "spf.present",
        "bool",
        "Exactly one `v=spf1` TXT record is published (several: false, with an error).",
    ),
    FactDoc("spf.record", "string|null", "The record, as published."),
    FactDoc(
        "spf.all",
        "string|null",
        "The `all` mechanism that ends evaluation: `-all`, `~all`, `?all` or `+all` (followed through `redirect=` when the record has none); null when there is none.",
    ),
    FactDoc(
        "spf.lookups",
        "integer",
        "DNS-querying terms (include, a, mx, ptr, exists, and redirect when it applies) over the whole tree, recursively (RFC 7208 §4.6.4; the limit is 10). Counted up to 40, where the walk stops.",
    ),
    FactDoc(
        "spf.void_lookups",
        "integer",
        "Lookups that returned NXDOMAIN or no records (RFC 7208 §4.6.4; the limit is 2).",
    ),
    FactDoc(
        "spf.errors",
        "list[string]",
        "What makes the record a permerror: several records, syntax, an include without SPF, a loop, the lookup or void limits exceeded. Empty when none.",
    ),
    FactDoc("spf.includes", "list[string]", "Domains reached through `include:`, in walk order."),
    FactDoc(
        "dmarc",
        "object",
        "DMARC (RFC 7489) at `_dmarc.<domain>` (no organisational-domain fallback). Unknown when the resolver did not answer.",
    ),
    FactDoc("dmarc.present", "bool", "Exactly one `v=DMARC1` record is published."),
    FactDoc("dmarc.record", "string|null", "The record, as published."),
    FactDoc(
        "dmarc.policy",
        "string|null",
        "`p=`: none, quarantine or reject (null when missing or invalid).",
    ),
    FactDoc("dmarc.subdomain_policy", "string|null", "`sp=`, or the `p=` value when sp is absent."),
    FactDoc("dmarc.pct", "integer|null", "`pct=` (100 when absent; null when invalid)."),
    FactDoc("dmarc.rua", "list[string]", "Aggregate report URIs (`rua=`)."),
    FactDoc("dmarc.ruf", "list[string]", "Failure report URIs (`ruf=`)."),
    FactDoc(
        "dmarc.external_rua_authorized",
        "bool|null",
        "Every `rua` mailbox outside the domain (neither the domain, a subdomain nor a parent) is authorised by `<domain>._report._dmarc.<its domain>` TXT `v=DMARC1` (RFC 7489 §7.1); true when none is external, null without a record.",
    ),
    FactDoc(
        "dmarc.external_rua",
        "list[object]",
        "Each external report domain as {domain, authorized}.",
    ),
    FactDoc(
        "dmarc.errors",
        "list[string]",
        "Faults of the record (missing or invalid tags, several records).",
    ),
    FactDoc(
        "dkim",
        "object",
        "DKIM keys of the declared selectors (the target's `?dkim=` and the inventory's `mail: {dkim: {SYSTEM or DOMAIN: [...]}}`). Unknown when the resolver did not answer.",
    ),
    FactDoc(
        "dkim.domainkey_node",
        "bool",
        "`_domainkey.<domain>` exists (NOERROR, RFC 8020), false on NXDOMAIN: then no selector can exist below it.",
    ),
    FactDoc(
        "dkim.selectors",
        "map[string, object]",
        "Per declared selector: `present` (one key record with a usable `p=`), `key_type` (RSA or Ed25519), `key_bits`, `testing` (t=y), `revoked` (empty p=) and `error` when the record is unusable.",
    ),
    FactDoc(
        "mta_sts",
        "object",
        "MTA-STS (RFC 8461). Unknown when the resolver did not answer, when the policy host did not answer (timeout, refused, reset), or when the scope refused the policy host.",
    ),
    FactDoc("mta_sts.present", "bool", "One valid `v=STSv1; id=...` TXT at `_mta-sts.<domain>`."),
    FactDoc("mta_sts.id", "string|null", "The policy id of the TXT record."),
    FactDoc(
        "mta_sts.txt_error",
        "string|null",
        "Why the `_mta-sts` TXT is not valid (several STSv1 records, a missing or malformed id); null when valid or absent.",
    ),
    FactDoc(
        "mta_sts.mode",
        "string|null",
        "`enforce`, `testing` or `none` from the policy fetched over HTTPS at `mta-sts.<domain>/.well-known/mta-sts.txt` (system anchors plus --ca-file); null when there is no TXT or the policy is not valid (see policy_error).",
    ),
    FactDoc("mta_sts.max_age", "integer|null", "The policy's max_age, in seconds."),
    FactDoc("mta_sts.mx_patterns", "list[string]", "The policy's `mx:` patterns."),
    FactDoc(
        "mta_sts.mx_covered",
        "bool|null",
        "Every MX host matches an `mx:` pattern of the policy (RFC 8461 §4.1); null without a valid policy.",
    ),
    FactDoc(
        "mta_sts.policy_error",
        "string|null",
        "Why the served policy is not one a sender would use (certificate refused, HTTP status, redirect, parse error); null when valid or not fetched.",
    ),
    FactDoc("tls_rpt", "object", "SMTP TLS Reporting (RFC 8460) at `_smtp._tls.<domain>`."),
    FactDoc("tls_rpt.present", "bool", "One `v=TLSRPTv1` record with a `rua=`."),
    FactDoc("tls_rpt.rua", "list[string]", "Report destinations."),
    FactDoc(
        "dane",
        "object",
        "DANE for SMTP (RFC 7672). Unknown when the resolver did not answer, or when DNSSEC could not be validated.",
    ),
    FactDoc(
        "dane.hosts",
        "list[object]",
        "Per MX host: {host, dnssec (secure, insecure, bogus, indeterminate: the MX host name's own status), tlsa_present, usable (DANE-TA/DANE-EE records of a known selector and matching type, in a secure zone), records}.",
    ),
    FactDoc("dane.secure_mx", "integer", "MX hosts whose name is DNSSEC-secure."),
    FactDoc(
        "dane.usable_mx", "integer", "Secure MX hosts with a usable TLSA record at `_25._tcp`."
    ),
)

RESOURCE_TYPES = (
    ResourceTypeDoc(
        RESOURCE_TYPE,
        "A mail domain's authentication and transport security: key mail://domain.",
        FACTS,
    ),
)
