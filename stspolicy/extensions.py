"""The unbound Flask extensions, bound to the app in `create_app`."""

import select
import sqlite3
from datetime import UTC, datetime

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from psycopg import Connection, OperationalError
from psycopg.errors import _WaitTimeout
from sqlalchemy import DateTime, MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError, InterfaceError, TimeoutError
from sqlalchemy.exc import OperationalError as DatabaseOperationalError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(moment: datetime | None) -> datetime | None:
    """A time typed without a zone (a form, an option) that the user was asked to give in UTC."""
    return moment.replace(tzinfo=UTC) if moment else None


NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every database (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, connection_record):
    """SQLite enforces foreign keys only when asked; WAL lets readers run beside a writer.

    The driver's own transaction handling is switched off so that SQLAlchemy's BEGIN
    (below) starts every transaction: savepoints and transactional DDL then work.
    """
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=5000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_begin(connection):
    if connection.dialect.name == "sqlite":
        connection.exec_driver_sql("BEGIN")


# What "the database cannot be reached now" raises (refused, gone, frozen, timed out, pool exhausted):
# nothing was done, the client may try again.
DATABASE_UNAVAILABLE = (DatabaseOperationalError, InterfaceError, TimeoutError)


class AnswerBoundConnection(Connection):
    """A psycopg connection that waits at most `reply_timeout` seconds for each answer of the server.

    statement_timeout ends a slow statement on the server's side; a server that answers
    nothing (frozen, or its host gone) must be given up on this side, and the connection
    closed, since the conversation on it is cut in the middle.
    """

    reply_timeout: float | None = None

    def wait(self, gen, interval=0.1, timeout=None):
        try:
            return super().wait(gen, interval, timeout if timeout is not None else self.reply_timeout)
        except _WaitTimeout:
            self.pgconn.finish()
            raise OperationalError(f"no answer from the database server within {self.reply_timeout}s") from None


@event.listens_for(Engine, "do_connect")
def _bounded_answers(dialect, connection_record, cargs, cparams):
    """`reply_timeout` in connect_args (config.engine_options) makes an AnswerBoundConnection."""
    reply_timeout = cparams.pop("reply_timeout", None)
    if reply_timeout is None:
        return None
    connection = AnswerBoundConnection.connect(*cargs, **cparams)
    connection.reply_timeout = reply_timeout
    return connection


@event.listens_for(Pool, "checkout")
def _closed_by_server(dbapi_connection, connection_record, connection_proxy):
    """A pooled connection the server closed (restart, pg_terminate_backend, idle timeout) is
    replaced before use: the pool retries the checkout on DisconnectionError.

    Instead of pool_pre_ping's SELECT 1 round trip on every checkout, look at the socket: an
    idle connection has nothing to read unless the server ended it (its FATAL message, then EOF).
    """
    if not hasattr(dbapi_connection, "fileno"):  # SQLite: no server
        return
    if dbapi_connection.closed:
        raise DisconnectionError("connection closed")
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN)
    if poller.poll(0):
        raise DisconnectionError("the server closed the connection while it was idle in the pool")


db = SQLAlchemy(model_class=Base)
REPLICA = "replica"  # the bind of DATABASE_REPLICA_URL in db.engines, when it is set (config.replica_binds)
migrate = Migrate()
csrf = CSRFProtect()
babel = Babel()
login_manager = LoginManager()
# Storage from RATELIMIT_STORAGE_URI (memory:// by default: one count per worker process).
limiter = Limiter(key_func=get_remote_address)
