"""/api/v1 reports and failure groups: filters, pages, one report and its raw body, tenancy."""

import gzip

import pytest

from stspolicy.accounts.tokens import create_token
from tests.factories import store_report as store
from tests.support.reportdata import daily_report, encode, failure, sts_block, tlsa_block
from tests.support.reportdata import days_ago as day


@pytest.fixture
def bearer(session, people):
    return {name: {"Authorization": f"Bearer {create_token(session, getattr(people, name), 'test', actor='test')[1]}"}
            for name in ("admin", "viewer", "outsider")}


def test_reports_of_a_domain_with_filters_and_pages(client, bearer, reported):
    answer = client.get("/api/v1/domains/shared.example/reports", headers=bearer["viewer"]).get_json()
    assert answer["total"] == 3 and answer["page"] == 1
    assert [row["report_id"] for row in answer["reports"]] == ["microsoft-1", "google-2", "google-1"]
    assert answer["reports"][0]["policy_types"] == ["sts", "tlsa"]
    assert (answer["reports"][0]["successful_session_count"], answer["reports"][0]["failed_session_count"]) == (
        120, 10)
    filtered = client.get("/api/v1/domains/shared.example/reports?result_type=certificate-expired&org=Google+Inc.",
                          headers=bearer["viewer"]).get_json()
    assert [row["report_id"] for row in filtered["reports"]] == ["google-1"]
    second = client.get("/api/v1/domains/shared.example/reports?per_page=2&page=2", headers=bearer["viewer"])
    assert [row["report_id"] for row in second.get_json()["reports"]] == ["google-1"]


def test_one_report_and_its_raw_body(client, session, bearer, people):
    document = daily_report("sys4", tlsa_block("a.mx.shared.example", 1, 1, failure("tlsa-invalid", 1)),
                            sts_block("shared.example", 5, 2, failure("validation-failure", 2, "mx1.shared.example",
                                                                      "192.0.2.9", additional_information="x")),
                            organization="MTA-STS Lab Sender", day=day(1))
    report_id = store(session, document, gzip.compress(encode(document)))
    answer = client.get(f"/api/v1/domains/shared.example/reports/{report_id}", headers=bearer["viewer"]).get_json()
    assert answer["organization_name"] == "MTA-STS Lab Sender" and answer["hidden_policies"] == 0
    assert [(p["policy_type"], p["hosted_domain"]) for p in answer["policies"]] == [
        ("tlsa", "shared.example"), ("sts", "shared.example")]
    assert answer["policies"][1]["failure_details"] == [{
        "result_type": "validation-failure", "failed_session_count": 2, "sending_mta_ip": "192.0.2.9",
        "receiving_ip": None, "receiving_mx_hostname": "mx1.shared.example", "receiving_mx_helo": None,
        "additional_information": "x", "failure_reason_code": None}]
    raw = client.get(f"/api/v1/domains/shared.example/reports/{report_id}/raw", headers=bearer["viewer"])
    assert raw.status_code == 200 and raw.data == encode(document)


def test_failures_grouped_by_any_dimensions(client, bearer, reported):
    answer = client.get("/api/v1/domains/shared.example/failures?by=org,result_type", headers=bearer["viewer"])
    assert answer.get_json()["groups"] == [
        {"org": "Google Inc.", "result_type": "certificate-expired", "failed_session_count": 60},
        {"org": "Microsoft Corporation", "result_type": "tlsa-invalid", "failed_session_count": 10},
        {"org": "Google Inc.", "result_type": "starttls-not-supported", "failed_session_count": 5},
    ]
    by_day = client.get("/api/v1/domains/shared.example/failures?by=day,policy_type,mx,ip&policy_type=sts",
                        headers=bearer["viewer"]).get_json()["groups"]
    assert by_day == [
        {"day": day(2), "policy_type": "sts", "mx": "mx1.shared.example", "ip": "192.0.2.25",
         "failed_session_count": 60},
        {"day": day(1), "policy_type": "sts", "mx": "mx1.shared.example", "ip": "192.0.2.26",
         "failed_session_count": 5},
    ]


@pytest.mark.parametrize(("query", "field"), [
    ("by=day,day", "by"), ("by=organisation", "by"), ("since=yesterday", "since"), ("policy_type=dane", "policy_type"),
    ("until=2026-01-01&since=2026-02-01", "since"), ("sort=asc", "sort"),
])
def test_a_wrong_query_parameter_is_a_422_naming_it(client, bearer, query, field):
    response = client.get(f"/api/v1/domains/shared.example/failures?{query}", headers=bearer["viewer"])
    assert response.status_code == 422 and response.get_json()["error"]["field"] == field


def test_another_tenants_reports_are_404(client, bearer, reported):
    foreign = reported["foreign-1"]
    for path in ("/api/v1/domains/foreign.example/reports", "/api/v1/domains/foreign.example/failures",
                 f"/api/v1/domains/foreign.example/reports/{foreign}",
                 f"/api/v1/domains/shared.example/reports/{foreign}",
                 f"/api/v1/domains/shared.example/reports/{foreign}/raw"):
        assert client.get(path, headers=bearer["viewer"]).status_code == 404, path


def test_the_raw_report_is_refused_when_part_of_it_is_another_tenants(client, session, bearer, people):
    both = store(session, daily_report("both", sts_block("shared.example", 3, 0), sts_block("foreign.example", 4, 0),
                                       day=day(1)))
    answer = client.get(f"/api/v1/domains/shared.example/reports/{both}", headers=bearer["viewer"]).get_json()
    assert answer["hidden_policies"] == 1 and len(answer["policies"]) == 1
    assert client.get(f"/api/v1/domains/shared.example/reports/{both}/raw", headers=bearer["viewer"]).status_code == 403
    assert client.get(f"/api/v1/domains/shared.example/reports/{both}/raw", headers=bearer["admin"]).status_code == 200
