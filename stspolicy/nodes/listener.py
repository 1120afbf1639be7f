"""The adapter that wakes a node's sync: PostgreSQL `LISTEN serving_changed` on a connection of its own.

The migration's triggers notify that channel when a change commits (stspolicy.nodes.models).
A notification may be lost (the connection broke, the server restarted), so the sync also
looks at the revision on every heartbeat; on SQLite, which has no notifications, that
polling is all there is.
"""

import time

import psycopg
from sqlalchemy.engine import URL

CHANNEL = "serving_changed"


class ChangeListener:
    """`wait(seconds)`: True once a change was notified, False when the time ran out first."""

    def __init__(self, url: URL, connect_args: dict):
        self._connection: psycopg.Connection | None = None
        if url.get_backend_name() == "postgresql":
            # The application's answer bound is left out: a listener waits on purpose.
            options = {name: value for name, value in connect_args.items() if name != "reply_timeout"}
            conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
            self._connection = psycopg.connect(conninfo, autocommit=True, **options)
            self._connection.execute(f"LISTEN {CHANNEL}")

    def wait(self, seconds: float) -> bool:
        if self._connection is None:
            time.sleep(seconds)
            return False
        notified = any(True for _ in self._connection.notifies(timeout=seconds, stop_after=1))
        if notified:
            for _ in self._connection.notifies(timeout=0):  # the others already queued: one sync covers them
                pass
        return notified

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()

    def __enter__(self) -> "ChangeListener":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()
