"""Alembic environment: the application's engine and metadata, run by `flask db ...`."""

import logging
from logging.config import fileConfig

from alembic import context
from flask import current_app

from stspolicy.extensions import UTCDateTime

config = context.config
if config.config_file_name:
    fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")

db = current_app.extensions["migrate"].db


def _skip_empty_autogenerate(context, revision, directives):
    """`flask db migrate` with no model change writes no empty revision."""
    if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
        directives[:] = []
        logger.info("No changes in schema detected.")


def _render_item(type_, obj, autogen_context):
    """Autogenerate writes our UTCDateTime as the plain column type it stores."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations_online():
    configure_args = dict(current_app.extensions["migrate"].configure_args)
    configure_args.setdefault("process_revision_directives", _skip_empty_autogenerate)
    with db.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            # A migration may rewrite a large table: none of the waits bounded for requests applies.
            connection.exec_driver_sql("SET statement_timeout = 0")
            connection.exec_driver_sql("SET lock_timeout = 0")
            connection.commit()
            connection.connection.driver_connection.reply_timeout = None
        context.configure(
            connection=connection,
            target_metadata=db.metadata,
            render_item=_render_item,
            **configure_args,
        )
        with context.begin_transaction():
            context.run_migrations()
        if connection.dialect.name == "postgresql":
            connection.invalidate()  # not back into the pool without its bounds


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `flask db upgrade`")
run_migrations_online()
