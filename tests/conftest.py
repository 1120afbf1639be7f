"""Test harness: one migrated database per session, one rolled-back transaction per test.

`--database sqlite|postgresql` picks the engine (`make test` runs both). PostgreSQL tests
use a database of their own, created on the server named by TEST_POSTGRESQL_URL and
dropped afterwards, so parallel runs never meet. Under CI=true a skipped test fails the
run (tests/plugins/no_skips_in_ci.py).
"""

import os
import uuid

import pytest
from flask.globals import app_ctx
from flask.testing import FlaskClient
from sqlalchemy.orm import scoped_session, sessionmaker

from stspolicy.app import create_app
from stspolicy.extensions import db
from tests import databases, factories
from tests.support import servers

pytest_plugins = ["tests.plugins.no_skips_in_ci", "tests.lab.fixtures"]


def pytest_addoption(parser):
    parser.addoption(
        "--database",
        choices=["sqlite", "postgresql"],
        default=os.environ.get("TEST_DATABASE", "sqlite"),
        help="database engine the suite runs on",
    )


DATABASE_FIXTURES = {"session", "new_database", "migrated_database", "app"}
# Fixtures that start servers: the lab (Knot, unbound, Postfix in a network namespace, and all
# built on it), nginx with gunicorn, nginx with pebble, Dovecot, chromium, parsedmarc's own
# environment, a PostgreSQL database made and migrated for one test. A test that starts
# servers itself says so with @pytest.mark.slow.
SERVER_FIXTURES = {"lab_netns", "site", "acme_site", "imap_server", "browser", "parsedmarc_reads", "postgresql_url"}


def pytest_collection_modifyitems(items):
    """Tests that touch the chosen database are marked `database`: `make test` runs them on both engines.
    Tests that use a server fixture are marked `slow`: `make test-fast` leaves them out."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if DATABASE_FIXTURES & fixtures:
            item.add_marker(pytest.mark.database)
        if SERVER_FIXTURES & fixtures:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """The server helpers refuse to start a server for a test not marked slow (tests/support/servers.starting)."""
    servers.running_test_is_slow = item.get_closest_marker("slow") is not None


@pytest.fixture(scope="session")
def database_kind(request) -> str:
    return request.config.getoption("--database")


@pytest.fixture(scope="session")
def new_database(database_kind, tmp_path_factory):
    """A factory of empty databases of the chosen kind, removed at the end of the session."""
    created = []

    def make() -> str:
        if database_kind == "sqlite":
            return f"sqlite:///{tmp_path_factory.mktemp('db') / 'stspolicy.db'}"
        url = databases.create_postgresql_database(f"stspolicy_test_{uuid.uuid4().hex[:12]}")
        created.append(url)
        return url

    yield make
    for url in created:
        databases.drop_postgresql_database(url)


# Seals private keys in test databases (`flask cert new-key` made it); never a production key.
TEST_SEALING_KEY = "kz3jYcOjfy6SxOufbdFdw7k7b3gybKwWMj6oNnRJZFM="


def app_settings(database_url: str, **overrides: str) -> dict[str, str]:
    settings = {
        "DATABASE_URL": database_url,
        "SECRET_KEY": "test-secret-key",
        "SNAPSHOT_REFRESH_SECONDS": "0",
        "TLSRPT_RUA": "mailto:tlsrpt@reports.provider.example https://reports.provider.example/tlsrpt",
        "POLICY_HOST_CNAME": "sts.provider.example",
        "TLSRPT_DKIM": "off",  # tests of DKIM turn it on with their own DNS
        "TLSRPT_RATE_LIMIT": "100000 per minute",
        "TLSRPT_FAILURE_DETAIL_LIMIT": "100000000 per hour",
        "LOGIN_RATE_LIMIT": "1000 per minute",  # tests of the limit set their own
        "KEY_ENCRYPTION_KEYS": TEST_SEALING_KEY,
    }
    settings.update(overrides)
    return settings


@pytest.fixture(scope="session")
def migrated_database(new_database) -> str:
    url = new_database()
    databases.upgrade(url)
    return url


@pytest.fixture(scope="session")
def app(migrated_database):
    app = create_app(app_settings(migrated_database))
    app.config["TESTING"] = True
    yield app
    with app.app_context():
        databases.release_connections()


@pytest.fixture
def session(app):
    """db.session inside a transaction that is rolled back after the test.

    Commits made by the code under test release savepoints, so they are visible to the
    test (and to the policy snapshot) but never reach other tests.
    """
    with app.app_context():
        connection = db.engine.connect()
        transaction = connection.begin()
        original = db.session
        db.session = scoped_session(sessionmaker(bind=connection, join_transaction_mode="create_savepoint"))
        try:
            yield db.session
        finally:
            db.session.remove()
            db.session = original
            transaction.rollback()
            connection.close()
            app.extensions["policy_snapshot"].forget()


class FreshGlobalsClient(FlaskClient):
    """A test client whose every request gets its own `flask.g`, as it does in production.

    The `session` fixture holds one app context for the whole test, and requests reuse
    it; without this, what an extension caches in `g` (the signed-in user, the CSRF
    token) would leak from one request into the next.
    """

    def open(self, *args, **kwargs):
        context = app_ctx._get_current_object()
        saved, context.g = context.g, self.application.app_ctx_globals_class()
        try:
            return super().open(*args, **kwargs)
        finally:
            context.g = saved


@pytest.fixture
def client(app, session):
    app.test_client_class = FreshGlobalsClient
    return app.test_client()


@pytest.fixture
def people(session):
    """The personas of view tests: see tests/factories.People."""
    return factories.make_people(session)


@pytest.fixture
def cli(app, session):
    """Run `flask ...` commands in-process: `cli("domain", "list")` returns the click result."""
    runner = app.test_cli_runner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(args=list(args), input=input, catch_exceptions=False)

    return invoke
