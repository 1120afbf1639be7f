"""Create, migrate and drop test databases."""

import os

import flask_migrate
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from stspolicy.app import create_app
from stspolicy.extensions import db

POSTGRESQL_URL = os.environ.get("TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test")


def release_connections() -> None:
    """Close the app's connections (the replica's too), the session's one included: a connection left
    checked out while the pool is disposed is closed only by the garbage collector, with a
    ResourceWarning in whichever test happens to be running then."""
    db.session.remove()
    for engine in db.engines.values():
        engine.dispose()


def _admin_connection():
    try:
        return psycopg.connect(POSTGRESQL_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as error:
        import pytest

        pytest.skip(f"PostgreSQL at {POSTGRESQL_URL} is not reachable (set TEST_POSTGRESQL_URL): {error}")


def create_postgresql_database(name: str) -> str:
    with _admin_connection() as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_url(POSTGRESQL_URL).set(database=name).render_as_string(hide_password=False)


def drop_postgresql_database(url: str) -> None:
    name = make_url(url).database
    with _admin_connection() as connection:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def upgrade(url: str, revision: str = "head") -> None:
    """Run the Alembic migrations on `url`, as `flask db upgrade` does."""
    _migrate(url, flask_migrate.upgrade, revision)


def downgrade(url: str, revision: str) -> None:
    _migrate(url, flask_migrate.downgrade, revision)


def _migrate(url, command, revision):
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "migrations"})
    with app.app_context():
        command(revision=revision)
        release_connections()
