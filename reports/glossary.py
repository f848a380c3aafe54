"""The glossary of the committee report: only the terms the report actually uses.

A member of the commission who is not a technician meets TLS, HSTS or a security group
in the action plan; the glossary explains each in one sentence. A term is listed when
its pattern occurs in the rendered report (in either language's spelling), so the
glossary never grows into a dictionary of things the reader will not meet.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

from reports.wording import N_, gettext_of


@dataclass(frozen=True)
class Term:
    """A term, how to spot it in the report, and its definition (a catalog message)."""

    name: str  # msgid: the English spelling
    pattern: str
    definition: str  # msgid


TERMS: tuple[Term, ...] = (
    Term(
        N_("TLS"),
        r"\bTLS\b",
        N_(
            "Transport Layer Security: the protocol that encrypts and authenticates a connection "
            "(the padlock of HTTPS); versions before 1.2 are obsolete."
        ),
    ),
    Term(
        N_("SSL"),
        r"\bSSL(v[23])?\b",
        N_("The predecessor of TLS, broken and withdrawn; a server must no longer accept it."),
    ),
    Term(
        N_("HSTS"),
        r"\bHSTS\b|Strict-Transport-Security",
        N_(
            "HTTP Strict Transport Security: a header by which a web site tells browsers to reach"
            " it over HTTPS only."
        ),
    ),
    Term(
        N_("certificate"),
        r"\bcertifica(te|t)s?\b",
        N_(
            "An electronic document, signed by a certification authority, that binds a server's "
            "name to its public key; it expires and must be renewed."
        ),
    ),
    Term(
        N_("cipher suite"),
        r"\bsuites?\b",
        N_(
            "The set of algorithms (key exchange, encryption, integrity) a TLS connection uses; "
            "weak suites weaken the whole connection."
        ),
    ),
    Term(
        N_("AEAD encryption"),
        r"\bAEAD\b|AES-GCM|ChaCha20",
        N_(
            "Authenticated encryption (AES-GCM, ChaCha20-Poly1305): it protects both the secrecy "
            "and the integrity of the data; the modes ANSSI recommends."
        ),
    ),
    Term(
        N_("ECDHE"),
        r"\bECDHE\b|\bDHE\b",
        N_(
            "Ephemeral Diffie-Hellman key exchange: a fresh key for every connection, so a stolen"
            " server key does not decrypt past traffic (forward secrecy)."
        ),
    ),
    Term(
        N_("security group"),
        r"security group|groupe de sécurité|groupes de sécurité",
        N_(
            "A cloud firewall attached to servers: the list of addresses and ports allowed to "
            "reach them."
        ),
    ),
    Term(
        N_("CIDR"),
        r"\bCIDR\b|\b\d{1,3}(\.\d{1,3}){3}/\d{1,2}\b",
        N_(
            "A block of IP addresses written address/length (203.0.113.0/24); 0.0.0.0/0 means the"
            " whole Internet."
        ),
    ),
    Term(
        N_("MFA"),
        r"\bMFA\b|multi-?factor|multifacteur",
        N_(
            "Multi-factor authentication: a password plus a second proof (a code, a security "
            "key), so a stolen password is not enough."
        ),
    ),
    Term(
        N_("root account"),
        r"\broot\b",
        N_(
            "The cloud account's original identity, with every right and no possible restriction;"
            " it should be locked away and never used day to day."
        ),
    ),
    Term(
        N_("IAM"),
        r"\bIAM\b",
        N_(
            "Identity and Access Management: the cloud service that defines users, roles and "
            "their permissions."
        ),
    ),
    Term(
        N_("CloudTrail"),
        r"CloudTrail",
        N_(
            "The AWS journal of every action taken on the account: the evidence needed after an "
            "incident."
        ),
    ),
    Term(
        N_("CloudWatch"),
        r"CloudWatch",
        N_("The AWS monitoring service; its alarms warn when a sensitive change is made."),
    ),
    Term(
        N_("KMS"),
        r"\bKMS\b",
        N_("Key Management Service: the AWS service that keeps encryption keys and rotates them."),
    ),
    Term(
        N_("S3 bucket"),
        r"\bS3\b",
        N_(
            "A container of files in AWS storage; it must not be readable from the Internet "
            "unless intended."
        ),
    ),
    Term(
        N_("RDS"),
        r"\bRDS\b",
        N_("AWS managed databases; a database must not be reachable from the Internet."),
    ),
    Term(
        N_("EBS volume"), r"\bEBS\b", N_("A virtual disk of an AWS server; it should be encrypted.")
    ),
    Term(
        N_("VPC"),
        r"\bVPC\b",
        N_(
            "Virtual Private Cloud: an isolated network in AWS, with its own addresses, routes "
            "and filters."
        ),
    ),
    Term(
        N_("network ACL"),
        r"\bACL\b",
        N_("Access control list: address and port filtering applied to a whole network segment."),
    ),
    Term(
        N_("STARTTLS"),
        r"STARTTLS",
        N_("The command that switches a mail connection (SMTP, IMAP, POP3) to encrypted TLS."),
    ),
    Term(
        N_("SMTP"),
        r"\bSMTP\b",
        N_("The protocol by which mail servers send messages to each other."),
    ),
    Term(
        N_("port"),
        r"\bports?\b",
        N_(
            "A numbered entry point of a server on the network (443 for HTTPS); each open port is"
            " a door to watch."
        ),
    ),
    Term(
        N_("SLA"),
        r"\bSLA\b|délai de correction|délais de correction",
        N_(
            "The time allowed to fix a non-compliance, counted from its first detection, by "
            "severity."
        ),
    ),
    Term(
        N_("security index"),
        r"security index|indice de sécurité",
        N_("A mark from 0 to 5 that weighs the failures by severity; the formula is in the annex."),
    ),
    Term(
        N_("coverage"),
        r"\bcoverage\b|\bcouverture\b",
        N_(
            "The share of the applicable checks that could actually be verified; below the "
            "threshold no index is given."
        ),
    ),
    Term(
        N_("homologation"),
        r"homologation",
        N_(
            "The formal decision by which an authority accepts the residual risks of an "
            "information system and allows it to operate."
        ),
    ),
    Term(
        N_("NIS2"),
        r"NIS ?2",
        N_(
            "The European directive (EU) 2022/2555 on the security of networks and information "
            "systems; its article 21(2) lists the measures required."
        ),
    ),
    Term(
        N_("ARN"),
        r"\bARN\b|arn:aws",
        N_("Amazon Resource Name: the unique identifier of an AWS resource or identity."),
    ),
)


def used_terms(text: str, lang: str) -> list[tuple[str, str]]:
    """``(term, definition)`` in the reader's language for each term found in ``text``,
    sorted as the reader's dictionary would."""
    tr: Callable[[str], str] = gettext_of(lang)
    found = [(tr(t.name), tr(t.definition)) for t in TERMS if re.search(t.pattern, text)]
    return sorted(found, key=lambda pair: pair[0].casefold())


_TAG = re.compile(r"<[^>]+>")
_STYLE = re.compile(r"<style>.*?</style>", re.S)


def visible_text(page: str) -> str:
    """The text of an HTML page a reader sees (tags and the style sheet removed)."""
    return html.unescape(_TAG.sub(" ", _STYLE.sub(" ", page)))
