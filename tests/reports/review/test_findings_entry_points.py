"""`flask report findings` and GET /api/v1/domains/<name>/findings: exit codes for cron, tenancy for tokens."""

import json

import pytest

from stspolicy.accounts.tokens import create_token
from tests.reports.alerts.craft import NOW, block, day, report

EXPIRED = ("certificate-expired", "mx1.shared.example", 6)


@pytest.fixture
def expired(session, people):
    """Google reports an expired certificate on shared.example's MX."""
    report(session, "Google Inc.", day(1), [block("shared.example", 10, 6, (EXPIRED,), mx=("mx1.shared.example",
                                                                                          "*.mx.shared.example"))])


def test_no_finding_exits_0(cli, people):
    result = cli("report", "findings")
    assert result.exit_code == 0 and result.output.endswith("0 finding(s) from " + result.output.split(" from ")[1])


def test_findings_exit_1_and_print_the_fix(cli, expired):
    result = cli("report", "findings", "shared.example")
    assert result.exit_code == 1
    assert "shared.example  certificate-problem  sender" in result.output
    assert "renew the certificate of mx1.shared.example" in result.output


def test_json_lists_each_finding_with_its_fields(cli, expired):
    result = cli("report", "findings", "--json")
    [found] = json.loads(result.output)
    assert result.exit_code == 1 and sorted(found) == ["domain", "evidence", "fix", "kind", "side", "since", "until"]
    assert found["evidence"]["organisations"] == {"Google Inc.": 6}


def test_a_range_before_the_reports_has_no_finding(cli, expired):
    result = cli("report", "findings", "--since", "2025-01-01", "--until", "2025-02-01")
    assert result.exit_code == 0 and "0 finding(s) from 2025-01-01 00:00 to 2025-02-01 00:00 UTC" in result.output


@pytest.mark.parametrize(("arguments", "message"), [
    (("not-hosted.example",), "not hosted"),
    (("--since", "2026-02-01", "--until", "2026-01-01"), "--since: since must be before until"),
    (("--since", "1970-01-01"), "--since: since must be between"),
])
def test_what_cannot_be_looked_at_exits_2(cli, people, arguments, message):
    result = cli("report", "findings", *arguments)
    assert result.exit_code == 2 and message in result.output


def test_report_fields_reach_the_terminal_without_control_characters(cli, session, people):
    report(session, "Evil\x1b[2J Org", day(1), [block("shared.example", 1, 1, (
        ("starttls-not-supported", "mx1.shared.example", 1),), mx=("mx1.shared.example", "*.mx.shared.example"))])
    result = cli("report", "findings")
    assert "\x1b" not in result.output and "Evil\\x1b[2J Org" in result.output


@pytest.fixture
def bearer(session, people):
    return {name: {"Authorization": f"Bearer {create_token(session, getattr(people, name), 'test', actor='test')[1]}"}
            for name in ("admin", "viewer", "outsider")}


def test_a_viewer_reads_the_findings_of_the_domain(client, expired, bearer):
    answer = client.get("/api/v1/domains/shared.example/findings", headers=bearer["viewer"]).get_json()
    [found] = answer["findings"]
    assert (answer["domain"], found["kind"], found["side"]) == ("shared.example", "certificate-problem", "sender")
    assert answer["since"] < f"{day(1)}" < answer["until"] <= (NOW.replace(year=NOW.year + 1)).isoformat()


def test_another_tenants_domain_is_404_and_no_token_401(client, expired, bearer):
    assert client.get("/api/v1/domains/shared.example/findings", headers=bearer["outsider"]).status_code == 404
    assert client.get("/api/v1/domains/shared.example/findings").status_code == 401


@pytest.mark.parametrize(("query", "field"), [
    ("since=yesterday", "since"), ("until=2026-13-01", "until"), ("since=2026-02-01&until=2026-01-01", "since"),
    ("since=0001-01-01T00:00:00Z", "since"), ("from=2026-01-01", "from"),
])
def test_a_bad_range_is_422_naming_the_field(client, people, bearer, query, field):
    response = client.get(f"/api/v1/domains/shared.example/findings?{query}", headers=bearer["admin"])
    assert response.status_code == 422 and response.get_json()["error"]["field"] == field


def test_a_range_given_as_dates_and_times(client, expired, bearer):
    response = client.get(f"/api/v1/domains/shared.example/findings?since={day(2)}&until={day(0)}T00:00:00Z",
                          headers=bearer["admin"])
    assert response.status_code == 200 and len(response.get_json()["findings"]) == 1
