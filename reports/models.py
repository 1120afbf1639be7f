"""Stored TLS-RPT reports, their policy blocks, failure details and daily rollups.

Links into the hosted domains are `ON DELETE SET NULL`: removing a domain keeps its reports.
The review's rollups (DailyTotal, DailyFailure, ResultTypeSeen) are keyed by the hosted domain
a block is linked to, so DANE blocks that name an MX host count for that MX's domain; removing
the domain removes them, and pruning old reports keeps them.
"""

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from stspolicy.extensions import UTCDateTime, db, utcnow
from stspolicy.policies.models import Domain

# How an sts block's policy-string compares with the versions we served.
MATCHED = "matched"
MATCHES_NONE = "matches-none-of-ours"
UNPARSEABLE = "unparseable"
NOT_COMPARED = "not-compared"  # not an sts block, no policy-string, or a domain we do not host

# The standing of a copy of a report (README, "Copies of a report"). Only a counted copy has
# policy blocks, failure details and rollups: every figure reads counted copies alone.
COUNTED = "counted"
HELD = "held"  # in a conflict between copies of equal rank, until an admin chooses
SET_ASIDE = "set-aside"  # outranked by another copy, or not chosen
REPORT_KEY = ("organization_name", "report_id", "start_datetime", "end_datetime")


class Report(db.Model):
    """One accepted copy of a report. A report is known by (organization-name, report-id) and its
    date range (RFC 8460 section 4.4); copies of one with different content are all kept, and at
    most one of them counts."""

    __table_args__ = (UniqueConstraint(*REPORT_KEY, "copy_number", name="uq_report_copy"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_name: Mapped[str] = mapped_column(String(256))
    report_id: Mapped[str] = mapped_column(String(256))
    contact_info: Mapped[str | None] = mapped_column(Text)
    start_datetime: Mapped[datetime] = mapped_column(UTCDateTime)
    end_datetime: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(String(16))  # https, mail, imap or file
    source_detail: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    raw_gzip: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    notes: Mapped[list[str]] = mapped_column(JSON)
    dkim_result: Mapped[str | None] = mapped_column(String(260))  # up to `pass d=` and a 253-character domain
    copy_number: Mapped[int] = mapped_column(server_default="1")  # the first copy of a report is 1
    standing: Mapped[str] = mapped_column(String(16), server_default=COUNTED)
    # SHA-256 of the content as parsed (notes left out), filled once another copy arrives to compare it with.
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    chosen_by: Mapped[str | None] = mapped_column(Text)  # who chose this copy, in a conflict, as the one that counts

    policies: Mapped[list["ReportPolicy"]] = relationship(
        back_populates="report", order_by="ReportPolicy.position", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def day(self) -> date:
        """The UTC day the report is about, as schema.ParsedReport.day."""
        return self.start_datetime.astimezone(UTC).date()


class ReportPolicy(db.Model):
    """One element of the report's `policies`, linked to the hosted domain it is about."""

    id: Mapped[int] = mapped_column(primary_key=True)
    report_row_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), index=True)
    position: Mapped[int]
    policy_type: Mapped[str] = mapped_column(String(16))
    policy_domain: Mapped[str | None] = mapped_column(String(253), index=True)
    policy_strings: Mapped[list[str]] = mapped_column(JSON)
    mx_hosts: Mapped[list[str]] = mapped_column(JSON)
    successful_session_count: Mapped[int] = mapped_column(BigInteger)
    failed_session_count: Mapped[int] = mapped_column(BigInteger)
    domain_id: Mapped[int | None] = mapped_column(ForeignKey("domain.id", ondelete="SET NULL"), index=True)
    policy_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("policy_version.id", ondelete="SET NULL"), index=True
    )
    policy_match: Mapped[str] = mapped_column(String(32))

    report: Mapped[Report] = relationship(back_populates="policies")
    domain: Mapped[Domain | None] = relationship()
    failure_details: Mapped[list["FailureDetail"]] = relationship(
        order_by="FailureDetail.id", cascade="all, delete-orphan", passive_deletes=True
    )


class FailureDetail(db.Model):
    id: Mapped[int] = mapped_column(primary_key=True)
    report_policy_id: Mapped[int] = mapped_column(ForeignKey("report_policy.id", ondelete="CASCADE"), index=True)
    result_type: Mapped[str] = mapped_column(String(64))
    failed_session_count: Mapped[int] = mapped_column(BigInteger)
    sending_mta_ip: Mapped[str | None] = mapped_column(String(45))
    receiving_ip: Mapped[str | None] = mapped_column(String(45))
    receiving_mx_hostname: Mapped[str | None] = mapped_column(String(253))
    receiving_mx_helo: Mapped[str | None] = mapped_column(Text)
    additional_information: Mapped[str | None] = mapped_column(Text)
    failure_reason_code: Mapped[str | None] = mapped_column(Text)


ROLLUP_SHARDS = 16
# A rollup row stops growing here. A report adds at most 2^40 (schema.MAX_COUNT), so adding
# never overflows a BIGINT, and sums over shards and decades of days stay below 2^63: reports
# flooding one row with absurd counts can never make the database refuse the valid ones.
ROLLUP_CEILING = 2**44


class DailyRollup(db.Model):
    """Session counts per UTC day, policy domain, policy type, result type and MX, for dashboards.

    `result_type` is a result type from the failure details, or `success` / `failure` for a
    block's summary totals (details may overlap, so they do not add up to the totals);
    `mx_host` is empty where the report names none. Each key has up to ROLLUP_SHARDS rows
    (a report adds to the shard its report-id picks) so that concurrent reports about one
    busy domain do not queue on one row lock; readers sum the shards (service.rollup_totals).
    """

    __tablename__ = "report_daily_rollup"
    __table_args__ = (
        UniqueConstraint(
            "day", "policy_domain", "policy_type", "result_type", "mx_host", "shard", name="uq_report_daily_rollup_key"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    policy_domain: Mapped[str] = mapped_column(String(253))
    policy_type: Mapped[str] = mapped_column(String(16))
    result_type: Mapped[str] = mapped_column(String(64))
    mx_host: Mapped[str] = mapped_column(String(253))
    shard: Mapped[int] = mapped_column(SmallInteger)
    session_count: Mapped[int] = mapped_column(BigInteger)


class ReportDomain(db.Model):
    """A hosted domain a report counts for: what its blocks link to, and for a DANE block about an MX
    host sent to that host's own address, every hosted domain using that MX (linking.HostedDomains.links)."""

    __table_args__ = (Index("ix_report_domain_domain_id_day", "domain_id", "day"),)

    report_row_id: Mapped[int] = mapped_column(ForeignKey("report.id", ondelete="CASCADE"), primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[date] = mapped_column(Date)


class DailyTotal(db.Model):
    """Summary session counts per hosted domain, UTC day, policy type and reporting organisation.

    Sharded as DailyRollup: reports of one organisation about one busy domain and day do not queue on one row.
    """

    __tablename__ = "report_daily_total"
    __table_args__ = (
        UniqueConstraint("domain_id", "day", "policy_type", "organization_name", "shard",
                         name="uq_report_daily_total_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    policy_type: Mapped[str] = mapped_column(String(16))
    organization_name: Mapped[str] = mapped_column(String(256))
    shard: Mapped[int] = mapped_column(SmallInteger)
    successful_session_count: Mapped[int] = mapped_column(BigInteger)
    failed_session_count: Mapped[int] = mapped_column(BigInteger)


class DailyFailure(db.Model):
    """Failed sessions of the failure details per hosted domain, UTC day, policy type, result type,
    receiving MX, reporting organisation and sending IP (`mx_host`, `sending_ip`: empty where not given);
    sharded as DailyTotal."""

    __tablename__ = "report_daily_failure"
    __table_args__ = (
        UniqueConstraint("domain_id", "day", "policy_type", "result_type", "mx_host", "organization_name",
                         "sending_ip", "shard", name="uq_report_daily_failure_key"),
        # The rows whose sending IP `flask report prune` folds once they are old (review.retention).
        Index("ix_report_daily_failure_day_with_ip", "day",
              postgresql_where=text("sending_ip <> ''"), sqlite_where=text("sending_ip <> ''")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    policy_type: Mapped[str] = mapped_column(String(16))
    result_type: Mapped[str] = mapped_column(String(64))
    mx_host: Mapped[str] = mapped_column(String(253))
    organization_name: Mapped[str] = mapped_column(String(256))
    sending_ip: Mapped[str] = mapped_column(String(45))
    shard: Mapped[int] = mapped_column(SmallInteger)
    failed_session_count: Mapped[int] = mapped_column(BigInteger)


class ResultTypeSeen(db.Model):
    """When a result type was first received in a report about a hosted domain."""

    __tablename__ = "report_result_type_seen"

    domain_id: Mapped[int] = mapped_column(ForeignKey("domain.id", ondelete="CASCADE"), primary_key=True)
    result_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_received_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


report_token_domain = db.Table(
    "report_token_domain",
    db.Column("report_token_id", ForeignKey("report_token.id", ondelete="CASCADE"), primary_key=True),
    db.Column("domain_id", ForeignKey("domain.id", ondelete="CASCADE"), primary_key=True),
)


MAX_TOKEN_LABEL = 254


class ReportToken(db.Model):
    """A per-tenant rua URL `/tlsrpt/<token>`: reports posted there must be about its domains.

    The token is published in DNS (`_smtp._tls`), so it routes reports; it is no secret.
    """

    id: Mapped[int] = mapped_column(primary_key=True)
    token: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(MAX_TOKEN_LABEL))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    domains: Mapped[list[Domain]] = relationship(secondary=report_token_domain, order_by=Domain.name)
