"""The publish step: after a policy change is committed, make it public.

Policy services only change the database. Each entry point (admin pages, API, CLI) then
calls `propagate`: this process's snapshot serves the change at once, nginx's policy file
is rewritten, and a domain whose `_mta-sts` record we write (rfc2136 or delegated mode)
gets the new id in DNS. RFC 8461 section 8.1: the id changes only once every worker serves
the new policy, that is 2 x SNAPSHOT_REFRESH_SECONDS after the commit, and every serving
node has applied the change (stspolicy.nodes: a silent node holds it back until it is back
or retired). The CLI waits that out and writes; a web request never waits: it stores a
pending job that a timer thread of its process writes when due. `flask dns publish-pending`
(run by the maintenance timer) writes what such a thread could not, as when its worker
stopped first. Each job is claimed by one process only (stspolicy.dns.publish.claim_job).
"""

import heapq
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import Flask, current_app
from sqlalchemy.orm import Session

from stspolicy.base.settings import AppSettings
from stspolicy.dns.models import DnsObservation
from stspolicy.dns.publish import checked_target, claim_job, publish_policy_id, record_pending, waiting_jobs
from stspolicy.dns.rfc2136 import PublishError
from stspolicy.extensions import db, utcnow
from stspolicy.nodes.service import describe_behind, nodes_behind, serving_revision, silent, wait_for_nodes
from stspolicy.policies.files import publish_policy_files
from stspolicy.policies.models import PolicyVersion
from stspolicy.policies.queries import current_version
from stspolicy.policies.snapshot import notify_policies_changed

log = logging.getLogger(__name__)

# After a claim was refused because another process is writing the domain's id: try again this much later.
RETRY_AFTER = timedelta(seconds=5)
# While a node that is not silent is applying the change: look again this much later.
NODES_RETRY_AFTER = timedelta(seconds=0.2)


def propagate(session: Session, settings: AppSettings, name: str, version: PolicyVersion | None, *,
              wait: bool) -> DnsObservation | None:
    """Serve what was just committed for domain `name`, then publish `version`'s id to DNS.

    `version`: the version whose id DNS must name, None when no id changed (a deletion, a
    removal that kept its id). `wait`: sleep until every worker and node serves it, then
    write (the CLI; a silent node, or one still behind after NODE_SILENT_SECONDS, leaves a
    pending job); else write now only if that holds already, and store a pending job if not.
    Returns the publishing attempt (status ok) or the pending job; None in manual mode.
    A setting that cannot work raises PublishError at once, a failed write after it is stored.
    """
    notify_policies_changed()
    publish_policy_files(settings.serving.policy_files_dir, [name])
    if version is None:
        return None
    domain = version.domain
    target = checked_target(session, settings, domain, version)
    if target is None:
        return None
    revision = serving_revision(session)  # read after the commit: the nodes must have applied at least this
    due_at = served_everywhere_at(settings, version)
    remaining = (due_at - utcnow()).total_seconds()
    if not wait and (remaining > 0 or nodes_behind(session, revision)):
        job = record_pending(session, domain, version, target, due_at, revision)
        current_app.extensions["dns_jobs"].add(due_at, domain.id)
        return job
    time.sleep(max(0.0, remaining))
    # The nodes that are seen apply a change within moments; a silent one may take hours: not waited for here.
    wait_for_nodes(session, settings.nodes, revision, settings.nodes.silent_seconds, silent_too=False)
    if nodes_behind(session, revision):
        return record_pending(session, domain, version, target, due_at, revision)  # for `dns publish-pending`
    return publish_policy_id(session, settings, domain, version)


def served_everywhere_at(settings: AppSettings, version: PolicyVersion) -> datetime:
    """When every worker serves `version`: each reloads within SNAPSHOT_REFRESH_SECONDS of a commit; twice that."""
    return version.created_at + timedelta(seconds=2 * settings.serving.refresh_seconds)


@dataclass(frozen=True)
class JobOutcome:
    domain: str
    state: str  # "published", "failed", "waiting" (until retry_at) or "dropped" (manual mode now)
    detail: str
    retry_at: datetime | None = None


def publish_pending(session: Session, settings: AppSettings, now: datetime,
                    domain_ids: list[int] | None = None) -> list[JobOutcome]:
    """Write the pending DNS updates that are due (of `domain_ids` only, if given), each claimed first.

    A job writes the domain's current id, once every worker and every serving node serves it.
    """
    outcomes = []
    for job in waiting_jobs(session, now, domain_ids):
        job_id, domain_id, domain, name = job.id, job.domain_id, job.domain, job.domain.name
        version = current_version(session, domain)
        due_at, policy_id = served_everywhere_at(settings, version), version.policy_id
        behind = nodes_behind(session, _needed_revision(session, job, version))
        waiting_for = describe_behind(behind, settings.nodes, now)
        any_silent = any(silent(node, settings.nodes, now) for node in behind)
        session.commit()  # so that the claim is the first statement of its transaction (SQLite: no stale snapshot)
        if now < due_at:
            outcomes.append(JobOutcome(name, "waiting", f"policy id {policy_id} is not served everywhere before "
                                       f"{due_at:%H:%M:%S} UTC", due_at))
        elif behind:
            retry = timedelta(seconds=settings.nodes.heartbeat_seconds) if any_silent else NODES_RETRY_AFTER
            outcomes.append(JobOutcome(name, "waiting", f"policy id {policy_id} is not served by node(s) "
                                       f"{waiting_for} yet", now + retry))
        elif not claim_job(session, job_id, domain_id, policy_id, now):
            session.rollback()
            outcomes.append(JobOutcome(name, "waiting", "another process is writing its id", now + RETRY_AFTER))
        else:
            session.commit()
            outcomes.append(_write(session, settings, name, version, job))
    return outcomes


def _needed_revision(session: Session, job: DnsObservation, version: PolicyVersion) -> int:
    """What the nodes must have applied before the job writes `version`'s id: the revision read after the commit
    of the version it was made for, or, when a newer version came since, the revision now (read after that one)."""
    if job.policy_id == version.policy_id and job.serving_revision is not None:
        return job.serving_revision
    return serving_revision(session)


def _write(session: Session, settings: AppSettings, name: str, version: PolicyVersion,
           job: DnsObservation) -> JobOutcome:
    try:
        attempt = publish_policy_id(session, settings, version.domain, version, job)
    except PublishError as error:
        return JobOutcome(name, "failed", str(error))
    if attempt is None:
        return JobOutcome(name, "dropped", "in manual mode now: publish its records by hand")
    return JobOutcome(name, "published", attempt.findings[0]["message"])


class DueJobs:
    """This process's pending DNS jobs, run when due by one daemon thread (started on first use)."""

    def __init__(self, app: Flask):
        self._app = app
        self._due: list[tuple[datetime, int]] = []
        self._changed = threading.Condition()
        self._pid: int | None = None

    def add(self, due_at: datetime, domain_id: int) -> None:
        with self._changed:
            heapq.heappush(self._due, (due_at, domain_id))
            if self._pid != os.getpid():  # none yet, or a forked worker: the parent's thread is not here
                self._pid = os.getpid()
                threading.Thread(target=self._run, name="dns-jobs", daemon=True).start()
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._due or self._due[0][0] > utcnow():
                    self._changed.wait((self._due[0][0] - utcnow()).total_seconds() if self._due else None)
                _, domain_id = heapq.heappop(self._due)
            self._publish(domain_id)

    def _publish(self, domain_id: int) -> None:
        with self._app.app_context():
            try:
                outcomes = publish_pending(db.session, self._app.extensions["settings"], utcnow(), [domain_id])
            except Exception:
                log.exception("pending DNS update not written; `flask dns publish-pending` will write it")
                outcomes = []
            finally:
                db.session.remove()
        for outcome in outcomes:
            if outcome.state == "failed":
                log.warning("DNS update of %s failed: %s", outcome.domain, outcome.detail)
            if outcome.retry_at is not None:
                self.add(outcome.retry_at, domain_id)


def init_app(app: Flask) -> None:
    app.extensions["dns_jobs"] = DueJobs(app)
