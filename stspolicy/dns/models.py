"""What DNS and each MX said about a domain, when; and how the domain's records get published."""

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stspolicy.extensions import UTCDateTime, db, utcnow
from stspolicy.policies.models import Domain

PUBLISH_MODES = ("manual", "rfc2136", "delegated")
# A DNS update waiting for every worker to serve its policy, and one a process is writing now.
PENDING, CLAIMED = "pending", "claimed"


class DnsSetting(db.Model):
    """How a domain's `_mta-sts` TXT reaches DNS: by the admin (manual), or by us through RFC 2136
    to the domain's own zone (rfc2136) or to our delegation zone (delegated, RFC 8461 section 8.2)."""

    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"), primary_key=True)
    publish_mode: Mapped[str] = mapped_column(String(16), default="manual")
    update_server: Mapped[str | None] = mapped_column(String(255))
    update_zone: Mapped[str | None] = mapped_column(String(253))
    tsig_key: Mapped[str | None] = mapped_column(String(253))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    domain: Mapped[Domain] = relationship()


class DnsObservation(db.Model):
    """One `dns check` of a domain, or one publishing attempt, with its findings.

    `status` is ok, problems (a finding of level error or warning) or unchecked (no answer
    from the resolver). A publishing attempt that waits for its time is first PENDING, then
    CLAIMED by the one process that writes it; `serving_revision` is what every serving node must
    have applied before (stspolicy.nodes). `answers` keeps the raw DNS answers behind the findings.
    """

    # A domain's checks by time (the review reads a range of them); it serves look-ups by domain too.
    __table_args__ = (Index("ix_dns_observation_domain_id_observed_at", "domain_id", "observed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"))
    observed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(8))  # check or publish
    status: Mapped[str] = mapped_column(String(16))
    policy_id: Mapped[str] = mapped_column(String(32))
    findings: Mapped[list[dict]] = mapped_column(JSON)
    answers: Mapped[list[dict]] = mapped_column(JSON, default=list)
    serving_revision: Mapped[int | None] = mapped_column(BigInteger)

    domain: Mapped[Domain] = relationship()
    mx_hosts: Mapped[list["MxObservation"]] = relationship(
        back_populates="observation", order_by="MxObservation.id", cascade="all, delete-orphan", passive_deletes=True
    )


class MxObservation(db.Model):
    """One MX host at one check: its TLSA records and DNSSEC state, and what its STARTTLS showed."""

    id: Mapped[int] = mapped_column(primary_key=True)
    observation_id: Mapped[int] = mapped_column(ForeignKey("dns_observation.id", ondelete="CASCADE"), index=True)
    host: Mapped[str] = mapped_column(String(253), index=True)
    preference: Mapped[int]
    address: Mapped[str | None] = mapped_column(String(45))
    tlsa_name: Mapped[str] = mapped_column(String(253))
    tlsa_state: Mapped[str] = mapped_column(String(16))
    tlsa_records: Mapped[list[str]] = mapped_column(JSON)
    tlsa_match: Mapped[str | None] = mapped_column(Text)
    starttls: Mapped[bool]
    tls_version: Mapped[str | None] = mapped_column(String(16))
    probe_error: Mapped[str | None] = mapped_column(Text)
    certificate_sha256: Mapped[str | None] = mapped_column(String(64))
    spki_sha256: Mapped[str | None] = mapped_column(String(64))
    not_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    names: Mapped[list[str]] = mapped_column(JSON, default=list)
    covers_host: Mapped[bool | None]
    webpki_error: Mapped[str | None] = mapped_column(Text)
    chain_pem: Mapped[str | None] = mapped_column(Text)

    observation: Mapped[DnsObservation] = relationship(back_populates="mx_hosts")


class TlsaPublication(db.Model):
    """A TLSA record this service put at `_25._tcp.<host>`, or checks for when the admin publishes by hand.

    `published_at`: when the zone's primary server (or, by hand, the validating resolver)
    first answered with it; `secure_at`: when the validating resolver first gave it
    DNSSEC-secure; `last_presented_at`: the last time the certificate the MX host serves
    matched it. A record is pruned once nothing presented it for twice `ttl`.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(253), index=True)
    record: Mapped[str] = mapped_column(Text)  # presentation form, lower-case hex
    ttl: Mapped[int]
    published_at: Mapped[datetime] = mapped_column(UTCDateTime)
    secure_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_presented_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class StagedCertificate(db.Model):
    """A renewed certificate of an MX host, held back until its TLSA record has been in DNS long enough.

    The files stay on the mail server (`chain_path`, `key_path`); the chain is kept here for the pages.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    host: Mapped[str] = mapped_column(String(253), index=True)
    chain_pem: Mapped[str] = mapped_column(Text)
    chain_path: Mapped[str] = mapped_column(Text)
    key_path: Mapped[str] = mapped_column(Text)
    staged_at: Mapped[datetime] = mapped_column(UTCDateTime)
    installed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
