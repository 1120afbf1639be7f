"""DANE TLSA records (RFC 6698, RFC 7671, RFC 7672 for SMTP): computing, parsing, matching, rollover.

Pure functions over `cryptography` certificates and plain values; no I/O.
"""

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from stspolicy.policies.rules import mx_pattern_matches

USAGES = {0: "PKIX-TA", 1: "PKIX-EE", 2: "DANE-TA", 3: "DANE-EE"}
SELECTORS = {0: "Cert", 1: "SPKI"}
MATCHING_TYPES = {0: "Full", 1: "SHA2-256", 2: "SHA2-512"}
DIGEST_LENGTHS = {1: 32, 2: 64}
_HEX = re.compile(r"^[0-9A-Fa-f]*$")


class TlsaError(ValueError):
    """TLSA data that does not follow RFC 6698 section 2.2."""


class PemError(ValueError):
    """Input that holds no usable PEM certificate or key; the message says what was expected."""


@dataclass(frozen=True)
class TlsaRecord:
    usage: int
    selector: int
    matching_type: int
    data: bytes

    def __str__(self) -> str:
        """Presentation form with lower-case hex, as RFC 8460 reports carry it."""
        return f"{self.usage} {self.selector} {self.matching_type} {self.data.hex()}"


def tlsa_name(host: str, port: int = 25) -> str:
    """The TLSA owner name of an SMTP server: `_25._tcp.<host>` (RFC 6698 section 3, RFC 7672)."""
    return f"_{port}._tcp.{host.rstrip('.').lower()}"


def parse_tlsa(text: str) -> TlsaRecord:
    """Parse `usage selector matching-type hex`; hex may hold whitespace and any case (RFC 6698 section 2.2)."""
    parts = text.split()
    if len(parts) < 4:
        raise TlsaError(f"invalid TLSA record {text!r}: needs usage, selector, matching type and data")
    try:
        usage, selector, matching_type = (int(part) for part in parts[:3])
    except ValueError:
        raise TlsaError(f"invalid TLSA record {text!r}: usage, selector and matching type are numbers") from None
    if not all(0 <= field <= 255 for field in (usage, selector, matching_type)):
        raise TlsaError(f"invalid TLSA record {text!r}: fields are 0..255")
    hex_data = "".join(parts[3:])
    if not _HEX.match(hex_data) or len(hex_data) % 2:
        raise TlsaError(f"invalid TLSA record {text!r}: the data is not an even number of hex digits")
    data = bytes.fromhex(hex_data)
    expected = DIGEST_LENGTHS.get(matching_type)
    if expected and len(data) != expected:
        raise TlsaError(
            f"invalid TLSA record {text!r}: {MATCHING_TYPES[matching_type]} data is {expected} bytes, not {len(data)}"
        )
    return TlsaRecord(usage, selector, matching_type, data)


def parse_tlsa_records(texts) -> list[TlsaRecord]:
    """The records among `texts` that parse; the others cannot match anything."""
    records = []
    for text in texts:
        try:
            records.append(parse_tlsa(text))
        except TlsaError:
            continue
    return records


def unusable_reason(record: TlsaRecord) -> str | None:
    """Why an SMTP client ignores `record` (RFC 7672 section 3.1.3), or None if it is usable."""
    if record.usage in (0, 1):
        return (f"usage {record.usage} ({USAGES[record.usage]}) is unusable for SMTP: "
                "publish DANE-EE(3) or DANE-TA(2) (RFC 7672 section 3.1.3)")
    if record.usage not in USAGES:
        return f"unknown usage {record.usage}"
    if record.selector not in SELECTORS:
        return f"unknown selector {record.selector}"
    if record.matching_type not in MATCHING_TYPES:
        return f"unknown matching type {record.matching_type}"
    return None


def selected_bytes(certificate: x509.Certificate, selector: int) -> bytes:
    """The certificate's DER (selector 0) or its SubjectPublicKeyInfo's DER (selector 1)."""
    if selector == 0:
        return certificate.public_bytes(serialization.Encoding.DER)
    if selector == 1:
        return spki_der(certificate.public_key())
    raise TlsaError(f"unknown selector {selector}")


def spki_der(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def associate(content: bytes, matching_type: int) -> bytes:
    if matching_type == 0:
        return content
    if matching_type == 1:
        return hashlib.sha256(content).digest()
    if matching_type == 2:
        return hashlib.sha512(content).digest()
    raise TlsaError(f"unknown matching type {matching_type}")


def tlsa_record(certificate: x509.Certificate, usage: int, selector: int = 1, matching_type: int = 1) -> TlsaRecord:
    return TlsaRecord(usage, selector, matching_type, associate(selected_bytes(certificate, selector), matching_type))


def key_record(public_key, usage: int = 3, matching_type: int = 1) -> TlsaRecord:
    """The `usage 1 matching_type` record of a key alone: a next key can be published before its certificate."""
    return TlsaRecord(usage, 1, matching_type, associate(spki_der(public_key), matching_type))


def recommended_records(leaf: x509.Certificate, issuer: x509.Certificate | None = None) -> list[TlsaRecord]:
    """`3 1 1` for the server's key and, given its issuer, `2 1 1` (RFC 7672 section 3.1)."""
    records = [tlsa_record(leaf, 3)]
    if issuer is not None:
        records.append(tlsa_record(issuer, 2))
    return records


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """The PEM certificates in `data`, in their order (a server certificate, then its chain)."""
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        raise PemError("no PEM certificate (-----BEGIN CERTIFICATE-----)") from None


def load_public_key(data: bytes):
    """The public key in `data`: of a PEM certificate, a public key, or a private key without a password."""
    if b"-----BEGIN CERTIFICATE-----" in data:
        return load_certificates(data)[0].public_key()
    try:
        return serialization.load_pem_public_key(data)
    except ValueError:
        pass
    try:
        return serialization.load_pem_private_key(data, password=None).public_key()
    except (ValueError, TypeError):
        raise PemError("no PEM key (a certificate, a public key, or a private key without a password)") from None


def records_for_certificate(chain: list[x509.Certificate], next_key=None) -> list[tuple[TlsaRecord, str]]:
    """The records to publish for a server certificate (`chain[0]`) and what each is for.

    `3 1 1` of its key, `2 1 1` of its issuer when the chain has one, and `3 1 1` of a
    next key, published before a renewal that changes the key.
    """
    records = recommended_records(chain[0], chain[1] if len(chain) > 1 else None)
    rows = [(records[0], f"DANE-EE: the key of {chain[0].subject.rfc4514_string()}")]
    if len(records) > 1:
        rows.append((records[1], f"DANE-TA: the issuer {chain[1].subject.rfc4514_string()} (send it in the chain)"))
    if next_key is not None:
        record = key_record(next_key)
        rows.append((record, "DANE-EE: the certificate's own key" if record == records[0] else "DANE-EE: the next key"))
    return rows


PINS = ("key", "issuer", "both")  # what an MX host's TLSA records pin: 3 1 1, 2 1 1, or both


def pinned_records(chain: list[x509.Certificate], pin: str) -> list[TlsaRecord]:
    """The records that pin `chain` (leaf first): `3 1 1` of its key, `2 1 1` of its issuer, or both."""
    records = []
    if pin in ("key", "both"):
        records.append(tlsa_record(chain[0], 3))
    if pin in ("issuer", "both"):
        if len(chain) < 2:
            raise TlsaError("pinning the issuer needs the chain: the certificate, then its issuer")
        records.append(tlsa_record(chain[1], 2))
    return records


def _matches(record: TlsaRecord, certificate: x509.Certificate) -> bool:
    return associate(selected_bytes(certificate, record.selector), record.matching_type) == record.data


def _record_certificate(record: TlsaRecord) -> x509.Certificate | None:
    """The certificate a `2 0 0` record holds in full, or None."""
    if (record.usage, record.selector, record.matching_type) != (2, 0, 0):
        return None
    try:
        return x509.load_der_x509_certificate(record.data)
    except ValueError:
        return None


@dataclass(frozen=True)
class DaneCheck:
    """How a DANE sender judges a presented chain against a TLSA RRset."""

    record: TlsaRecord | None  # the record that authenticates the chain; None: none does
    failures: tuple[str, ...] = ()  # why DANE-TA(2) records that match a certificate do not
    misnamed: bool = False  # a DANE-TA(2) chain builds, but the certificate names no reference identifier


def dane_check(records: list[TlsaRecord], chain: list[x509.Certificate], *,
               reference_identifiers: tuple[str, ...], now: datetime) -> DaneCheck:
    """Authenticate `chain` (leaf first) as a DANE client does (RFC 7671 section 5, RFC 7672 section 3).

    DANE-EE(3) matches the leaf alone: its names and dates do not matter (RFC 7672 section
    3.1.1). DANE-TA(2) names a trust anchor: a certificate of the chain above the leaf, or
    the certificate a `2 0 0` record carries in full, which the server need not send (RFC
    7671 section 5.2). The chain must then verify from the leaf up to that anchor, and the
    leaf must name a reference identifier (RFC 7672 sections 3.1.2 and 3.2.2): a record
    that matches a certificate merely appended to the chain authenticates nothing.
    """
    usable = [record for record in records if unusable_reason(record) is None]
    if not chain:
        return DaneCheck(None)
    for record in usable:
        if record.usage == 3 and _matches(record, chain[0]):
            return DaneCheck(record)
    failures, misnamed = [], False
    leaf_names = certificate_names(chain[0])
    for record in usable:
        if record.usage != 2:
            continue
        anchors = [certificate for certificate in chain[1:] if _matches(record, certificate)]
        anchors += [certificate for certificate in [_record_certificate(record)] if certificate is not None]
        for anchor in anchors:
            named = [name for name in reference_identifiers if names_cover(leaf_names, name)]
            error = _chain_error(chain, anchor, named[0] if named else _any_name(leaf_names), now)
            if error is None and named:
                return DaneCheck(record)
            if error is None:
                misnamed = True
                failures.append(f"{record} matches {anchor.subject.rfc4514_string()}, and the chain verifies up "
                                f"to it, but the certificate names none of {', '.join(reference_identifiers)}")
            else:
                failures.append(f"{record} matches {anchor.subject.rfc4514_string()}, but the chain does not "
                                f"verify up to it: {error}")
    return DaneCheck(None, tuple(failures), misnamed)


def _any_name(names: tuple[str, ...]) -> str | None:
    """A DNS name the certificate covers, to verify its chain apart from the reference identifiers."""
    for name in names:
        return "dane-check" + name[1:] if name.startswith("*.") else name
    return None


def _chain_error(chain: list[x509.Certificate], anchor: x509.Certificate, name: str | None,
                 now: datetime) -> str | None:
    """Why the chain does not verify from its leaf up to `anchor` for `name` (RFC 5280), or None."""
    if name is None:
        return "the certificate has no DNS name"
    verifier = PolicyBuilder().store(Store([anchor])).time(now).build_server_verifier(x509.DNSName(name))
    try:
        verifier.verify(chain[0], chain[1:])
    except VerificationError as error:
        return str(error)
    except ValueError as error:  # a name cryptography cannot take as a DNS name
        return str(error)
    return None


def stale_issuer_records(records: list[TlsaRecord], chain: list[x509.Certificate]) -> list[TlsaRecord]:
    """Usable DANE-TA(2) records that match no issuer of the served chain: the CA rotated its
    intermediate, or the record was left behind. A `2 0 0` record whose certificate issued one of
    the chain counts as matching, since the server need not send it (RFC 7671 section 5.2)."""
    issuers = chain[1:]
    stale = []
    for record in records:
        if record.usage != 2 or unusable_reason(record):
            continue
        anchor = _record_certificate(record)
        if any(_matches(record, issuer) for issuer in issuers):
            continue
        if anchor is not None and any(certificate.issuer == anchor.subject for certificate in chain):
            continue
        stale.append(record)
    return stale


@dataclass(frozen=True)
class CertificateFacts:
    """What a sender checks about a server certificate, for display and findings."""

    subject: str
    names: tuple[str, ...]
    covers_host: bool
    not_before: datetime
    not_after: datetime
    days_left: int
    expired: bool
    spki_sha256: str
    certificate_sha256: str


def certificate_names(certificate: x509.Certificate) -> tuple[str, ...]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(name.lower() for name in extension.value.get_values_for_type(x509.DNSName))


def names_cover(names: tuple[str, ...], host: str) -> bool:
    """Whether DNS-ID SANs `names` cover `host`: exactly, or by `*.` for one leftmost label."""
    return any(mx_pattern_matches(name, host) for name in names)


def certificate_facts(certificate: x509.Certificate, host: str, now: datetime) -> CertificateFacts:
    """Names are matched as RFC 8461 section 4.2 asks: DNS-ID SANs only, `*.` for one leftmost label."""
    names = certificate_names(certificate)
    not_after = certificate.not_valid_after_utc
    not_before = certificate.not_valid_before_utc
    return CertificateFacts(
        subject=certificate.subject.rfc4514_string(),
        names=names,
        covers_host=names_cover(names, host),
        not_before=not_before,
        not_after=not_after,
        days_left=(not_after - now).days,
        expired=not (not_before <= now <= not_after),
        spki_sha256=tlsa_record(certificate, 3).data.hex(),
        certificate_sha256=tlsa_record(certificate, 3, selector=0).data.hex(),
    )


def webpki_error(chain: list[x509.Certificate], host: str, roots: list[x509.Certificate], now: datetime) -> str | None:
    """Why the chain fails WebPKI validation for `host` against `roots` (RFC 5280 + RFC 6125), or None."""
    if not roots:
        return "no trusted root certificates configured"
    verifier = PolicyBuilder().store(Store(roots)).time(now).build_server_verifier(x509.DNSName(host))
    try:
        verifier.verify(chain[0], chain[1:])
    except VerificationError as error:
        return str(error)
    return None


@dataclass(frozen=True)
class RolloverPlan:
    """RFC 7671 section 8.1 "current + next": what to publish now, when to switch, when to clean up.

    The switch is to a next key (`3 1 1` records) or to a chain from a next issuer (`2 1 1`)."""

    publish: tuple[TlsaRecord, ...]
    changes: bool  # False: the next certificate matches the current record, nothing to do
    deploy_not_before: datetime | None  # the next certificate (or chain) may be installed from then on
    remove: tuple[TlsaRecord, ...]  # the current record, to remove at `remove_not_before`
    warnings: tuple[str, ...]
    ttl: int = 0
    published_at: datetime | None = None  # when the next record was in DNS; None: not known, counted from now
    deployed_at: datetime | None = None  # when the next certificate went into service; None: not yet known

    def ready(self, now: datetime) -> bool:
        """The next certificate may be deployed now: nothing to warn about, and caches have caught up."""
        return not self.warnings and self.deploy_not_before <= now

    @property
    def remove_not_before(self) -> datetime | None:
        """When the current record may go (RFC 7671 sections 8.1 and 8.4): once the next certificate is
        in service and twice the TTL has passed since the next record was published; None until the
        deployment is known."""
        if self.deployed_at is None:
            return None
        return max(self.deployed_at, self.deploy_not_before)


def plan_rollover(
    current: TlsaRecord,
    next_record: TlsaRecord,
    *,
    ttl: int,
    now: datetime,
    published: list[TlsaRecord] | None = None,
    next_published_since: datetime | None = None,
    deployed_at: datetime | None = None,
) -> RolloverPlan:
    """Plan the rollover from the `current` record to `next_record`: a next key's `3 1 1`
    (`key_record`), or a next issuer's `2 1 1` when a CA rotates its intermediate.

    Caches may hold the old TLSA RRset for its TTL: the next certificate goes into service
    only once its record has been in DNS for twice the TTL (RFC 7671 section 8.1), counted
    from `next_published_since`, else from `now`. A renewal that keeps the key (or the
    issuer) keeps its record: nothing changes.
    """
    if next_record == current:
        return RolloverPlan((current,), False, now, (), (), ttl)
    warnings = []
    if published is not None and next_record not in published:
        warnings.append(f"the next record {next_record} is not in DNS yet: publish it before the change")
        next_published_since = None
    since = next_published_since or now
    return RolloverPlan(
        publish=(current, next_record),
        changes=True,
        deploy_not_before=since + timedelta(seconds=2 * ttl),
        remove=(current,),
        warnings=tuple(warnings),
        ttl=ttl,
        published_at=next_published_since,
        deployed_at=deployed_at,
    )
