"""The alert rules in the API and on the pages, the alerts page, subscriptions and webhooks: who may
see and change what (anonymous -> sign-in, another tenant -> 404, viewer -> 403, wrong method -> 405)."""

from datetime import timedelta

import pytest
from bs4 import BeautifulSoup

from reports.alerts.configure import rules_of
from reports.alerts.models import Incident
from reports.alerts.service import run
from reports.alerts.subscriptions import subscribed
from reports.review.findings import KINDS
from stspolicy.accounts.tokens import create_token
from stspolicy.base.audit import AuditEvent
from tests.factories import csrf_token, sign_in
from tests.reports.alerts.craft import NOW
from tests.reports.alerts.test_delivery import SHARED_MX, expiring_mx

RULES_URL = "/api/v1/domains/shared.example/alert-rules"


@pytest.fixture
def bearer(session, people):
    return {name: {"Authorization": f"Bearer {create_token(session, getattr(people, name), 't', actor='t')[1]}"}
            for name in ("admin", "editor", "viewer", "outsider")}


def setting(session, domain, rule):
    return next(r for r in rules_of(session, domain) if r["rule"] == rule)


def test_every_rule_is_on_with_its_defaults_until_changed(client, people, bearer):
    rules = client.get(RULES_URL, headers=bearer["viewer"]).get_json()["rules"]
    assert [r["rule"] for r in rules] == [f"finding-{kind}" for kind in KINDS] + [
        "failure-rate", "new-result-type", "dns-drift", "certificate-expiry", "tlsa-certificate-mismatch",
        "enforce-ready", "reporting-silent"]
    assert all(r["enabled"] and r["parameters"] == r["defaults"] for r in rules)


def test_an_editor_changes_rules_through_the_api_and_the_change_is_in_the_audit_log(client, session, people, bearer):
    response = client.patch(RULES_URL, headers=bearer["editor"], json={
        "failure-rate": {"parameters": {"threshold_percent": 20}}, "enforce-ready": {"enabled": False}})
    assert response.status_code == 200
    assert setting(session, people.shared, "failure-rate")["parameters"]["threshold_percent"] == 20
    assert setting(session, people.shared, "failure-rate")["parameters"]["window_days"] == 2
    assert setting(session, people.shared, "enforce-ready")["enabled"] is False
    event = session.query(AuditEvent).order_by(AuditEvent.id.desc()).first()
    assert event.action == "alerts.rules" and event.detail == {"changes": "enforce-ready, failure-rate"}


@pytest.mark.parametrize(("body", "field"), [
    ({"failure-rate": {"parameters": {"threshold_percent": 0}}}, "failure-rate.threshold_percent"),
    ({"failure-rate": {"parameters": {"threshold_percent": "5"}}}, "failure-rate.threshold_percent"),
    ({"failure-rate": {"parameters": {"no_such": 1}}}, "failure-rate.no_such"),
    ({"no-such-rule": {"enabled": True}}, "no-such-rule"),
    ({"dns-drift": {"enabled": "yes"}}, "dns-drift.enabled"),
    ({"dns-drift": {"other": 1}}, "dns-drift"),
])
def test_a_bad_rule_change_is_a_422_naming_the_field_and_changes_nothing(client, session, people, bearer, body,
                                                                         field):
    body = {"dns-drift": {"enabled": False}, **body}
    response = client.patch(RULES_URL, headers=bearer["editor"], json=body)
    assert response.status_code == 422 and response.get_json()["error"]["field"] == field
    assert setting(session, people.shared, "dns-drift")["enabled"] is True


def test_a_viewer_may_read_but_not_change_rules_and_another_tenant_sees_nothing(client, people, bearer):
    assert client.patch(RULES_URL, headers=bearer["viewer"], json={}).status_code == 403
    assert client.get(RULES_URL, headers=bearer["outsider"]).status_code == 404
    assert client.patch(RULES_URL, headers=bearer["outsider"], json={}).status_code == 404
    assert client.get(RULES_URL).status_code == 401
    assert client.delete(RULES_URL, headers=bearer["admin"]).status_code == 405
    assert client.patch(RULES_URL, headers=bearer["editor"], data="x").status_code == 415


def test_the_openapi_document_describes_the_alert_rules(client):
    document = client.get("/api/v1/openapi.json").get_json()
    path = document["paths"]["/domains/{name}/alert-rules"]
    assert set(path) == {"parameters", "get", "patch"}
    body = path["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["failure-rate"]["properties"]["parameters"]["properties"]["threshold_percent"] == {
        "type": "integer", "minimum": 1, "maximum": 100, "description": "failed sessions, in percent, at least"}


def test_an_editor_changes_rules_in_the_form(client, session, people):
    sign_in(client, people.editor)
    page = client.get("/domains/shared.example/alerts")
    form = BeautifulSoup(page.get_data(as_text=True), "html.parser").find("form", action=lambda a: a and "rules" in a)
    data = {field["name"]: field.get("value", "") for field in form.find_all("input")
            if field.get("type") != "checkbox" or field.has_attr("checked")}
    data["certificate-expiry.days"] = "30"
    del data["reporting-silent.enabled"]
    response = client.post("/domains/shared.example/alerts/rules", data=data)
    assert response.status_code == 302
    assert setting(session, people.shared, "certificate-expiry")["parameters"]["days"] == 30
    assert setting(session, people.shared, "reporting-silent")["enabled"] is False
    data["certificate-expiry.days"] = "900"
    refused = client.post("/domains/shared.example/alerts/rules", data=data)
    assert refused.status_code == 422 and "certificate-expiry.days must be a whole number from 1 to 90" in \
        refused.get_data(as_text=True)


def test_a_viewer_sees_the_rules_without_a_form_to_save_them(client, people):
    sign_in(client, people.viewer)
    html = client.get("/domains/shared.example/alerts").get_data(as_text=True)
    assert "Only the domain's admins and editors change its rules." in html and "Save the rules" not in html
    csrf = csrf_token(client, "/alerts")
    assert client.post("/domains/shared.example/alerts/rules", data={"csrf_token": csrf}).status_code == 403


def test_a_viewer_turns_a_domains_alerts_off_for_themself_but_not_another_tenants(client, session, people):
    sign_in(client, people.viewer)
    csrf = csrf_token(client, "/alerts")
    response = client.post("/alerts/subscriptions/shared.example", data={"csrf_token": csrf, "alerts": "no"})
    assert response.status_code == 302 and subscribed(session, people.viewer, people.shared) is False
    assert subscribed(session, people.editor, people.shared) is True
    other = client.post("/alerts/subscriptions/foreign.example", data={"csrf_token": csrf, "alerts": "no"})
    assert other.status_code == 404
    assert client.get("/domains/foreign.example/alerts").status_code == 404


def test_a_webhook_secret_is_shown_once_and_another_users_webhook_cannot_be_removed(client, session, people):
    sign_in(client, people.editor)
    csrf = csrf_token(client, "/alerts")
    page = client.post("/alerts/webhooks", data={"csrf_token": csrf, "url": "https://hooks.example.net/x",
                                                 "payload_format": "slack"})
    soup = BeautifulSoup(page.get_data(as_text=True), "html.parser")
    assert len(soup.find(id="webhook-secret").text) == 64
    assert "webhook-secret" not in client.get("/alerts").get_data(as_text=True)
    hook_id = soup.find("input", attrs={"name": "id"})["value"]
    sign_in(client, people.outsider)
    csrf = csrf_token(client, "/alerts")
    assert client.post("/alerts/webhooks/remove", data={"csrf_token": csrf, "id": hook_id}).status_code == 404
    bad = client.post("/alerts/webhooks", data={"csrf_token": csrf, "url": "ftp://x", "payload_format": "json"},
                      follow_redirects=True)
    assert "the webhook needs an https:// (or http://) URL" in bad.get_data(as_text=True)


def test_the_alert_pages_need_a_sign_in(client, people):
    for path in ("/alerts", "/domains/shared.example/alerts"):
        assert client.get(path).headers["Location"].startswith("/login")


def test_the_alerts_page_shows_an_incident_in_the_readers_language_and_an_older_one_in_its_english(
        client, session, people, alert_settings):
    expiring_mx(session, people.shared)
    run(session, NOW, alert_settings, digest=False)
    # As stored before incidents kept their texts' templates: English only.
    session.add(Incident(rule="reporting-silent", subject="Old Org", key="reporting-silent:Old Org",
                         title="Old Org stopped sending TLS reports", since=NOW, opened_at=NOW,
                         last_seen_at=NOW, resolved_at=NOW + timedelta(hours=2), evidence={}, lines=[],
                         fix="Check that the _smtp._tls record still names this service.", domains=[]))
    session.commit()
    sign_in(client, people.admin)
    for path, language in (("/alerts", "fr"), ("/domains/shared.example/alerts", "fr"), ("/alerts", "en")):
        soup = BeautifulSoup(client.get(path, headers={"Accept-Language": language}).get_data(as_text=True),
                             "html.parser")
        incidents = soup.find(id="incidents").get_text()
        if language == "fr":
            assert f"Le certificat du MX {SHARED_MX} expire" in incidents
            assert f"{SHARED_MX} : expire le " in incidents and "(reste 5 jours)" in incidents
            assert f"shared.example : le MX {SHARED_MX} l’utilise" in incidents
            assert f"Renouvelez le certificat de {SHARED_MX}." in incidents
            assert "The certificate" not in incidents and "Renew" not in incidents
        else:
            assert f"The certificate of MX {SHARED_MX} expires" in incidents
            assert f"Renew the certificate of {SHARED_MX}." in incidents
        english = [element.get_text() for element in soup.find(id="incidents").select("[lang=en]")]
        if path == "/alerts":  # the older incident concerns the intake as a whole: an admin's
            assert english == ["Old Org stopped sending TLS reports",
                               "Check that the _smtp._tls record still names this service."]
        else:
            assert english == []
