"""UPD-02: an edit that drops MX patterns says until when senders may still apply the old policy
(its max_age plus the `_mta-sts` TXT TTL), offers the safe sequence, and can schedule the removal,
in the form, the CLI and the API alike (RFC 8461 section 8.1)."""

import re
from datetime import UTC, datetime, timedelta

from bs4 import BeautifulSoup

from stspolicy.accounts.tokens import create_token
from stspolicy.extensions import utcnow
from stspolicy.policies.models import ScheduledMxRemoval
from stspolicy.policies.queries import current_version, scheduled_mx_removals
from stspolicy.policies.rules import make_policy, mx_removal
from stspolicy.policies.service import apply_due_mx_removals, change_policy
from tests import factories
from tests.factories import csrf_token, sign_in

YEAR = 31557600
TXT_TTL = 300  # the tests' _mta-sts TTL (DNS_RECORD_TTL's default)


def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def long_lived(session, name="enforce.example"):
    domain = factories.host(session, name, mode="enforce", mx=("mx1.{}", "mx2.{}"))
    change_policy(session, domain, max_age=YEAR, actor="test", txt_ttl=TXT_TTL)
    return domain


def test_the_old_policy_holds_for_its_max_age_plus_the_txt_ttl_from_when_it_was_last_served():
    old = make_policy("enforce", ["mx1.example.com", "mx2.example.com"], YEAR)
    new = make_policy("enforce", ["mx3.example.com"], 86400)
    served_until = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    removal = mx_removal(old, "20261201", new, served_until, 300)
    assert removal.removed == ("mx1.example.com", "mx2.example.com")
    assert removal.old_policy_until == served_until + timedelta(seconds=YEAR + 300)
    assert removal.safe_policy == make_policy("enforce", ["mx3.example.com", "mx1.example.com", "mx2.example.com"],
                                              86400)
    assert "until 2027-12-04 18:05 UTC" in removal.message() and "add the new MX hosts first" in removal.message()
    assert mx_removal(old, "1", make_policy("enforce", ["mx1.example.com", "mx2.example.com", "mx3.example.com"],
                                            YEAR), served_until, 300) is None
    assert mx_removal(old, "1", make_policy("none", [], 86400), served_until, 300) is None


def test_the_cli_says_until_when_and_schedules_the_removal_on_request(cli, session):
    domain = long_lived(session)
    before = utcnow()
    result = cli("domain", "update", "enforce.example", "--mx", "mx3.enforce.example")
    assert result.exit_code == 0, result.output
    until = re.search(r"may apply it until (\S+ \S+) UTC", result.stderr).group(1)
    expected = before + timedelta(seconds=YEAR + TXT_TTL)
    assert abs(datetime.strptime(until, "%Y-%m-%d %H:%M").replace(tzinfo=UTC) - expected) < timedelta(minutes=2)
    assert "--schedule-removal" in result.stderr

    change_policy(session, domain, mx_patterns=["mx1.enforce.example", "mx2.enforce.example"], actor="test",
                  txt_ttl=TXT_TTL)
    result = cli("domain", "update", "enforce.example", "--mx", "mx3.enforce.example", "--schedule-removal")
    assert result.exit_code == 0, result.output
    assert "kept mx1.enforce.example, mx2.enforce.example in the policy until" in result.output
    assert current_version(session, domain).mx_patterns == [
        "mx3.enforce.example", "mx1.enforce.example", "mx2.enforce.example"]
    [scheduled] = scheduled_mx_removals(session, domain)
    assert scheduled.due_at > utcnow() + timedelta(days=365)

    assert "0 scheduled removal(s) due" in cli("domain", "apply-scheduled").output
    scheduled.due_at = utcnow() - timedelta(seconds=1)
    session.commit()
    result = cli("domain", "apply-scheduled")
    assert "enforce.example: scheduled mx removal applied" in result.output
    assert current_version(session, domain).mx_patterns == ["mx3.enforce.example"]
    assert scheduled_mx_removals(session, domain) == []


def test_a_due_removal_that_would_empty_the_policy_is_skipped_and_audited(session):
    domain = long_lived(session)
    session.add(ScheduledMxRemoval(domain=domain, mx_patterns=["mx1.enforce.example", "mx2.enforce.example"],
                                   due_at=utcnow() - timedelta(seconds=1), created_by="test"))
    session.commit()
    assert apply_due_mx_removals(session, utcnow()) == [("enforce.example", None)]
    assert current_version(session, domain).mx_patterns == ["mx1.enforce.example", "mx2.enforce.example"]
    assert apply_due_mx_removals(session, utcnow()) == []


def test_the_form_asks_how_then_keeps_the_old_mx_until_the_date_or_removes_it_now(client, session, people):
    domain = long_lived(session)
    sign_in(client, people.admin)
    form = {"mode": "enforce", "max_age": str(YEAR), "mx-0": "mx2.enforce.example", "mx-1": "mx3.enforce.example"}
    token = csrf_token(client, "/tokens")
    asked = client.post("/domains/enforce.example/policy", data={"csrf_token": token, **form})
    html = page(asked)
    assert asked.status_code == 200 and "Remove mx1.enforce.example from enforce.example?" in html.h1.text
    assert "The safe sequence" in html.text and html.select_one("#old-policy-until time")["datetime"]
    assert current_version(session, domain).mx_patterns == ["mx1.enforce.example", "mx2.enforce.example"]

    kept = client.post("/domains/enforce.example/policy", data={"csrf_token": token, **form, "mx_removal": "schedule"})
    assert kept.status_code == 302
    assert current_version(session, domain).mx_patterns == [
        "mx2.enforce.example", "mx3.enforce.example", "mx1.enforce.example"]
    shown = page(client.get("/domains/enforce.example"))
    assert "mx1.enforce.example leaves the policy at" in shown.select_one("#scheduled-removals").text
    assert "scheduled the removal of mx1.enforce.example" in shown.select_one("#audit").text
    cancel = shown.select_one("#scheduled-removals form")["action"]
    assert client.post(cancel, data={"csrf_token": token}).status_code == 302
    assert scheduled_mx_removals(session, domain) == []
    assert client.post(cancel, data={"csrf_token": token}).status_code == 404

    now = client.post("/domains/enforce.example/policy", data={"csrf_token": token, **form, "mx_removal": "now"})
    assert now.status_code == 302
    assert current_version(session, domain).mx_patterns == ["mx2.enforce.example", "mx3.enforce.example"]
    assert "may apply it until" in page(client.get("/domains/enforce.example")).select_one(".flash.warn").text


def test_a_viewer_sees_a_scheduled_removal_but_cannot_cancel_it(client, session, people):
    change_policy(session, people.shared, mx_patterns=["mx2.shared.example"], actor="test", txt_ttl=TXT_TTL,
                  schedule_mx_removal=True)
    sign_in(client, people.viewer)
    html = page(client.get("/domains/shared.example"))
    assert "mx1.shared.example, *.mx.shared.example leave the policy" in html.select_one("#scheduled-removals").text
    assert not html.select("#scheduled-removals form")
    removal_id = scheduled_mx_removals(session, people.shared)[0].id
    response = client.post(f"/domains/shared.example/mx-removals/{removal_id}/cancel",
                           data={"csrf_token": csrf_token(client, "/tokens")})
    assert response.status_code == 403


def test_the_api_says_until_when_and_schedules_on_request(client, session, people):
    long_lived(session)
    secret = create_token(session, people.admin, "api", actor="test")[1]
    headers = {"Authorization": f"Bearer {secret}"}
    answer = client.patch("/api/v1/domains/enforce.example", headers=headers,
                          json={"mx": ["mx2.enforce.example", "mx3.enforce.example"], "schedule_mx_removal": True})
    body = answer.get_json()
    assert answer.status_code == 200 and body["mx"] == ["mx2.enforce.example", "mx3.enforce.example",
                                                        "mx1.enforce.example"]
    assert body["mx_removal"]["removed"] == ["mx1.enforce.example"] and body["mx_removal"]["scheduled"] is True
    until = datetime.fromisoformat(body["mx_removal"]["old_policy_until"])
    assert abs(until - (utcnow() + timedelta(seconds=YEAR + TXT_TTL))) < timedelta(minutes=2)
    answer = client.put("/api/v1/domains/enforce.example/policy", headers=headers,
                        json={"mode": "enforce", "mx": ["mx3.enforce.example"], "max_age": 86400})
    assert answer.get_json()["mx_removal"]["scheduled"] is False
    assert answer.get_json()["mx"] == ["mx3.enforce.example"]


def test_a_rollback_that_drops_an_mx_says_until_when_too(cli, client, session, people):
    domain = long_lived(session)
    first = current_version(session, domain).policy_id
    change_policy(session, domain, mx_patterns=["mx1.enforce.example", "mx2.enforce.example", "mx3.enforce.example"],
                  actor="test", txt_ttl=TXT_TTL)
    result = cli("domain", "rollback", "enforce.example", first)
    assert "warning: mx3.enforce.example leaves the policy" in result.stderr
    third = change_policy(session, domain, mx_patterns=["mx1.enforce.example", "mx2.enforce.example",
                                                        "mx3.enforce.example"], actor="test", txt_ttl=TXT_TTL)
    secret = create_token(session, people.admin, "api", actor="test")[1]
    answer = client.post("/api/v1/domains/enforce.example/rollback", headers={"Authorization": f"Bearer {secret}"},
                         json={"policy_id": first}).get_json()
    assert answer["mx_removal"]["removed"] == ["mx3.enforce.example"] and answer["mx_removal"]["scheduled"] is False
    assert answer["mx_removal"]["old_policy_id"] == third.version.policy_id
