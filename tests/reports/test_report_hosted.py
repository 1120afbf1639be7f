"""Hosted domains kept per process: a change made elsewhere is seen, a removal never fails a report."""

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from reports.ingest import Settings, UnhostedDomain, ingest_report
from reports.linking import HostedDomains
from reports.models import MATCHED, ReportPolicy
from reports.storage import STORED
from stspolicy.app import create_app
from stspolicy.extensions import db
from stspolicy.policies.queries import get_domain
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain, remove_domain, update_policy
from tests import databases
from tests.conftest import app_settings
from tests.support.reportdata import encode, report

TESTING_LINES = ["version: STSv1", "mode: testing", "mx: mx1.example.com", "max_age: 604800"]


@pytest.fixture
def database(new_database):
    """db.session of an app on a database of its own, and a session standing for another process."""
    url = new_database()
    databases.upgrade(url)
    app = create_app(app_settings(url))
    with app.app_context():
        with Session(db.engine) as elsewhere:
            add_domain(elsewhere, "example.com", make_policy("enforce", ["mx1.example.com"], 604800), actor="test")
            yield db.session, elsewhere
        databases.release_connections()


def applying_testing(report_id: str) -> bytes:
    document = report(report_id=report_id)
    document["policies"][0]["policy"]["policy-string"] = TESTING_LINES
    return encode(document)


def block_match(session, report_id_row: int) -> tuple:
    block = session.scalars(select(ReportPolicy).where(ReportPolicy.report_row_id == report_id_row)).one()
    return block.policy_version_id, block.policy_match


def test_reports_about_a_domain_looked_up_before_read_no_domain_tables(database):
    session, _ = database
    settings = Settings(hosted=HostedDomains(refresh_seconds=3600))
    ingest_report(session, encode(report(report_id="r1")), settings, source="file")
    statements = []
    listener = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        outcome = ingest_report(session, encode(report(report_id="r2")), settings, source="file")
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    assert outcome.status == STORED
    assert block_match(session, outcome.row_id)[1] == MATCHED
    assert not [text for text in statements if "FROM domain" in text or "FROM policy_version" in text]


def test_a_policy_changed_elsewhere_is_matched_once_the_refresh_interval_passed(database):
    session, elsewhere = database
    now = [1000.0]  # the seconds of the clock the kept look-ups are timed by
    settings = Settings(hosted=HostedDomains(refresh_seconds=0.3, clock=lambda: now[0]))
    assert ingest_report(session, encode(report(report_id="r1")), settings, source="file").status == STORED
    version = update_policy(elsewhere, get_domain(elsewhere, "example.com"), mode="testing", actor="test")
    now[0] += 0.4
    outcome = ingest_report(session, applying_testing("r2"), settings, source="file")
    assert block_match(session, outcome.row_id) == (version.id, MATCHED)


def test_without_a_refresh_interval_every_report_sees_the_latest_versions(database):
    session, elsewhere = database
    settings = Settings(hosted=HostedDomains(refresh_seconds=0))
    ingest_report(session, encode(report(report_id="r1")), settings, source="file")
    version = update_policy(elsewhere, get_domain(elsewhere, "example.com"), mode="testing", actor="test")
    outcome = ingest_report(session, applying_testing("r2"), settings, source="file")
    assert block_match(session, outcome.row_id) == (version.id, MATCHED)


def test_a_domain_removed_elsewhere_gets_its_reports_refused_not_failed(database):
    session, elsewhere = database
    settings = Settings(hosted=HostedDomains(refresh_seconds=3600))
    ingest_report(session, encode(report(report_id="r1")), settings, source="file")
    remove_domain(elsewhere, get_domain(elsewhere, "example.com"), actor="test", force=True)
    with pytest.raises(UnhostedDomain):
        ingest_report(session, encode(report(report_id="r2")), settings, source="file")


def test_a_domain_added_elsewhere_takes_reports_at_once(database):
    session, elsewhere = database
    settings = Settings(hosted=HostedDomains(refresh_seconds=3600))
    about_org = report(report_id="r1")
    about_org["policies"][0]["policy"]["policy-domain"] = "example.org"
    with pytest.raises(UnhostedDomain):
        ingest_report(session, encode(about_org), settings, source="file")
    session.rollback()  # as the end of a request does
    add_domain(elsewhere, "example.org", make_policy("enforce", ["mx1.example.com"], 604800), actor="test")
    assert ingest_report(session, encode(about_org), settings, source="file").status == STORED


def test_over_https_a_domain_removed_and_added_again_elsewhere_refuses_then_takes_reports(new_database):
    """The intake's own session (autocommit on PostgreSQL) looks again when the domain it kept is gone."""
    url = new_database()
    databases.upgrade(url)
    app = create_app(app_settings(url, SNAPSHOT_REFRESH_SECONDS="3600"))
    elsewhere = create_app(app_settings(url))  # another process
    client = app.test_client()
    policy = make_policy("enforce", ["mx1.example.com"], 604800)

    def post(report_id: str) -> int:
        body = encode(report(report_id=report_id))
        return client.post("/tlsrpt", data=body, headers={"Content-Type": "application/tlsrpt+json"}).status_code

    with elsewhere.app_context():
        add_domain(db.session, "example.com", policy, actor="test")
        assert post("r1") == 201
        remove_domain(db.session, get_domain(db.session, "example.com"), actor="test", force=True)
        assert post("r2") == 422
        add_domain(db.session, "example.com", policy, actor="test")
        assert post("r3") == 201
        stored = db.session.scalars(select(ReportPolicy.domain_id).order_by(ReportPolicy.id)).all()
        assert stored == [None, get_domain(db.session, "example.com").id]  # r1's domain is gone
        databases.release_connections()
    with app.app_context():
        databases.release_connections()
