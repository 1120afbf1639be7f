"""/metrics: Prometheus text for the holder of the token, figures from every process and the database."""

import subprocess
import sys
import urllib.request
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from stspolicy.base.counters import record_report_ingested, record_report_refused
from stspolicy.certificates.models import Certificate
from stspolicy.extensions import as_utc, utcnow
from stspolicy.nodes.service import serving_revision
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from tests import databases, factories
from tests.conftest import app_settings
from tests.reports.test_report_cli import report_mail
from tests.support.config import configure
from tests.support.reportdata import gz, report
from tests.support.servers import ROOT, app_environment, gunicorn
from tests.web.test_admin_nodes import two_nodes

TOKEN = "metrics-token-for-tests"


@pytest.fixture
def metrics_app(app, monkeypatch, tmp_path):
    monkeypatch.setitem(app.config, "METRICS_TOKEN", TOKEN)
    configure(monkeypatch, app, CERTS_DIR=tmp_path)
    return app


def scrape(client, token=TOKEN, host="stspolicy.example.net"):
    return client.get("/metrics", headers={"Authorization": f"Bearer {token}", "Host": host})


def samples(text: str) -> dict[tuple, float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_are_off_without_a_token(client):
    assert client.get("/metrics").status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x"])
def test_metrics_need_the_bearer_token(client, metrics_app, header):
    response = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    assert b"stspolicy" not in response.data


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer "])
def test_the_authorization_scheme_is_case_insensitive(client, metrics_app, scheme):
    response = client.get("/metrics", headers={"Authorization": f"{scheme} {TOKEN}"})
    assert response.status_code == 200 and b"stspolicy_hosted_domains" in response.data


def test_metrics_are_never_served_on_a_policy_host(client, metrics_app):
    assert scrape(client, host="mta-sts.example.com").status_code == 404


def test_state_figures_come_from_the_database(client, session, metrics_app, tmp_path):
    add_domain(session, "example.com", make_policy("enforce", ["mx.example.com"], 604800), actor="test")
    add_domain(session, "example.org", make_policy("enforce", ["mx.example.org"], 604800), actor="test")
    now = utcnow()
    session.add(Certificate(host="mta-sts.example.com", serial="1", not_before=now, failures=0,
                            not_after=now + timedelta(days=60), fullchain_pem="chain", key_sealed="sealed key"))
    session.add(Certificate(host="mta-sts.example.org", failures=3, last_error="validation failed"))
    session.commit()
    response = scrape(client)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=")
    figures = samples(response.get_data(as_text=True))
    assert figures[("stspolicy_hosted_domains", ())] == 2
    assert 59.9 < figures[("stspolicy_certificate_days_to_expiry", (("host", "mta-sts.example.com"),))] <= 60
    assert ("stspolicy_certificate_days_to_expiry", (("host", "mta-sts.example.org"),)) not in figures
    assert figures[("stspolicy_certificate_failed_attempts", (("host", "mta-sts.example.org"),))] == 3
    assert figures[("stspolicy_certificates_missing", ())] == 1


def test_recorded_events_show_with_their_labels(client, session, metrics_app):
    before = samples(scrape(client).get_data(as_text=True))
    record_report_ingested("https", 0.02)
    record_report_refused("mail", "invalid_json", 0.001)
    after = samples(scrape(client).get_data(as_text=True))

    def grew(name, labels):
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0)

    assert grew("stspolicy_reports_ingested_total", {"channel": "https"}) == 1
    assert grew("stspolicy_reports_refused_total", {"channel": "mail", "reason": "invalid_json"}) == 1
    assert grew("stspolicy_report_ingest_seconds_count", {"channel": "https"}) == 1


def test_dns_check_figures_come_from_each_domains_latest_stored_check(client, session, metrics_app):
    domain = add_domain(session, "example.com", make_policy("enforce", ["mx1.example.com"], 604800),
                        actor="test").domain
    factories.stored_check(session, domain, [{"level": "error", "check": "mx_set", "code": "mx-unmatched",
                                              "subject": "example.com", "message": "old finding"}])
    latest = factories.stored_check(session, domain, [{"level": "error", "check": "sts_record", "code": "sts-stale-id",
                                                       "subject": "example.com", "message": "publish id 2"}])
    figures = samples(scrape(client).get_data(as_text=True))
    ok = {check: figures[("stspolicy_dns_check_ok", (("check", check), ("domain", "example.com")))]
          for check in ("sts_record", "tlsrpt_record", "policy_host", "mx_set", "mx_hosts")}
    assert ok == {"sts_record": 0, "tlsrpt_record": 1, "policy_host": 1, "mx_set": 1, "mx_hosts": 1}
    checked_at = figures[("stspolicy_dns_checked_timestamp_seconds", (("domain", "example.com"),))]
    assert checked_at == as_utc(latest.observed_at).timestamp()


def test_reports_taken_in_by_https_and_mail_are_counted_by_outcome(client, session, metrics_app):
    add_domain(session, "example.com", make_policy("enforce", ["mx1.example.com"], 604800), actor="test")
    before = samples(scrape(client).get_data(as_text=True))
    gzip_type = {"Content-Type": "application/tlsrpt+gzip"}
    assert client.post("/tlsrpt", data=gz(report(report_id="h1")), headers=gzip_type).status_code == 201
    assert client.post("/tlsrpt", data=gz(report(report_id="h1")), headers=gzip_type).status_code == 200
    assert client.post("/tlsrpt", data=b"{not json", headers=gzip_type).status_code == 400
    unhosted = report(report_id="h2")
    unhosted["policies"][0]["policy"]["policy-domain"] = "not-hosted.example"
    assert client.post("/tlsrpt", data=gz(unhosted), headers=gzip_type).status_code == 422
    assert client.post("/tlsrpt", data=b"{}", headers={"Content-Type": "text/plain"}).status_code == 415
    assert client.post("/tlsrpt/no-such-token", data=gz(report()), headers=gzip_type).status_code == 404
    assert client.get("/tlsrpt").status_code == 405
    runner = metrics_app.test_cli_runner()
    assert runner.invoke(args=["report", "ingest-mail"], input=report_mail(gz(report(report_id="m1")))).exit_code == 0
    assert runner.invoke(args=["report", "ingest-mail"], input=report_mail(None)).exit_code == 65
    after = samples(scrape(client).get_data(as_text=True))

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew("stspolicy_reports_ingested_total", channel="https") == 2
    assert grew("stspolicy_reports_refused_total", channel="https", reason="malformed") == 1
    assert grew("stspolicy_reports_refused_total", channel="https", reason="unhosted") == 1
    assert grew("stspolicy_reports_refused_total", channel="https", reason="media_type") == 1
    assert grew("stspolicy_reports_refused_total", channel="https", reason="unknown_token") == 1
    assert grew("stspolicy_reports_refused_total", channel="https", reason="method") == 1
    assert grew("stspolicy_report_ingest_seconds_count", channel="https") == 7
    assert grew("stspolicy_reports_ingested_total", channel="mail") == 1
    assert grew("stspolicy_reports_refused_total", channel="mail", reason="no_report") == 1
    assert grew("stspolicy_report_ingest_seconds_count", channel="mail") == 2


def test_policy_fetches_answered_by_the_application_are_counted_by_hosted_domain(client, session, metrics_app):
    add_domain(session, "example.com", make_policy("enforce", ["mx1.example.com"], 604800), actor="test")
    before = samples(scrape(client).get_data(as_text=True))
    for host, path in [("mta-sts.example.com", "/.well-known/mta-sts.txt")] * 2 + [
            ("mta-sts.example.com", "/other"), ("mta-sts.attacker-chosen.example", "/.well-known/mta-sts.txt")]:
        client.get(path, headers={"Host": host})
    after = samples(scrape(client).get_data(as_text=True))

    def grew(**labels):
        key = ("stspolicy_policy_fetches_total", tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert grew(domain="example.com", status="200") == 2
    assert grew(domain="example.com", status="404") == 1
    assert grew(domain="-", status="404") == 1
    assert not any("attacker-chosen" in str(key) for key in after)


RECORDER = """
from stspolicy.base.counters import record_report_ingested
for _ in range(3):
    record_report_ingested("mail", 0.01)
"""


@pytest.mark.slow  # gunicorn
def test_under_gunicorn_any_worker_reports_events_from_every_process(new_database, tmp_path):
    url = new_database()
    databases.upgrade(url)
    metrics_dir = tmp_path / "metrics"
    settings = app_settings(url, METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    with gunicorn(settings, workers=2) as base_url:
        # A report piped in by the MTA is taken in by its own short-lived process.
        subprocess.run([sys.executable, "-c", RECORDER], cwd=ROOT, env=app_environment(settings), check=True)
        for _ in range(6):  # new connections, so several workers answer
            request = urllib.request.Request(base_url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                figures = samples(response.read().decode())
            assert figures[("stspolicy_reports_ingested_total", (("channel", "mail"),))] == 3
            assert figures[("stspolicy_hosted_domains", ())] == 0


def test_without_managed_certificates_only_the_other_figures_show(client, session, metrics_app, monkeypatch):
    configure(monkeypatch, metrics_app, CERTS_DIR=None)
    response = scrape(client)
    assert response.status_code == 200
    figures = samples(response.get_data(as_text=True))
    assert ("stspolicy_hosted_domains", ()) in figures
    assert not any(name.startswith("stspolicy_certificate") for name, _ in figures)


def test_metrics_show_how_far_behind_each_node_is_and_which_is_silent(client, session, metrics_app):
    two_nodes(session)
    figures = samples(scrape(client).get_data(as_text=True))
    revision = serving_revision(session)
    assert figures[("stspolicy_serving_revision", ())] == revision
    assert figures[("stspolicy_node_revisions_behind", (("node", "node-a"),))] == 0
    assert figures[("stspolicy_node_revisions_behind", (("node", "node-b"),))] == revision
    assert figures[("stspolicy_node_silent", (("node", "node-b"),))] == 1
    assert figures[("stspolicy_node_silent", (("node", "node-a"),))] == 0
    assert figures[("stspolicy_node_sync_failing", (("node", "node-b"),))] == 1
