"""The schema comes only from the migrations: they build it, match the models and unwind."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from stspolicy.extensions import db
from tests import databases


def test_upgrade_on_an_empty_database_matches_the_models_and_downgrades_to_base(new_database):
    url = new_database()
    databases.upgrade(url)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, db.metadata) == []
        databases.downgrade(url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        databases.upgrade(url)
        assert {"domain", "policy_version"} <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_the_history_of_an_mx_host_is_found_through_an_index(new_database):
    url = new_database()
    databases.upgrade(url)
    engine = create_engine(url)
    try:
        assert ["host"] in [index["column_names"] for index in inspect(engine).get_indexes("mx_observation")]
    finally:
        engine.dispose()
