"""`/metrics` in the Prometheus text format, for a scraper holding METRICS_TOKEN; 404 when no token is set.

Two kinds of figures. Events (policy fetches, reports taken in or refused, ingest time)
are counted where they happen (stspolicy.base.counters); under gunicorn they go through
prometheus_client's multiprocess files (PROMETHEUS_MULTIPROC_DIR), so any worker answers
for all. State (certificate expiry, hosted domains, the latest DNS check of each domain,
the serving nodes) is read from the database at scrape time. Behind the shipped nginx, which serves policies
from files, policy fetches are counted from nginx's fetch log by mtail
(nginx/policy_fetches.mtail) on mtail's own port, under the same metric name.
"""


import hmac

from flask import Blueprint, Flask, Response, abort, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import func, select

from stspolicy.base.settings import current_settings
from stspolicy.certificates.service import certificate_states
from stspolicy.dns.check import check_results
from stspolicy.dns.queries import latest_observations
from stspolicy.extensions import as_utc, db, utcnow
from stspolicy.nodes.service import node_statuses, serving_revision
from stspolicy.policies.models import Domain

bp = Blueprint("metrics", __name__)


class StateCollector:
    """Figures read from the database when scraped, so every process reports the same."""

    def collect(self):
        settings = current_settings()
        managed = settings.certificates.certs_dir is not None
        states = certificate_states(db.session, settings, utcnow()) if managed else []
        days = GaugeMetricFamily(
            "stspolicy_certificate_days_to_expiry", "Days until the host's certificate expires", labels=["host"]
        )
        failures = GaugeMetricFamily(
            "stspolicy_certificate_failed_attempts", "Consecutive failed ACME attempts for the host", labels=["host"]
        )
        for state in states:
            if state.days_left is not None:
                days.add_metric([state.host], state.days_left)
            failures.add_metric([state.host], state.failures)
        missing = GaugeMetricFamily(
            "stspolicy_certificates_missing", "Served hosts without a certificate in the database",
            value=sum(state.state == "missing" for state in states),
        )
        domains = GaugeMetricFamily(
            "stspolicy_hosted_domains", "Domains whose policy is hosted here",
            value=db.session.scalar(select(func.count(Domain.id))),
        )
        return ([days, failures, missing] if managed else []) + [domains, *dns_check_figures(), *node_figures()]


def node_figures() -> list[GaugeMetricFamily]:
    """Each serving node: how far behind, when last seen, silent, its last sync failed."""
    now = utcnow()
    revision = GaugeMetricFamily("stspolicy_serving_revision", "Revision of the last change of what nodes serve",
                                 value=serving_revision(db.session))
    behind = GaugeMetricFamily("stspolicy_node_revisions_behind", "Changes a serving node has not applied yet",
                               labels=["node"])
    seen = GaugeMetricFamily("stspolicy_node_seen_timestamp_seconds", "When a serving node last synced or said it is "
                             "alive", labels=["node"])
    silent = GaugeMetricFamily("stspolicy_node_silent", "1 when a serving node has not been seen for "
                               "NODE_SILENT_SECONDS", labels=["node"])
    failing = GaugeMetricFamily("stspolicy_node_sync_failing", "1 when a serving node's last sync could not write its "
                                "files", labels=["node"])
    for status in node_statuses(db.session, current_settings().nodes, now):
        behind.add_metric([status.name], status.revisions_behind)
        seen.add_metric([status.name], status.seen_at.timestamp())
        silent.add_metric([status.name], 1 if status.state == "silent" else 0)
        failing.add_metric([status.name], 1 if status.last_error else 0)
    return [revision, behind, seen, silent, failing]


def dns_check_figures() -> list[GaugeMetricFamily]:
    """From each domain's latest stored DNS check, so the figures survive restarts and timers."""
    results = GaugeMetricFamily(
        "stspolicy_dns_check_ok", "Latest DNS check of a hosted domain, per check: 1 no error found, 0 errors",
        labels=["domain", "check"],
    )
    checked_at = GaugeMetricFamily(
        "stspolicy_dns_checked_timestamp_seconds", "When the latest DNS check of a hosted domain ran",
        labels=["domain"],
    )
    for observation in latest_observations(db.session, "check"):
        name = observation.domain.name
        checked_at.add_metric([name], as_utc(observation.observed_at).timestamp())
        if observation.status != "unchecked":
            for check, ok in check_results(observation).items():
                results.add_metric([name, check], 1 if ok else 0)
    return [results, checked_at]


@bp.route("/metrics")
def metrics():
    token = current_app.config["METRICS_TOKEN"]
    if not token:
        abort(404)
    scheme, _, offered = request.headers.get("Authorization", "").strip().partition(" ")
    # The scheme is case-insensitive (RFC 7235 section 2.1).
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered.strip().encode(), token.encode()):
        return Response("a valid bearer token is required\n", status=401, content_type="text/plain; charset=utf-8",
                        headers={"WWW-Authenticate": 'Bearer realm="metrics"'})
    if current_app.config["PROMETHEUS_MULTIPROC_DIR"]:
        events = CollectorRegistry()
        MultiProcessCollector(events, path=str(current_app.config["PROMETHEUS_MULTIPROC_DIR"]))
    else:
        events = REGISTRY
    state = CollectorRegistry()
    state.register(StateCollector())
    return Response(generate_latest(events) + generate_latest(state), content_type=CONTENT_TYPE_LATEST)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
