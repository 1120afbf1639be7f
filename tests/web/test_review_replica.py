"""DATABASE_REPLICA_URL: the review's pages, CSV and API read reports from the replica; sign-in, tokens and
grants, and every write (a report received), stay on the primary.

First with two PostgreSQL databases holding different reports, so that each page says which one it read;
then with a real hot standby streaming from its primary, where a report received shows once replayed.
"""

import json
import time
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from bs4 import BeautifulSoup
from sqlalchemy import select, text

from reports.review.finding_store import refresh_findings
from reports.review.reading import review_session
from stspolicy.accounts.models import User
from stspolicy.accounts.service import set_grant
from stspolicy.accounts.tokens import create_token
from stspolicy.app import create_app
from stspolicy.extensions import REPLICA, db
from tests import databases
from tests.conftest import app_settings
from tests.factories import make_people, sign_in
from tests.factories import store_report as store
from tests.support.reportdata import daily_report, failure, gz, sts_block
from tests.support.reportdata import days_ago as day
from tests.support.servers import streaming_postgresql

pytestmark = pytest.mark.slow  # PostgreSQL databases of their own; a primary and a standby of our own

GZ = {"Content-Type": "application/tlsrpt+gzip"}


def seed(url: str, report_id: str, organization: str, result_type: str, *, outsider_sees_shared: bool) -> None:
    """The people (the same ids in every database seeded alike, as a replica has them) and one report about
    shared.example, with the findings the alerts timer would store."""
    app = create_app(app_settings(url))
    with app.app_context():
        people = make_people(db.session)
        if outsider_sees_shared:
            set_grant(db.session, people.outsider, people.shared, "viewer", actor="test")
        store(db.session, daily_report(report_id, sts_block(
            "shared.example", 90, 10, failure(result_type, 10, "mx1.shared.example")), organization=organization,
            day=day(1)))
        refresh_findings(db.session, datetime.now(UTC))
        databases.release_connections()


def user(email: str) -> User:
    return db.session.scalar(select(User).where(User.email == email))


def report_ids(url: str) -> list[str]:
    with psycopg.connect(url) as connection:
        return [row[0] for row in connection.execute("SELECT report_id FROM report ORDER BY report_id")]


def rows(response, table: str) -> list[list[str]]:
    assert response.status_code == 200, response.status_code
    soup = BeautifulSoup(response.get_data(as_text=True), "html.parser")
    return [[" ".join(cell.text.split()) for cell in row.select("td")]
            for row in soup.select(f"#table-{table} tbody tr")]


@pytest.fixture
def primary_and_replica():
    """Two migrated databases on the shared PostgreSQL: alike in people, each with a report of its own."""
    urls = [databases.create_postgresql_database(f"stspolicy_test_{uuid.uuid4().hex[:12]}") for _ in range(2)]
    try:
        for url in urls:
            databases.upgrade(url)
        seed(urls[0], "from-primary", "Primary Mail", "starttls-not-supported", outsider_sees_shared=False)
        seed(urls[1], "from-replica", "Replica Mail", "certificate-expired", outsider_sees_shared=True)
        yield urls
    finally:
        for url in urls:
            databases.drop_postgresql_database(url)


def test_pages_csv_and_api_read_the_replica_and_a_report_received_goes_to_the_primary(primary_and_replica):
    primary, replica = primary_and_replica
    app = create_app(app_settings(primary, DATABASE_REPLICA_URL=replica))
    app.config["TESTING"] = True
    client = app.test_client()
    try:
        with app.app_context():
            token = create_token(db.session, user("admin@provider.example"), "test", actor="test")[1]
            sign_in(client, user("admin@provider.example"))
        overview = rows(client.get("/reports"), "domains")
        assert [(row[0], row[8]) for row in overview] == [("shared.example", "Replica Mail"),
                                                          ("foreign.example", "–")]
        assert "certificate-problem" in overview[0][10]
        dashboard = client.get("/domains/shared.example/review")
        assert [row[0] for row in rows(dashboard, "result_type")] == ["certificate-expired"]
        assert [row[2] for row in rows(client.get("/domains/shared.example/reports"), "reports")] == ["from-replica"]
        assert "from-replica" in client.get("/domains/shared.example/reports?csv=reports").get_data(as_text=True)
        assert rows(client.get("/domains/shared.example/reports/1"), "details")[0][1] == "certificate-expired"

        bearer = {"Authorization": f"Bearer {token}"}  # the token is the primary's alone
        listed = client.get("/api/v1/domains/shared.example/reports", headers=bearer).get_json()
        assert [row["report_id"] for row in listed["reports"]] == ["from-replica"]
        groups = client.get("/api/v1/domains/shared.example/failures", headers=bearer).get_json()["groups"]
        assert groups == [{"result_type": "certificate-expired", "failed_session_count": 10}]
        found = json.dumps(client.get("/api/v1/domains/shared.example/findings", headers=bearer).get_json())
        assert "certificate-expired" in found and "starttls-not-supported" not in found

        with app.app_context():  # the outsider may see shared.example on the replica only: grants are the primary's
            sign_in(client, user("outsider@other.example"))
            assert client.get("/domains/shared.example/review").status_code == 404

        body = gz(daily_report("received", sts_block("shared.example", 5, 0), organization="New Mail", day=day(1)))
        assert client.post("/tlsrpt", data=body, headers=GZ).status_code == 201
        assert report_ids(primary) == ["from-primary", "received"]
        assert report_ids(replica) == ["from-replica"]

        with app.app_context():
            assert db.engines[REPLICA].pool.checkedout() == 0  # each request gave its replica connection back
            # The replica's connections refuse a write, whatever the server would take.
            assert review_session().scalar(text("SHOW default_transaction_read_only")) == "on"
            assert review_session() is not db.session
    finally:
        with app.app_context():
            databases.release_connections()


def test_a_report_received_by_the_primary_shows_on_the_dashboard_read_from_the_standby_once_replayed():
    with streaming_postgresql() as (primary, standby):
        with psycopg.connect(primary.url, autocommit=True) as connection:
            connection.execute("CREATE DATABASE stspolicy")
        primary_url = primary.url.rsplit("/", 1)[0] + "/stspolicy"
        standby_url = standby.url.rsplit("/", 1)[0] + "/stspolicy"
        databases.upgrade(primary_url)
        seed(primary_url, "first", "Google Inc.", "certificate-expired", outsider_sees_shared=False)
        app = create_app(app_settings(primary_url, DATABASE_REPLICA_URL=standby_url))
        app.config["TESTING"] = True
        client = app.test_client()
        try:
            with app.app_context():
                sign_in(client, user("admin@provider.example"))
            wait_for(lambda: reports_shown(client) == ["first"], "the standby to replay the seeded report")
            with psycopg.connect(standby.url, autocommit=True) as connection:
                connection.execute("SELECT pg_wal_replay_pause()")
                wait_for(lambda: connection.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0]
                         == "paused", "the standby to pause its replay")
                body = gz(daily_report("second", sts_block("shared.example", 5, 0), day=day(1)))
                assert client.post("/tlsrpt", data=body, headers=GZ).status_code == 201
                assert report_ids(primary_url) == ["first", "second"]
                assert reports_shown(client) == ["first"]  # stored on the primary, not replayed yet
                started = time.monotonic()
                connection.execute("SELECT pg_wal_replay_resume()")
                wait_for(lambda: reports_shown(client) == ["second", "first"], "the standby to replay the report")
                print(f"replayed and shown {time.monotonic() - started:.3f} s after the replay resumed")
        finally:
            with app.app_context():
                databases.release_connections()


def reports_shown(client) -> list[str]:
    return [row[2] for row in rows(client.get("/domains/shared.example/reports"), "reports")]


def wait_for(condition, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout} s for {what}"
        time.sleep(0.05)
