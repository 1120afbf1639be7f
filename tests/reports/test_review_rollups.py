"""What the intake writes for the review: the domains a report counts for and the daily rollups by hosted
domain, in the same transaction as the report; the migration fills the same rows from stored reports."""

import zlib
from datetime import date

from sqlalchemy import create_engine, func, select, text

from reports.ingest import Settings, ingest_report
from reports.models import (
    ROLLUP_CEILING,
    ROLLUP_SHARDS,
    DailyFailure,
    DailyTotal,
    Report,
    ReportDomain,
    ReportPolicy,
    ResultTypeSeen,
)
from reports.tokens import create_report_token
from stspolicy.app import create_app
from stspolicy.extensions import db
from tests import databases
from tests.conftest import app_settings
from tests.factories import host
from tests.support.reportdata import daily_report, encode, failure, sts_block, tlsa_block

DAY = date(2026, 11, 1)


def ingest(session, report_id: str, *blocks, organization="Google Inc.", day="2026-11-01", **options):
    document = daily_report(report_id, *blocks, organization=organization, day=day)
    return ingest_report(session, encode(document), Settings(accept_unhosted=True), source="file", **options)


def totals(session) -> dict:
    """Summary counts by (domain, day, policy type, organisation), shards summed."""
    key = (DailyTotal.domain_id, DailyTotal.day, DailyTotal.policy_type, DailyTotal.organization_name)
    return {tuple(row[:4]): (int(row[4]), int(row[5])) for row in session.execute(
        select(*key, func.sum(DailyTotal.successful_session_count), func.sum(DailyTotal.failed_session_count))
        .group_by(*key))}


def failures(session) -> dict:
    """Failed sessions by (domain, policy type, result type, MX, organisation, sending IP), shards summed."""
    key = (DailyFailure.domain_id, DailyFailure.policy_type, DailyFailure.result_type, DailyFailure.mx_host,
           DailyFailure.organization_name, DailyFailure.sending_ip)
    return {tuple(row[:6]): int(row[6]) for row in session.execute(
        select(*key, func.sum(DailyFailure.failed_session_count)).group_by(*key))}


def test_summary_totals_add_up_per_domain_day_policy_type_and_organisation(session):
    shop = host(session, "shop.example")
    ingest(session, "g1", sts_block("shop.example", 10, 2, failure("certificate-expired", 2, "mx1.shop.example")))
    ingest(session, "g2", sts_block("shop.example", 5, 0))
    ingest(session, "m1", sts_block("shop.example", 7, 1), organization="Mail.ru")
    assert totals(session) == {
        (shop.id, DAY, "sts", "Google Inc."): (15, 2),
        (shop.id, DAY, "sts", "Mail.ru"): (7, 1),
    }


def test_failures_keep_result_type_mx_organisation_and_sending_ip(session):
    shop = host(session, "shop.example")
    ingest(session, "g1", sts_block("shop.example", 0, 5,
                                    failure("certificate-expired", 3, "mx1.shop.example.", "192.0.2.1"),
                                    failure("certificate-expired", 1, "mx1.shop.example", "192.0.2.1"),
                                    failure("starttls-not-supported", 1)))
    assert failures(session) == {
        (shop.id, "sts", "certificate-expired", "mx1.shop.example", "Google Inc.", "192.0.2.1"): 4,
        (shop.id, "sts", "starttls-not-supported", "", "Google Inc.", ""): 1,
    }
    assert set(session.scalars(select(ResultTypeSeen.result_type))) == {"certificate-expired",
                                                                         "starttls-not-supported"}


def test_a_dane_block_about_an_mx_host_counts_for_the_domain_the_report_is_about(session):
    """mx.provider.example serves both domains: Microsoft's report about shop.example is shop's alone."""
    shop = host(session, "shop.example", mx=("mx.provider.example",))
    host(session, "bakery.example", mx=("mx.provider.example",))
    ingest(session, "ms1", sts_block("shop.example", 10, 0),
           tlsa_block("mx.provider.example", 4, 6, failure("tlsa-invalid", 6, "mx.provider.example")),
           organization="Microsoft Corporation")
    assert totals(session) == {
        (shop.id, DAY, "sts", "Microsoft Corporation"): (10, 0),
        (shop.id, DAY, "tlsa", "Microsoft Corporation"): (4, 6),
    }
    assert session.scalars(select(ReportPolicy.domain_id)).all() == [shop.id, shop.id]


def test_a_report_to_the_mx_hosts_own_address_counts_for_every_domain_using_it(session):
    """Host TLSRPT (RFC 8460 section 4.3.2.1): the MX host is the policy domain, and no hosted domain is named."""
    shop = host(session, "shop.example", mx=("*.provider.example",))
    bakery = host(session, "bakery.example", mx=("mx.provider.example",))
    host(session, "elsewhere.example", mx=("mx.elsewhere.example",))
    stored = ingest(session, "host1", tlsa_block("mx.provider.example", 1, 2, failure("tlsa-invalid", 2)))
    assert set(totals(session)) == {(shop.id, DAY, "tlsa", "Google Inc."), (bakery.id, DAY, "tlsa", "Google Inc.")}
    assert set(session.scalars(select(ReportDomain.domain_id).where(ReportDomain.report_row_id == stored.row_id))) \
        == {shop.id, bakery.id}
    assert session.scalar(select(ReportPolicy.domain_id)) == bakery.id  # stored linked to the first by name


def test_sent_to_a_tenants_report_url_an_mx_hosts_block_counts_only_for_that_tenants_domains(session):
    shop = host(session, "shop.example", mx=("mx.provider.example",))
    host(session, "bakery.example", mx=("mx.provider.example",))
    token = create_report_token(session, ["shop.example"], "shop")
    ingest(session, "host1", tlsa_block("mx.provider.example", 1, 2),
           allowed_domains=[domain.name for domain in token.domains])
    assert set(totals(session)) == {(shop.id, DAY, "tlsa", "Google Inc.")}


def test_a_report_counts_once_per_domain_and_a_resent_one_adds_nothing(session):
    shop = host(session, "shop.example", mx=("mx1.shop.example",))
    for _ in range(2):
        ingest(session, "ms1", sts_block("shop.example", 10, 1, failure("validation-failure", 1)),
               tlsa_block("mx1.shop.example", 3, 0), organization="Microsoft Corporation")
    assert set(totals(session).values()) == {(10, 1), (3, 0)}
    assert session.scalar(select(func.count()).select_from(ReportDomain)) == 1
    assert failures(session) == {(shop.id, "sts", "validation-failure", "", "Microsoft Corporation", ""): 1}


def test_blocks_about_no_hosted_domain_add_no_review_rows(session):
    host(session, "shop.example")
    ingest(session, "u1", sts_block("unhosted.example", 10, 1, failure("certificate-expired", 1)))
    for model in (ReportDomain, DailyTotal, DailyFailure, ResultTypeSeen):
        assert session.scalar(select(func.count()).select_from(model)) == 0


def test_the_first_arrival_of_a_result_type_is_kept(session):
    host(session, "shop.example")
    first = ingest(session, "g1", sts_block("shop.example", 0, 1, failure("certificate-expired", 1)))
    ingest(session, "g2", sts_block("shop.example", 0, 1, failure("certificate-expired", 1)), day="2026-11-02")
    assert session.scalar(select(ResultTypeSeen.first_received_at)) == session.get(Report, first.row_id).received_at


def test_reports_of_one_organisation_about_one_day_spread_over_shards(session):
    host(session, "shop.example")
    for n in range(40):
        ingest(session, f"g{n}", sts_block("shop.example", 1, 0))
    shards = session.scalars(select(DailyTotal.shard)).all()
    assert len(shards) > 8 and sum(totals(session)[next(iter(totals(session)))]) == 40


def test_a_flooded_rollup_stays_at_its_ceiling_and_takes_valid_reports(session):
    shop = host(session, "shop.example")
    ingest(session, "g0", sts_block("shop.example", 2**40, 0))
    session.execute(DailyTotal.__table__.update().values(successful_session_count=ROLLUP_CEILING - 1))
    session.commit()
    same_shard = next(f"g{n}" for n in range(1, 1000)
                      if zlib.crc32(f"g{n}".encode()) % ROLLUP_SHARDS == zlib.crc32(b"g0") % ROLLUP_SHARDS)
    assert ingest(session, same_shard, sts_block("shop.example", 2**40, 0)).status == "stored"
    assert totals(session)[(shop.id, DAY, "sts", "Google Inc.")] == (ROLLUP_CEILING, 0)


def test_the_migration_fills_the_rollups_of_reports_stored_before_it(new_database):
    url = new_database()
    databases.upgrade(url)
    app = create_app(app_settings(url))
    with app.app_context():
        session = db.session
        host(session, "shop.example", mx=("mx1.shop.example",))
        host(session, "bakery.example")
        ingest(session, "g1", sts_block("shop.example", 10, 3, failure("certificate-expired", 2, "mx1.shop.example.",
                                                                      "192.0.2.1"), failure("dnssec-invalid", 1)))
        ingest(session, "ms1", sts_block("shop.example", 5, 0), tlsa_block("mx1.shop.example", 2, 1,
                                                                            failure("tlsa-invalid", 1)),
               organization="Microsoft Corporation", day="2026-11-02")
        ingest(session, "b1", sts_block("bakery.example", 1, 0), sts_block("shop.example", 1, 0))
        ingest(session, "u1", sts_block("unhosted.example", 1, 1, failure("certificate-expired", 1)))
        tables = ("report_domain", "report_daily_total", "report_daily_failure", "report_result_type_seen")
        written = {table: _rows(session, table) for table in tables}
        databases.release_connections()
    databases.downgrade(url, "0015")  # the revision before the review rollups
    databases.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert {table: _rows(connection, table) for table in tables} == written
    finally:
        engine.dispose()
    assert len(written["report_daily_total"]) == 4 and len(written["report_daily_failure"]) == 3


def _rows(connection, table: str) -> list[tuple]:
    """The table's rows without ids, counts summed over shards (the migration fills shard 0 alone)."""
    rows = connection.execute(text(f"SELECT * FROM {table}")).mappings().all()  # noqa: S608 (our table names)
    summed: dict[tuple, list[int]] = {}
    for row in rows:
        key = tuple(str(value) for name, value in row.items() if name not in ("id", "shard") and
                    not name.endswith("_session_count"))
        counts = [value for name, value in row.items() if name.endswith("_session_count")]
        summed[key] = [a + b for a, b in zip(summed.get(key, [0] * len(counts)), counts, strict=True)]
    return sorted((*key, *counts) for key, counts in summed.items())
