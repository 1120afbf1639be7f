"""Report intake under real gunicorn workers and PostgreSQL: exactly once, 503/75 when the database is down,
400 for a value the database refuses."""

import random
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import psycopg
import pytest
from sqlalchemy import create_engine, text

from reports.ingest import ingest_report, settings_from_config
from reports.parsing.body import ReportError
from reports.storage import STORED
from stspolicy.app import create_app
from stspolicy.extensions import db
from tests import databases
from tests.conftest import app_settings
from tests.policies.test_live_workers import host_domains
from tests.support.reportdata import SAMPLES, gz, report
from tests.support.servers import flask, gunicorn, private_postgresql

pytestmark = pytest.mark.slow  # gunicorn, PostgreSQL databases of their own, a private PostgreSQL

EX_TEMPFAIL = 75


def post(url: str, body: bytes, content_type="application/tlsrpt+gzip") -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        with error:
            return error.code, dict(error.headers)


@pytest.fixture
def postgresql_url():
    """A database of our own on the shared PostgreSQL, whichever engine the suite runs on."""
    url = databases.create_postgresql_database(f"stspolicy_test_{uuid.uuid4().hex[:12]}")
    databases.upgrade(url)
    yield url
    databases.drop_postgresql_database(url)


def test_parallel_overlapping_deliveries_store_each_report_once(postgresql_url):
    settings = app_settings(postgresql_url)
    host_domains(settings, ("example.com", "enforce", ["mx1.example.com"]))
    bodies = [gz(report(report_id=f"report-{n}")) for n in range(12)]
    deliveries = [(n, body) for n, body in enumerate(bodies) for _ in range(6)]
    random.Random(4).shuffle(deliveries)
    with gunicorn(settings, workers=3) as base_url, ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(lambda d: (d[0], post(base_url + "/tlsrpt", d[1])[0]), deliveries))
    for n in range(len(bodies)):
        assert sorted(status for number, status in statuses if number == n) == [200] * 5 + [201]
    engine = create_engine(postgresql_url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM report")).scalar() == 12
            assert connection.execute(text("SELECT count(*) FROM failure_detail")).scalar() == 12
            success = connection.execute(
                text("SELECT sum(session_count) FROM report_daily_rollup WHERE result_type = 'success'")).scalar()
            assert success == 12 * 10  # every report counted exactly once
    finally:
        engine.dispose()


def test_parallel_copies_with_other_content_are_all_kept_and_none_counts(postgresql_url):
    """Each report arrives as 4 identical deliveries and 2 forged copies delivered twice each, all at
    once: per report one 201, two 202 (kept, held), the rest 200, and nothing in the figures."""
    settings = app_settings(postgresql_url)
    host_domains(settings, ("example.com", "enforce", ["mx1.example.com"]))
    deliveries = []
    for n in range(8):
        genuine = report(report_id=f"report-{n}")
        forgeries = [report(report_id=f"report-{n}", contact_info=f"forger-{f}@attacker.example") for f in (1, 2)]
        deliveries += [(n, gz(genuine))] * 4 + [(n, gz(forged)) for forged in forgeries for _ in range(2)]
    random.Random(5).shuffle(deliveries)
    with gunicorn(settings, workers=3) as base_url, ThreadPoolExecutor(24) as pool:
        statuses = list(pool.map(lambda d: (d[0], post(base_url + "/tlsrpt", d[1])[0]), deliveries))
    for n in range(8):
        assert sorted(status for number, status in statuses if number == n) == [200] * 5 + [201, 202, 202]
    engine = create_engine(postgresql_url)
    try:
        with engine.connect() as connection:
            standings = connection.execute(text("SELECT standing, count(*) FROM report GROUP BY standing")).all()
            assert standings == [("held", 24)]
            assert connection.execute(text("SELECT count(*) FROM failure_detail")).scalar() == 0
            assert connection.execute(text("SELECT coalesce(sum(session_count), 0) FROM report_daily_rollup")
                                      ).scalar() == 0
    finally:
        engine.dispose()


def test_connections_postgresql_closed_are_replaced_before_a_report_uses_them(postgresql_url):
    settings = app_settings(postgresql_url)
    host_domains(settings, ("example.com", "enforce", ["mx1.example.com"]))
    with gunicorn(settings, workers=1) as base_url:
        assert post(base_url + "/tlsrpt", gz(report(report_id="before")))[0] == 201
        with psycopg.connect(postgresql_url, autocommit=True) as admin:
            ended = admin.execute("SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchall()
        assert ended and all(done for (done,) in ended)
        assert post(base_url + "/tlsrpt", gz(report(report_id="after")))[0] == 201


def test_database_down_answers_503_and_ingest_mail_exits_75():
    with private_postgresql() as (url, stop_postgresql):
        databases.upgrade(url)
        settings = app_settings(url)
        host_domains(settings, ("example.com", "enforce", ["mx1.example.com"]),
                     ("example.test", "enforce", ["mx1.example.test"]))
        with gunicorn(settings, workers=1) as base_url:
            assert post(base_url + "/tlsrpt", gz(report()))[0] == 201
            stop_postgresql()
            status, headers = post(base_url + "/tlsrpt", gz(report(report_id="while-down")))
            assert status == 503
            assert headers["Retry-After"] == "300"
        result = flask(settings, "report", "ingest-mail", input=(SAMPLES / "tlsrpt-reporter-sys4.eml").read_text())
        assert result.returncode == EX_TEMPFAIL, result.stderr
        assert "database unavailable" in result.stderr


def test_a_value_the_database_refuses_is_a_400_and_the_next_report_is_stored(postgresql_url):
    settings = app_settings(postgresql_url)
    host_domains(settings, ("example.com", "enforce", ["mx1.example.com"]))
    app = create_app(settings)
    with app.app_context():
        intake = settings_from_config(app.config)
        with pytest.raises(ReportError) as caught:  # no caller passes a result longer than its column
            ingest_report(db.session, gz(report(report_id="refused")), intake, source="mail", dkim_result="x" * 300)
        assert caught.value.status == 400
        assert ingest_report(db.session, gz(report(report_id="next")), intake, source="mail").status == STORED
        databases.release_connections()


def test_pooled_connections_use_tcp_keepalives(postgresql_url):
    """So that a server gone without a word is noticed while the connection idles in the pool."""
    app = create_app(app_settings(postgresql_url))
    with app.app_context():
        parameters = db.session.connection().connection.driver_connection.info.get_parameters()
        databases.release_connections()
    assert (parameters["keepalives"], parameters["keepalives_idle"]) == ("1", "30")
