"""The in-process copy of every current policy that the well-known endpoint serves.

Requests never wait on the database: they read a dict. A daemon thread per process
polls a cheap fingerprint of the policy versions and reloads when it changes, so a
change made by another worker or the CLI shows within a refresh interval; a change
made in this process marks the copy stale at once. If the database cannot be
reached, the last good copy goes on being served.
"""

import contextlib
import logging
import os
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass

from flask import Flask, current_app, has_app_context
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from stspolicy.extensions import db
from stspolicy.policies.models import Domain, PolicyVersion

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedPolicy:
    policy_id: str
    body: bytes

    @property
    def etag(self) -> str:
        return f'"{self.policy_id}"'


def load_current_policies(names: Collection[str] | None = None) -> dict[str, ServedPolicy]:
    """Every hosted domain's latest policy version (or only those of `names`), keyed by A-label domain."""
    latest = (
        select(func.max(PolicyVersion.id).label("id")).group_by(PolicyVersion.domain_id).subquery()
    )
    query = (
        select(Domain.name, PolicyVersion.policy_id, PolicyVersion.policy_text)
        .join(PolicyVersion, PolicyVersion.domain_id == Domain.id)
        .join(latest, latest.c.id == PolicyVersion.id)
    )
    if names is not None:
        query = query.where(Domain.name.in_(names))
    rows = db.session.execute(query)
    return {name: ServedPolicy(policy_id, text.encode("ascii")) for name, policy_id, text in rows}


def policy_fingerprint(session: Session | None = None) -> tuple:
    """Changes whenever a version is added or a domain (with its versions) is deleted.

    The newest creation time is part of it because SQLite reuses the largest row id: a
    domain deleted and another added within one refresh leave count and max(id) equal.
    """
    statement = select(
        func.count(PolicyVersion.id), func.max(PolicyVersion.id), func.max(PolicyVersion.created_at)
    )
    return tuple((session or db.session).execute(statement).one())


class PolicySnapshot:
    def __init__(self, app: Flask, refresh_seconds: float):
        self._app = app
        self._refresh_seconds = refresh_seconds
        self._policies: dict[str, ServedPolicy] | None = None
        self._fingerprint: tuple | None = None
        self._stale = True
        self._lock = threading.Lock()
        self._pid: int | None = None

    def get(self, domain: str) -> ServedPolicy | None:
        """The policy served for `domain`; raises SnapshotUnavailable before any load succeeded."""
        if self._stale or self._pid != os.getpid():
            self._reload_now()
        if self._policies is None:
            raise SnapshotUnavailable("no policy snapshot loaded yet")
        return self._policies.get(domain)

    def start(self) -> int | None:
        """Load now and start polling, so a new worker has policies before its first request.

        Returns the number of domains loaded, or None if the database could not be read.
        """
        self._reload_now()
        return None if self._policies is None else len(self._policies)

    def mark_stale(self) -> None:
        self._stale = True

    def _reload_now(self) -> None:
        with self._lock:
            if self._pid != os.getpid():
                # A forked worker: the parent's thread is gone and its copy may be old.
                self._pid = os.getpid()
                self._stale = True
                if self._refresh_seconds > 0:
                    threading.Thread(target=self._poll, name="policy-snapshot", daemon=True).start()
            if self._stale:
                with contextlib.nullcontext() if has_app_context() else self._app.app_context():
                    self._reload()

    def _reload(self) -> None:
        try:
            fingerprint = policy_fingerprint()
            policies = load_current_policies()
        except SQLAlchemyError as error:
            log.warning("policy snapshot not refreshed, serving the last one: %s", error)
            db.session.rollback()
            return
        finally:
            if self._refresh_seconds > 0:
                db.session.remove()
        self._policies, self._fingerprint, self._stale = policies, fingerprint, False

    def _poll(self) -> None:
        while True:
            time.sleep(self._refresh_seconds)
            with self._app.app_context():
                try:
                    changed = policy_fingerprint() != self._fingerprint
                except SQLAlchemyError as error:
                    log.warning("policy snapshot check failed, serving the last one: %s", error)
                    changed = False
                finally:
                    db.session.remove()
                if changed or self._stale:
                    with self._lock:
                        self._reload()


class SnapshotUnavailable(RuntimeError):
    """No policies could be loaded since this process started."""


def init_app(app: Flask) -> None:
    app.extensions["policy_snapshot"] = PolicySnapshot(app, app.extensions["settings"].serving.refresh_seconds)


def notify_policies_changed() -> None:
    """Tell this process's snapshot that a policy changed (other processes poll)."""
    current_app.extensions["policy_snapshot"].mark_stale()
