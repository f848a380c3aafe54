"""The ``mail`` check family: how a domain authenticates its mail and protects its transport.

Target: ``mail://DOMAIN[?dkim=SEL1,SEL2]`` gives one ``mail.domain`` resource keyed
``mail://domain``. DKIM selectors also come from the inventory, per system or per domain
(``mail: {dkim: {"Messagerie": [s2025], example.gouv.fr: [relay]}}``). ``smtp_port`` and
``mta_sts_port`` move the derived SMTP targets and the MTA-STS policy host off 25 and 443,
for labs only.

What it observes, all through the dns family's client (DO bit, per-query timeout, TCP
after truncation, resolvers from ``--resolver`` or the inventory's ``dns: {resolvers}``):

- ``mx`` and the null MX of RFC 7505;
- SPF (RFC 7208): the record, the ``all`` that ends it, and the DNS-querying terms and
  void lookups counted over the whole include/redirect tree (§4.6.4), with every
  permerror in ``spf.errors`` (:mod:`checks.mail.spf`);
- DMARC (RFC 7489): policy, subdomain policy, pct, report URIs, and whether external
  report domains authorise the reports (§7.1) (:mod:`checks.mail.dmarc`);
- DKIM (RFC 6376, 8301, 8463): the declared selectors' keys, their type and size, and
  whether ``_domainkey`` exists at all (RFC 8020) (:mod:`checks.mail.dkim`);
- MTA-STS (RFC 8461): the TXT, then the policy fetched over HTTPS from
  ``mta-sts.<domain>`` with the TLS family's trust (system anchors plus ``--ca-file``),
  after the scope guard admitted that host, at the address it pinned, no redirect, the
  body bounded to 64 KiB; and TLS-RPT (RFC 8460) (:mod:`checks.mail.mtasts`);
- DANE (RFC 7672): TLSA at ``_25._tcp.<MX>``, usable only in a zone the dns family's
  validator proves secure from the trust anchors (:mod:`checks.mail.dane`).

Each MX host that the scope guard admits becomes the derived target ``smtp://MX:25``,
observed by the tls family's STARTTLS collector; its ``tls.endpoint`` resource comes back
in this domain's observation (key ``smtp://MX:25``, the same key an ``smtp://`` target
would have), so the TLS packs judge it. An MX outside the scope is listed in
``mx_out_of_scope`` and never contacted. Naming the same ``smtp://MX:25`` as a target of the
same scan is redundant: the engine then refuses the domain's observation (two results
for one key), so name the domain or the MX, not both.

Unknown is not absent: a question without an answer (timeout, SERVFAIL, a policy host that
does not answer, a policy host outside the scope) leaves its fact unknown with the reason,
and the rules reading it end ``error``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult

from audit.models import Observation, Target
from audit.plugins import CheckContext, CheckFamily
from checks.mail.docs import FACTS, RESOURCE_TYPES

if TYPE_CHECKING:
    from concurrent.futures import Future

    from audit.labkit import DemoContext, DemoPart

__all__ = ["FACTS", "FAMILY"]


def _parse(split: SplitResult, raw: str) -> Target:
    from checks.mail.targets import parse

    return parse(split, raw)


def _collect(target: Target, ctx: CheckContext) -> Observation:
    from checks.mail.collect import collect

    return collect(target, ctx)


def _start(target: Target, ctx: CheckContext) -> Future[Observation]:
    from checks.mail.collect import start

    return start(target, ctx)


def _validate_options(block: Any) -> None:
    from checks.mail.targets import validate_options

    validate_options(block)


def _demo(ctx: DemoContext) -> DemoPart:
    """This family's part of ``rempart demo``; the lab is imported only when it runs."""
    from checks.mail.lab import demo_part

    return demo_part(ctx)


def _resource_types() -> tuple[Any, ...]:
    """``mail.domain``, and ``tls.endpoint`` for the derived SMTP targets (the tls family's
    own documentation of it, so the fact catalogue stays one)."""
    from checks.tls import RESOURCE_TYPES as TLS_TYPES

    return (*RESOURCE_TYPES, *TLS_TYPES)


FAMILY = CheckFamily(
    name="mail",
    description="Mail domains: MX, SPF, DMARC, DKIM, MTA-STS, TLS-RPT, DANE; MX STARTTLS.",
    schemes=("mail",),
    resource_types=_resource_types(),
    parse=_parse,
    collect=_collect,
    start=_start,
    validate_options=_validate_options,
    scope_kind="domain",
    demo=_demo,
)
