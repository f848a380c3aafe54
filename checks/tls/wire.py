"""The one door to the TLS protocol libraries (cryptoparser, cryptodatahub).

Everything else in ``checks.tls`` speaks the small types below (:class:`Hello`,
:class:`Reply`, :class:`SuiteInfo`) and plain integers for codes, so the libraries can be
upgraded or replaced by touching this module only. cryptodatahub's registries and the
fixed ClientHello extensions cryptoparser composes are frozen in
:mod:`checks.tls.tables` (``python -m checks.tls.wire`` regenerates it); a scan reads
that table and never imports either library, whose import alone costs more CPU than
enumerating ten endpoints. Tests compare the table, every ClientHello assembled here
and every Certificate message read here with what the libraries produce.

A ClientHello built here is independent of the local OpenSSL: it may offer SSLv3,
export suites or groups the local library has never heard of, which is the point.
"""

from __future__ import annotations

import functools
import os
import struct
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

PROTOCOLS = ("SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3")
"""Protocol names as facts spell them, oldest first."""

_VERSION_CODES = {
    "SSLv3": 0x0300,
    "TLSv1.0": 0x0301,
    "TLSv1.1": 0x0302,
    "TLSv1.2": 0x0303,
    "TLSv1.3": 0x0304,
}
_CODE_VERSIONS = {code: name for name, code in _VERSION_CODES.items()}

_HRR_RANDOM = bytes.fromhex("cf21ad74e59a6111be1d8c021e65b891c2a211167abb8c5e079e09e2c8a8339c")
_HANDSHAKE, _ALERT = 0x16, 0x15
_SERVER_HELLO, _CERTIFICATE, _SKE, _HELLO_DONE, _CERT_STATUS = 0x02, 0x0B, 0x0C, 0x0E, 0x16
_EXT_EMS, _EXT_RENEGOTIATION, _EXT_SESSION_TICKET = 0x0017, 0xFF01, 0x0023
_EXT_HEARTBEAT = 0x000F
_HEARTBEAT_RECORD, _CHANGE_CIPHER_SPEC = 0x18, 0x14
_TLS13_SUITES = frozenset({0x1301, 0x1302, 0x1303, 0x1304, 0x1305, 0x00C6, 0x00C7})
_SCSV_CODES = frozenset({0x00FF, 0x5600})
_DEFLATE = 1
MAX_RECORD = 18 * 1024
"""Largest record we accept (2^14 plus expansion); anything larger is not TLS."""

GROUPS_TLS13 = (
    0x11EC,  # X25519MLKEM768
    0x11EB,  # SecP256r1MLKEM768
    0x11ED,  # SecP384r1MLKEM1024
    0x001D,  # x25519
    0x001E,  # x448
    0x0017,  # secp256r1
    0x0018,  # secp384r1
    0x0019,  # secp521r1
    0x001F,  # brainpoolP256r1tls13
    0x0020,  # brainpoolP384r1tls13
    0x0021,  # brainpoolP512r1tls13
    0x0100,  # ffdhe2048
    0x0101,  # ffdhe3072
    0x0102,  # ffdhe4096
    0x0103,  # ffdhe6144
    0x0104,  # ffdhe8192
)
"""Groups worth offering in TLS 1.3 (the server answers with a HelloRetryRequest)."""

GROUP_NAMES = {
    0x11EC: "X25519MLKEM768",
    0x11EB: "SecP256r1MLKEM768",
    0x11ED: "SecP384r1MLKEM1024",
    0x001D: "x25519",
    0x001E: "x448",
    0x0017: "secp256r1",
    0x0018: "secp384r1",
    0x0019: "secp521r1",
    0x001A: "brainpoolP256r1",
    0x001B: "brainpoolP384r1",
    0x001C: "brainpoolP512r1",
    0x001F: "brainpoolP256r1tls13",
    0x0020: "brainpoolP384r1tls13",
    0x0021: "brainpoolP512r1tls13",
    0x0100: "ffdhe2048",
    0x0101: "ffdhe3072",
    0x0102: "ffdhe4096",
    0x0103: "ffdhe6144",
    0x0104: "ffdhe8192",
    0x0015: "secp224r1",
    0x0016: "secp256k1",
    0x0013: "secp192r1",
}
"""IANA TLS Supported Groups names for the groups we report (others: ``0xNNNN``)."""

GROUPS_TLS12 = tuple(
    code for code in GROUP_NAMES if code < 0x0100 and code not in (0x1F, 0x20, 0x21)
)
"""Elliptic curves worth offering with ECDHE suites in TLS ≤ 1.2."""


@dataclass(frozen=True)
class Hello:
    """What one ClientHello offers; codes are IANA numbers."""

    version: str
    suites: tuple[int, ...]
    server_name: str | None = None
    groups: tuple[int, ...] = GROUPS_TLS12
    fallback_scsv: bool = False
    offer_compression: bool = False
    want_certificate: bool = False
    heartbeat: bool = False


@dataclass(frozen=True)
class Reply:
    """What the server's first flight said, reduced to the facts we use.

    ``kind`` is ``hello`` (a ServerHello), ``retry`` (a TLS 1.3 HelloRetryRequest),
    ``alert`` (a TLS alert, ``alert`` holds its code) or ``sslv2`` (an SSLv2
    SERVER-HELLO).
    """

    kind: str
    version: str | None = None
    suite: int | None = None
    group: int | None = None
    dh_bits: int | None = None
    compression: int = 0
    extensions: frozenset[int] = frozenset()
    certificates: tuple[bytes, ...] = ()
    ocsp_stapled: bool = False
    alert: int | None = None

    @property
    def is_accepted(self) -> bool:
        """The server agreed to go on with what we offered."""
        return self.kind in ("hello", "retry", "sslv2")

    @property
    def has_renegotiation_info(self) -> bool:
        """RFC 5746 secure renegotiation acknowledged."""
        return _EXT_RENEGOTIATION in self.extensions

    @property
    def has_extended_master_secret(self) -> bool:
        """RFC 7627 extended master secret acknowledged."""
        return _EXT_EMS in self.extensions

    @property
    def has_session_ticket(self) -> bool:
        """RFC 5077 session tickets offered by the server."""
        return _EXT_SESSION_TICKET in self.extensions

    @property
    def has_heartbeat(self) -> bool:
        """RFC 6520 heartbeat extension acknowledged."""
        return _EXT_HEARTBEAT in self.extensions

    @property
    def has_compression(self) -> bool:
        """The server chose a compression method other than null."""
        return self.compression != 0


class NotTls(Exception):
    """The peer answered with bytes that are not TLS (an HTTP or SSH banner, say)."""


@dataclass(frozen=True)
class SuiteInfo:
    """Registry facts about one cipher suite."""

    code: int
    name: str
    openssl_name: str | None
    kex: str
    auth: str
    cipher: str
    mode: str | None
    mac: str | None
    aead: bool
    forward_secret: bool
    cipher_bits: int | None = None
    tls13: bool = False
    tls12_only: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- libraries


_UNUSED_RECORDS = frozenset({"RootCertificateParams", "CertificateTransparencyLogParams"})
"""Registries cryptoparser imports and we never read: root certificates (trust is
cryptography's business here) and CT logs (used only to name the logs of SCTs, which
we count but do not parse)."""


@functools.cache
def _libs() -> Any:
    """Import cryptoparser once, without cryptodatahub's root-store enum.

    Only :func:`build_tables` and :func:`reference_client_hello` need the libraries;
    a scan reads the tables they produced. cryptoparser imports
    ``cryptodatahub.common.stores``, which builds an enum of every root certificate at
    import time; Python's enum then compares each new member with all earlier ones,
    parsing DER keys each time: 7 to 20 s of CPU per process. We never use that store
    (trust is decided by ``cryptography`` against the system store), so its records,
    and those of the CT log list, are withheld while the module loads.
    """
    if "cryptodatahub.common.stores" not in sys.modules:
        from cryptodatahub.common import types

        original = types.CryptoDataEnumBase.__dict__["get_json_records"]

        def records(cls: Any, param_class: Any) -> Any:
            if param_class.__name__ in _UNUSED_RECORDS:
                return {}
            return original.__func__(cls, param_class)

        types.CryptoDataEnumBase.get_json_records = classmethod(records)
        try:
            import cryptodatahub.common.stores  # noqa: F401
        finally:
            types.CryptoDataEnumBase.get_json_records = original
    from cryptodatahub.tls import algorithm
    from cryptoparser.tls import extension, record, subprotocol, version

    return _Libs(algorithm, extension, record, subprotocol, version)


@dataclass(frozen=True)
class _Libs:
    algorithm: Any
    extension: Any
    record: Any
    subprotocol: Any
    version: Any


# --------------------------------------------------------------------------- tables


def build_tables() -> dict[str, Any]:
    """What a scan needs from the registries, computed from cryptodatahub and cryptoparser.

    Importing the libraries costs about half a second of CPU per process, more than
    enumerating ten endpoints; so their answers are frozen in :mod:`checks.tls.tables`
    (``python -m checks.tls.wire`` rewrites it, and a test fails when an upgraded
    library would change a byte of it).
    """
    algorithm = _libs().algorithm
    suites = {item.value.code: _suite_row(item) for item in algorithm.TlsCipherSuite}
    extensions = {name: _reference_extension(name, None) for name in _FIXED_EXTENSIONS}
    return {
        "SUITES": dict(sorted(suites.items())),
        "EXTENSIONS": extensions,
        "SSLV2_HELLO": _reference_sslv2_hello()[:-16] + bytes(16),  # the challenge is fresh
    }


def _suite_row(item: Any) -> tuple[Any, ...]:
    value = item.value
    code = value.code
    kex = value.key_exchange
    is_tls13 = code in _TLS13_SUITES
    return (
        value.iana_name or item.name,
        value.openssl_name,
        "ECDHE" if is_tls13 else (kex.name if kex else "NULL"),
        "certificate"
        if is_tls13
        else (value.authentication.name if value.authentication else "NULL"),
        value.bulk_cipher.name if value.bulk_cipher else "NULL",
        value.block_cipher_mode.name if value.block_cipher_mode else None,
        value.mac.name if value.mac else None,
        bool(value.authenticated_encryption),
        is_tls13 or bool(kex and kex.value.forward_secret),
        _cipher_bits(value),
        str(value.initial_version.name) == "TLS1_2",
    )


def _cipher_bits(value: Any) -> int | None:
    cipher = value.bulk_cipher
    if cipher is None:
        return 0
    size = getattr(cipher.value, "key_size", None)
    return int(size) if isinstance(size, int) else None


def write_tables(path: str | None = None) -> str:
    """Render :func:`build_tables` as the source of :mod:`checks.tls.tables`."""
    tables = build_tables()
    lines = [
        "# ruff: noqa: E501",
        '"""Registry facts frozen from cryptodatahub and cryptoparser (generated, do not edit).',
        "",
        "Regenerate with ``python -m checks.tls.wire`` after upgrading either library.",
        "SUITES: code -> (IANA name, OpenSSL name, kex, auth, cipher, mode, mac, aead,",
        "forward secret, cipher bits, TLS 1.2 only). EXTENSIONS: ClientHello extensions",
        "whose bytes never vary. SSLV2_HELLO: an SSLv2 CLIENT-HELLO offering every kind.",
        '"""',
        "",
        "from typing import Any",
        "",
        "# fmt: off",
        "SUITES: dict[int, tuple[Any, ...]] = {",
        *(f"    0x{code:04X}: {row!r}," for code, row in tables["SUITES"].items()),
        "}",
        "",
        "EXTENSIONS: dict[str, bytes] = {",
        *(
            f"    {name!r}: bytes.fromhex({raw.hex()!r}),"
            for name, raw in tables["EXTENSIONS"].items()
        ),
        "}",
        "",
        f"SSLV2_HELLO = bytes.fromhex({tables['SSLV2_HELLO'].hex()!r})",
        "# fmt: on",
        "",
    ]
    source = "\n".join(lines)
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(source)
    return source


def _tables() -> Any:
    from checks.tls import tables

    return tables


# --------------------------------------------------------------------------- registry


@functools.cache
def suite_info(code: int) -> SuiteInfo:
    """Registry facts for a suite code (unknown codes get a neutral description)."""
    row = _tables().SUITES.get(code)
    if row is None:
        return SuiteInfo(
            code, f"0x{code:04X}", None, "unknown", "unknown", "unknown", None, None, False, False
        )
    name, openssl_name, kex, auth, cipher, mode, mac, aead, forward, bits, tls12_only = row
    return SuiteInfo(
        code=code,
        name=name,
        openssl_name=openssl_name,
        kex=kex,
        auth=auth,
        cipher=cipher,
        mode=mode,
        mac=mac,
        aead=aead,
        forward_secret=forward,
        cipher_bits=bits,
        tls13=code in _TLS13_SUITES,
        tls12_only=tls12_only,
    )


@functools.cache
def suites_for(protocol: str) -> tuple[int, ...]:
    """Every registered suite code worth offering for one protocol version."""
    codes = sorted(_tables().SUITES)
    if protocol == "TLSv1.3":
        return tuple(c for c in codes if c in _TLS13_SUITES)
    legacy = protocol in ("SSLv3", "TLSv1.0", "TLSv1.1")
    return tuple(
        c
        for c in codes
        if c not in _TLS13_SUITES
        and c not in _SCSV_CODES
        and c <= 0xFFFF
        and not (legacy and suite_info(c).tls12_only)
    )


def group_name(code: int) -> str:
    """IANA name of a named group."""
    return GROUP_NAMES.get(code, f"0x{code:04X}")


def version_code(protocol: str) -> int:
    """Wire code of a protocol name (``TLSv1.2`` → 0x0303)."""
    return _VERSION_CODES[protocol]


# --------------------------------------------------------------------------- compose


def client_hello(hello: Hello) -> bytes:
    """The bytes of one ClientHello record (or SSLv2 CLIENT-HELLO) for ``hello``.

    Assembled from :mod:`checks.tls.tables` (the fixed extensions cryptoparser composed)
    and a few length-prefixed fields; a test checks the result byte for byte against
    the hello cryptoparser composes for the same options. The part around the suite
    vector is cached per (version, name, groups, options): an enumeration sends
    hundreds of hellos that differ only in their suites.
    """
    if hello.version == "SSLv2":
        return _sslv2_client_hello()
    known = _tables().SUITES
    codes = [c for c in hello.suites if c in known]
    return _template(replace(hello, suites=())).build(struct.pack(f">{len(codes)}H", *codes))


@dataclass(frozen=True)
class _Template:
    """A ClientHello cut around its cipher-suite vector."""

    record_header: bytes  # content type and record version
    version: bytes  # client_version
    scsv_tail: bytes  # signalling suites appended to the vector
    rest: bytes  # compression methods and extensions
    session_id_length: int  # TLS 1.3 middlebox compatibility: a random legacy_session_id

    def build(self, suites: bytes) -> bytes:
        session_id = os.urandom(self.session_id_length)
        vector = suites + self.scsv_tail
        body = b"".join(
            (
                self.version,
                os.urandom(32),
                bytes((len(session_id),)),
                session_id,
                len(vector).to_bytes(2, "big"),
                vector,
                self.rest,
            )
        )
        message = b"\x01" + len(body).to_bytes(3, "big") + body
        return self.record_header + len(message).to_bytes(2, "big") + message


@functools.lru_cache(maxsize=512)
def _template(hello: Hello) -> _Template:
    legacy = min(hello.version, "TLSv1.2", key=_VERSION_CODES.__getitem__)
    record_version = 0x0300 if hello.version == "SSLv3" else 0x0301
    scsv = (b"\x56\x00" if hello.fallback_scsv else b"") + (
        b"" if hello.version == "TLSv1.3" else b"\x00\xff"
    )
    compressions = b"\x02\x01\x00" if hello.offer_compression else b"\x01\x00"
    return _Template(
        record_header=b"\x16" + record_version.to_bytes(2, "big"),
        version=_VERSION_CODES[legacy].to_bytes(2, "big"),
        scsv_tail=scsv,
        rest=compressions + _extension_block(hello),
        session_id_length=32 if hello.version == "TLSv1.3" else 0,
    )


def _extension_block(hello: Hello) -> bytes:
    """The extensions of a ClientHello, as bytes; SSLv3 gets none (it predates them)."""
    if hello.version == "SSLv3":
        return b""
    fixed = _tables().EXTENSIONS
    parts = [_server_name_extension(hello.server_name)] if hello.server_name else []
    parts.append(_groups_extension(hello.groups))
    parts += [fixed[name] for name in _COMMON_EXTENSIONS]
    if hello.version == "TLSv1.3":
        parts += [fixed[name] for name in _TLS13_EXTENSIONS]
    if hello.heartbeat:
        parts.append(_HEARTBEAT_EXTENSION)
    block = b"".join(parts)
    return len(block).to_bytes(2, "big") + block


def _server_name_extension(name: str) -> bytes:
    """RFC 6066 server_name with one host_name entry."""
    raw = name.encode("ascii")
    entry = b"\x00" + len(raw).to_bytes(2, "big") + raw
    data = len(entry).to_bytes(2, "big") + entry
    return b"\x00\x00" + len(data).to_bytes(2, "big") + data


def _groups_extension(groups: tuple[int, ...]) -> bytes:
    """RFC 8422/8446 supported_groups: any codes, including ones no registry names yet."""
    vector = struct.pack(f">{len(groups)}H", *groups)
    data = len(vector).to_bytes(2, "big") + vector
    return b"\x00\x0a" + len(data).to_bytes(2, "big") + data


_COMMON_EXTENSIONS = (
    "ec_point_formats",
    "signature_algorithms",
    "status_request",
    "extended_master_secret",
    "signed_certificate_timestamp",
    "session_ticket",
)
_TLS13_EXTENSIONS = ("supported_versions", "key_share", "psk_key_exchange_modes")
_FIXED_EXTENSIONS = _COMMON_EXTENSIONS + _TLS13_EXTENSIONS
_HEARTBEAT_EXTENSION = b"\x00\x0f\x00\x01\x01"
"""RFC 6520 heartbeat, mode peer_allowed_to_send."""


def _sslv2_client_hello() -> bytes:
    """The frozen SSLv2 CLIENT-HELLO with a fresh 16-byte challenge."""
    template: bytes = _tables().SSLV2_HELLO
    return template[:-16] + os.urandom(16)


# --------------------------------------------------------------------------- reference


def reference_client_hello(hello: Hello, random: bytes, session_id: bytes) -> bytes:
    """The ClientHello cryptoparser composes for ``hello`` (tests compare ours with it).

    ``groups`` must be codes the registry knows: cryptoparser composes enum members.
    cryptoparser has no heartbeat extension: ``hello.heartbeat`` is ignored here.
    """
    libs = _libs()
    known = {item.value.code: item for item in libs.algorithm.TlsCipherSuite}
    legacy = min(hello.version, "TLSv1.2", key=_VERSION_CODES.__getitem__)
    message = libs.subprotocol.TlsHandshakeClientHello(
        cipher_suites=[known[c] for c in hello.suites if c in known],
        protocol_version=_protocol_version(legacy),
        random=libs.subprotocol.TlsHandshakeHelloRandom(),
        session_id=session_id,
        compression_methods=_compressions(hello),
        extensions=_reference_extensions(hello),
        fallback_scsv=hello.fallback_scsv,
        empty_renegotiation_info_scsv=hello.version != "TLSv1.3",
    )
    record_version = "TLSv1.0" if hello.version != "SSLv3" else "SSLv3"
    composed = bytearray(
        libs.record.TlsRecord(
            fragment=message.compose(), protocol_version=_protocol_version(record_version)
        ).compose()
    )
    composed[11:43] = random  # the random is a time and 28 bytes in cryptoparser's model
    return bytes(composed)


def _reference_extensions(hello: Hello) -> list[Any]:
    if hello.version == "SSLv3":
        return []
    names = ["server_name"] if hello.server_name else []
    names += ["groups", *_COMMON_EXTENSIONS]
    names += list(_TLS13_EXTENSIONS) if hello.version == "TLSv1.3" else []
    value = {"server_name": hello.server_name, "groups": hello.groups}
    return [_reference_extension_object(name, value.get(name)) for name in names]


def _reference_extension(name: str, value: Any) -> bytes:
    return bytes(_reference_extension_object(name, value).compose())


def _reference_extension_object(name: str, value: Any) -> Any:
    ext = _libs().extension
    algorithm = _libs().algorithm
    curves = {item.value.code: item for item in algorithm.TlsNamedCurve}
    builders = {
        "server_name": lambda: ext.TlsExtensionServerNameClient(value),
        "groups": lambda: ext.TlsExtensionEllipticCurves([curves[code] for code in value]),
        "ec_point_formats": lambda: ext.TlsExtensionECPointFormats(
            [algorithm.TlsECPointFormat.UNCOMPRESSED]
        ),
        "signature_algorithms": lambda: ext.TlsExtensionSignatureAlgorithms(
            list(algorithm.TlsSignatureAndHashAlgorithm)
        ),
        "status_request": ext.TlsExtensionCertificateStatusRequestClient,
        "extended_master_secret": ext.TlsExtensionExtendedMasterSecret,
        "signed_certificate_timestamp": ext.TlsExtensionSignedCertificateTimestampClient,
        "session_ticket": ext.TlsExtensionSessionTicket,
        "supported_versions": lambda: ext.TlsExtensionSupportedVersionsClient(
            [_protocol_version("TLSv1.3")]
        ),
        "key_share": lambda: ext.TlsExtensionKeyShareClient([]),
        "psk_key_exchange_modes": lambda: ext.TlsExtensionPskKeyExchangeModes(
            [algorithm.TlsPskKeyExchangeMode.PSK_DH_KE]
        ),
    }
    return builders[name]()


def _protocol_version(protocol: str) -> Any:
    libs = _libs()
    names = {
        "SSLv3": "SSL3",
        "TLSv1.0": "TLS1",
        "TLSv1.1": "TLS1_1",
        "TLSv1.2": "TLS1_2",
        "TLSv1.3": "TLS1_3",
    }
    return libs.version.TlsProtocolVersion(libs.version.TlsVersion[names[protocol]])


def _compressions(hello: Hello) -> list[Any]:
    method = _libs().algorithm.TlsCompressionMethod
    if hello.offer_compression:
        return [method.DEFLATE, method.NULL]
    return [method.NULL]


def _reference_sslv2_hello() -> bytes:
    libs = _libs()
    message = libs.subprotocol.SslHandshakeClientHello(
        cipher_kinds=list(libs.algorithm.SslCipherKind)
    )
    return bytes(libs.record.SslRecord(message=message).compose())


def reference_certificates(message: bytes) -> tuple[bytes, ...]:
    """cryptoparser's reading of a Certificate message (tests compare ours with it)."""
    parsed = _libs().subprotocol.TlsHandshakeServerCertificate.parse_exact_size(message)
    return tuple(bytes(c.certificate) for c in parsed.certificate_chain)


# --------------------------------------------------------------------------- heartbeat


HEARTBEAT_PAYLOAD = 16
HEARTBEAT_CLAIMED = 48
"""The request carries 16 payload bytes and 16 of padding but claims 48: a correct
server discards it (RFC 6520 §4), a Heartbleed one answers with the 16 bytes of its
memory that follow our record. We never read that answer beyond its record header."""


def heartbleed_probe(protocol: str) -> bytes:
    """A heartbeat request claiming more payload than it carries, then a ChangeCipherSpec.

    Sent in clear right after ServerHelloDone, as vulnerable OpenSSL versions process
    heartbeats before the handshake ends. The premature ChangeCipherSpec makes every
    other server answer at once with an unexpected_message alert, so a safe server
    costs one round trip, not a timeout; records are processed in order, so a
    heartbeat response would come first.
    """
    version = _VERSION_CODES[protocol].to_bytes(2, "big")
    message = (
        b"\x01"
        + HEARTBEAT_CLAIMED.to_bytes(2, "big")
        + os.urandom(HEARTBEAT_PAYLOAD)
        + os.urandom(16)
    )
    heartbeat = bytes((_HEARTBEAT_RECORD,)) + version + len(message).to_bytes(2, "big") + message
    return heartbeat + bytes((_CHANGE_CIPHER_SPEC,)) + version + b"\x00\x01\x01"


def next_record_type(data: bytes) -> int | None:
    """Content type of the record that starts ``data`` (None until its header is in).

    Only the 5-byte header is looked at: the body of a heartbeat response would be
    the server's memory, and it is neither read nor kept.
    """
    if len(data) < 5:
        return None
    if data[1] != 3:
        raise NotTls(_describe(data[:16]))
    return data[0]


HEARTBEAT_RECORD = _HEARTBEAT_RECORD
ALERT_RECORD = _ALERT


# --------------------------------------------------------------------------- parse


class FlightReader:
    """Reassemble the server's first flight from records until we know enough.

    Feed it bytes as they arrive; :attr:`done` turns true once the reply is decided
    (a ServerHello when the certificate is not wanted; ServerHelloDone otherwise; any
    alert; a HelloRetryRequest; a TLS 1.3 ServerHello, after which all is encrypted).
    Only complete records are read and every length is bounded, so a hostile peer
    cannot make us read or buffer more than one flight.
    """

    def __init__(self, hello: Hello, max_bytes: int = 256 * 1024) -> None:
        self.hello = hello
        self.max_bytes = max_bytes
        self._buffer = bytearray()
        self._handshake = bytearray()
        self._received = 0
        self._messages: list[tuple[int, bytes]] = []
        self.reply: Reply | None = None

    @property
    def done(self) -> bool:
        """True once :attr:`reply` is set."""
        return self.reply is not None

    def feed(self, data: bytes) -> None:
        """Add received bytes; may set :attr:`reply` or raise :class:`NotTls`."""
        self._received += len(data)
        if self._received > self.max_bytes:
            raise NotTls("first flight larger than any sane server sends")
        self._buffer += data
        if self.hello.version == "SSLv2":
            self._feed_sslv2()
            return
        while not self.done and len(self._buffer) >= 5:
            if not self._take_record():
                return

    def _take_record(self) -> bool:
        content_type, major, length = (
            self._buffer[0],
            self._buffer[1],
            int.from_bytes(self._buffer[3:5]),
        )
        if (
            content_type not in (0x14, _ALERT, _HANDSHAKE, 0x17)
            or major != 3
            or length > MAX_RECORD
        ):
            raise NotTls(_describe(bytes(self._buffer[:16])))
        if len(self._buffer) < 5 + length:
            return False
        fragment = bytes(self._buffer[5 : 5 + length])
        del self._buffer[: 5 + length]
        if content_type == _ALERT:
            self.reply = Reply("alert", alert=fragment[1] if len(fragment) > 1 else None)
        elif content_type == _HANDSHAKE:
            self._handshake += fragment
            self._take_messages()
        return True

    def _take_messages(self) -> None:
        while len(self._handshake) >= 4 and not self.done:
            length = int.from_bytes(self._handshake[1:4])
            if len(self._handshake) < 4 + length:
                return
            message = bytes(self._handshake[: 4 + length])
            del self._handshake[: 4 + length]
            self._messages.append((message[0], message))
            self._check_done(message[0])

    def _check_done(self, kind: int) -> None:
        if kind == _SERVER_HELLO:
            first = self._server_hello()
            if (
                first.kind == "retry"
                or first.version == "TLSv1.3"
                or not self.hello.want_certificate
            ):
                self.reply = first
        elif kind == _HELLO_DONE:
            self.reply = self._full_reply()

    def _server_hello(self) -> Reply:
        raw = next((m for k, m in self._messages if k == _SERVER_HELLO), None)
        if raw is None:  # a ServerHelloDone with no ServerHello before it
            raise NotTls("ServerHelloDone before any ServerHello")
        return parse_server_hello(raw)

    def _full_reply(self) -> Reply:
        reply = self._server_hello()
        certificates: tuple[bytes, ...] = ()
        group, dh_bits = reply.group, None
        for kind, message in self._messages:
            if kind == _CERTIFICATE:
                certificates = parse_certificates(message)
            elif kind == _SKE and reply.suite is not None:
                group, dh_bits = parse_key_exchange(message, suite_info(reply.suite).kex)
        stapled = any(kind == _CERT_STATUS for kind, _ in self._messages)
        return Reply(
            "hello",
            reply.version,
            reply.suite,
            group,
            dh_bits,
            reply.compression,
            reply.extensions,
            certificates,
            stapled,
        )

    def _feed_sslv2(self) -> None:
        if len(self._buffer) < 3:
            return
        if not self._buffer[0] & 0x80:
            if self._buffer[0] in (_ALERT, _HANDSHAKE):
                self.reply = Reply("alert")
                return
            raise NotTls(_describe(bytes(self._buffer[:16])))
        length = ((self._buffer[0] & 0x7F) << 8) | self._buffer[1]
        if len(self._buffer) < 2 + length:
            return
        message_type = self._buffer[2]
        self.reply = Reply("sslv2", version="SSLv2") if message_type == 4 else Reply("alert")


def _describe(data: bytes) -> str:
    printable = data.decode("ascii", "replace")
    if printable.isprintable():
        return f"not TLS: the server sent {printable!r}"
    return f"not TLS: the server sent {data.hex()}"


def parse_server_hello(message: bytes) -> Reply:
    """Parse a ServerHello (or HelloRetryRequest) handshake message.

    Read by hand on purpose: it is five fixed fields and a list of extensions of
    which we need three, and cryptoparser's generic parser takes about 8 ms per
    message, more than the round trip it describes. Every length is checked.
    """
    try:
        version, random_bytes, suite, compression, extensions = _server_hello_fields(message[4:])
    except (IndexError, ValueError):
        raise NotTls("malformed ServerHello") from None
    supported = extensions.get(0x002B)
    if supported is not None and len(supported) == 2:
        version = int.from_bytes(supported, "big")
    key_share = extensions.get(0x0033)
    group = int.from_bytes(key_share[:2], "big") if key_share and len(key_share) >= 2 else None
    return Reply(
        "retry" if random_bytes == _HRR_RANDOM else "hello",
        version=_CODE_VERSIONS.get(version),
        suite=suite,
        group=group,
        compression=compression,
        extensions=frozenset(extensions),
    )


def _server_hello_fields(body: bytes) -> tuple[int, bytes, int, int, dict[int, bytes]]:
    version, random_bytes = int.from_bytes(body[0:2], "big"), body[2:34]
    position = 35 + body[34]
    if len(body) < position + 3:
        raise ValueError("truncated ServerHello")
    suite = int.from_bytes(body[position : position + 2], "big")
    compression = body[position + 2]
    return version, random_bytes, suite, compression, _hello_extensions(body, position + 3)


def _hello_extensions(body: bytes, position: int) -> dict[int, bytes]:
    extensions: dict[int, bytes] = {}
    if position == len(body):
        return extensions
    end = position + 2 + int.from_bytes(body[position : position + 2], "big")
    if end != len(body):
        raise ValueError("extension block length mismatch")
    position += 2
    while position < end:
        kind = int.from_bytes(body[position : position + 2], "big")
        length = int.from_bytes(body[position + 2 : position + 4], "big")
        if position + 4 + length > end:
            raise ValueError("truncated extension")
        extensions[kind] = body[position + 4 : position + 4 + length]
        position += 4 + length
    return extensions


def parse_certificates(message: bytes) -> tuple[bytes, ...]:
    """DER certificates of a TLS ≤ 1.2 Certificate message, leaf first (none if malformed).

    Three-byte lengths all the way down; each is checked against what is left, and a
    test compares the result with cryptoparser's parser.
    """
    body = message[4:]
    if len(body) < 3 or int.from_bytes(body[:3], "big") != len(body) - 3:
        return ()
    certificates: list[bytes] = []
    position = 3
    while position < len(body):
        if position + 3 > len(body):
            return ()
        length = int.from_bytes(body[position : position + 3], "big")
        position += 3
        if length == 0 or position + length > len(body):
            return ()
        certificates.append(bytes(body[position : position + length]))
        position += length
    return tuple(certificates)


def parse_key_exchange(message: bytes, kex: str) -> tuple[int | None, int | None]:
    """(named group, DH prime bits) from a ServerKeyExchange, by the suite's kex."""
    body = message[4:]
    if kex == "ECDHE" and len(body) >= 3 and body[0] == 3:
        return int.from_bytes(body[1:3]), None
    if kex == "DHE" and len(body) >= 2:
        p_length = int.from_bytes(body[0:2])
        prime = body[2 : 2 + p_length]
        return None, int.from_bytes(prime).bit_length() if prime else None
    return None, None


def names(codes: Iterable[int]) -> list[str]:
    """IANA names of suite codes, in the order given."""
    return [suite_info(c).name for c in codes]


if __name__ == "__main__":
    from pathlib import Path

    write_tables(str(Path(__file__).with_name("tables.py")))
