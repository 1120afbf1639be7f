"""The session the review's pages and API read reports through: a replica's when DATABASE_REPLICA_URL is set.

Charts, tables, CSV, report bodies and findings are read there, taking the heaviest queries off the
primary. Who may see what (accounts, grants, API tokens) is still read on the primary through
`db.session`: a grant just withdrawn must not go on opening a domain while the replica catches up.
A replica shows a report just received a moment later, once it has replayed it. Everything that
writes (intake, the alerts timer and its stored findings, the admin pages) uses `db.session`.
"""

from flask import Flask
from flask.globals import app_ctx
from sqlalchemy.orm import Session, scoped_session

from stspolicy.extensions import REPLICA, db

# One session per app context, removed when it ends, as Flask-SQLAlchemy scopes db.session.
_replica = scoped_session(lambda: Session(db.engines[REPLICA]), scopefunc=lambda: id(app_ctx._get_current_object()))


def review_session() -> Session:
    """The replica's session if there is one, else `db.session`: what the review reads through."""
    return _replica() if REPLICA in db.engines else db.session


def init_app(app: Flask) -> None:
    if REPLICA in app.config["SQLALCHEMY_BINDS"]:
        app.teardown_appcontext(lambda _error: _replica.remove())
