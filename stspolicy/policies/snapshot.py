"""The in-process copy of every current policy that the well-known endpoint serves.

Requests never wait on the database: they read a dict. A daemon thread per process
polls a cheap fingerprint of the policy versions and reloads when it changes, so a
change made by another worker or the CLI shows within a refresh interval; a change
made in this process is loaded at once by the request that made it. If the database
cannot be reached, the last good copy goes on being served; a process started while it
cannot be reached serves the policy files written for nginx, if there are any.
"""

import contextlib
import logging
import os
import threading
import time

from flask import Flask, current_app, has_app_context
from sqlalchemy.exc import SQLAlchemyError

from stspolicy.base.settings import ServingSettings
from stspolicy.extensions import db
from stspolicy.policies.files import read_policy_files
from stspolicy.policies.queries import ServedPolicy, load_current_policies, policy_fingerprint

log = logging.getLogger(__name__)


class PolicySnapshot:
    def __init__(self, app: Flask, serving: ServingSettings):
        self._app = app
        self._refresh_seconds = serving.refresh_seconds
        self._policy_files_dir = serving.policy_files_dir
        self._policies: dict[str, ServedPolicy] | None = None
        self._fingerprint: tuple | None = None
        self._lock = threading.Lock()
        self._pid: int | None = None  # the process the policies were loaded in
        self._polling_pid: int | None = None

    def get(self, domain: str) -> ServedPolicy | None:
        """The policy served for `domain`; raises SnapshotUnavailable while none could be loaded.

        Only a process that has no policies yet loads them here (the development server, tests):
        under gunicorn every worker loads at start (post_worker_init), so a fetch never waits
        on the database.
        """
        if self._pid != os.getpid():
            self.start()
        if self._policies is None:
            raise SnapshotUnavailable("no policy snapshot loaded yet")
        return self._policies.get(domain)

    def start(self) -> int | None:
        """Load now and start polling, so a new worker has policies before its first request.

        While the database cannot be read, the policy files written for nginx (POLICY_FILES_DIR)
        stand in, until the poller finds the database back. Returns the number of domains
        loaded, or None if there was nothing to load them from.
        """
        with self._lock:
            if self._pid != os.getpid():
                # A new process (a forked worker): its parent's copy may be old, and its thread is gone.
                self._pid, self._policies, self._fingerprint = os.getpid(), None, None
                with contextlib.nullcontext() if has_app_context() else self._app.app_context():
                    if not self._reload():
                        self._policies = self._from_policy_files()
            if self._refresh_seconds > 0 and self._polling_pid != os.getpid():
                self._polling_pid = os.getpid()
                threading.Thread(target=self._poll, name="policy-snapshot", daemon=True).start()
        return None if self._policies is None else len(self._policies)

    def reload(self) -> None:
        """Load the current policies at once, with the caller's session (after a change it committed)."""
        with self._lock:
            if self._reload(remove_session=False):
                db.session.commit()  # end the read: on SQLite an open one would keep an old view of the file

    def forget(self) -> None:
        """Drop the loaded policies, so that the next fetch loads them again (tests that roll back)."""
        self._pid = self._policies = None

    def _reload(self, remove_session: bool = True) -> bool:
        try:
            fingerprint = policy_fingerprint()
            policies = load_current_policies()
        except SQLAlchemyError as error:
            log.warning("policy snapshot not refreshed, serving the last one: %s", str(error).partition("\n")[0])
            db.session.rollback()
            return False
        finally:
            if remove_session and self._refresh_seconds > 0:
                db.session.remove()
        self._policies, self._fingerprint = policies, fingerprint
        return True

    def _from_policy_files(self) -> dict[str, ServedPolicy] | None:
        root = self._policy_files_dir
        if root is None:
            return None
        try:
            policies = {name: ServedPolicy(None, body) for name, body in read_policy_files(root).items()}
        except OSError as error:
            log.warning("policy files in %s cannot be read either: %s", root, error.strerror)
            return None
        log.warning("database unreachable: serving the %d policies of %s until it is back", len(policies), root)
        return policies

    def _poll(self) -> None:
        while True:
            time.sleep(self._refresh_seconds)
            with self._app.app_context():
                try:
                    changed = policy_fingerprint() != self._fingerprint
                except SQLAlchemyError as error:
                    log.warning("policy snapshot check failed, serving the last one: %s",
                                str(error).partition("\n")[0])
                    changed = False
                finally:
                    db.session.remove()
                if changed:
                    with self._lock:
                        self._reload()


class SnapshotUnavailable(RuntimeError):
    """No policies could be loaded since this process started."""


def init_app(app: Flask) -> None:
    app.extensions["policy_snapshot"] = PolicySnapshot(app, app.extensions["settings"].serving)


def notify_policies_changed() -> None:
    """Serve a committed change in this process at once (other processes poll)."""
    current_app.extensions["policy_snapshot"].reload()
