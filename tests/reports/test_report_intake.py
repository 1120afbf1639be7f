"""POST /tlsrpt and /tlsrpt/<token>: status codes, exactly-once storage, domain and version links."""

import base64
import gzip
import os
from datetime import date

import pytest
from sqlalchemy import func, select

from reports.models import (
    MATCHED,
    MATCHES_NONE,
    ROLLUP_CEILING,
    ROLLUP_SHARDS,
    DailyRollup,
    FailureDetail,
    Report,
    ReportPolicy,
)
from reports.queries import rollup_totals
from reports.tokens import create_report_token
from stspolicy.app import create_app
from stspolicy.extensions import db
from stspolicy.policies.queries import get_domain
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain, remove_domain, update_policy
from tests import databases
from tests.conftest import app_settings
from tests.factories import csrf_token
from tests.support.reportdata import CASES, SAMPLE_COUNTS, SAMPLES, VALID, encode, gz, report
from tests.support.servers import free_port

GZ = {"Content-Type": "application/tlsrpt+gzip"}


@pytest.fixture
def hosted(session):
    """example.com hosted with the policy the VALID report applied."""
    return add_domain(session, "example.com", make_policy("enforce", ["mx1.example.com"], 604800), actor="test")


def post(client, body: bytes, content_type="application/tlsrpt+gzip", path="/tlsrpt"):
    headers = {"Content-Type": content_type} if content_type else {}
    return client.post(path, data=body, headers=headers)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize(("name", "content_type", "build", "status"), CASES, ids=[case[0] for case in CASES])
def test_corpus_input_gets_its_status(client, session, hosted, name, content_type, build, status):
    response = post(client, build(), content_type)
    assert response.status_code == status, response.get_json()
    assert count(session, Report) == (1 if status == 201 else 0)
    if status != 201:
        assert response.get_json()["error"]
    if status in (400, 422):
        assert response.get_json()["path"].startswith("$")


def test_a_report_of_ten_megabytes_compressed_is_stored(client, session, hosted):
    """RFC 8460 section 5.2: "a commonly observed receiver limit is ten megabytes"."""
    padding = [base64.b64encode(os.urandom(3000)).decode() for _ in range(3350)]  # does not compress
    body = gzip.compress(encode(report(extension=padding)), 1)
    assert 10_000_000 <= len(body) <= 10 * 1024 * 1024
    assert post(client, body).status_code == 201


def test_malformed_report_names_the_json_path(client, hosted):
    document = report()
    document["policies"][0]["summary"]["total-successful-session-count"] = "10"
    response = post(client, encode(document), "application/tlsrpt+json")
    assert response.status_code == 400
    assert response.get_json() == {
        "error": "must be an integer, not a string",
        "path": "$.policies[0].summary.total-successful-session-count",
    }


def test_resend_of_stored_report_is_a_noop(client, session, hosted):
    first = post(client, gz(VALID))
    again = post(client, encode(VALID), "application/tlsrpt+json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["status"] == "duplicate"
    assert (count(session, Report), count(session, ReportPolicy), count(session, FailureDetail)) == (1, 1, 1)
    assert session.scalar(select(DailyRollup.session_count).where(DailyRollup.result_type == "success")) == 10


def test_stored_report_keeps_raw_bytes_source_and_failure_details(client, session, hosted):
    body = gz(VALID)
    assert post(client, body).status_code == 201
    stored = session.scalars(select(Report)).one()
    assert gzip.decompress(stored.raw_gzip) == encode(VALID)
    assert stored.source == "https"
    assert len(stored.sha256) == 64
    detail = session.scalars(select(FailureDetail)).one()
    assert (detail.result_type, detail.receiving_mx_hostname, detail.failed_session_count) == (
        "certificate-expired", "mx1.example.com", 2)


def test_rollups_add_up_per_day_domain_type_result_and_mx(client, session, hosted):
    post(client, gz(VALID))
    post(client, gz(report(report_id="report-2")))
    post(client, gz(report(report_id="report-3", date_range={"start-datetime": "2026-11-02T00:00:00Z",
                                                           "end-datetime": "2026-11-02T23:59:59Z"})))
    day = date(2026, 11, 1)
    assert rollup_totals(session, "example.com", since=day) == {
        (day, "example.com", "sts", "success", ""): 20,
        (day, "example.com", "sts", "failure", ""): 4,
        (day, "example.com", "sts", "certificate-expired", "mx1.example.com"): 4,
        (date(2026, 11, 2), "example.com", "sts", "success", ""): 10,
        (date(2026, 11, 2), "example.com", "sts", "failure", ""): 2,
        (date(2026, 11, 2), "example.com", "sts", "certificate-expired", "mx1.example.com"): 2,
    }
    assert rollup_totals(session, "example.org") == {}


def test_a_rollup_flooded_to_its_ceiling_stays_there_and_takes_valid_reports(client, session, hosted):
    day = date(2026, 11, 1)
    session.add_all([DailyRollup(day=day, policy_domain="example.com", policy_type="sts", result_type="success",
                                 mx_host="", shard=shard, session_count=ROLLUP_CEILING - 1)
                     for shard in range(ROLLUP_SHARDS)])
    session.commit()
    assert post(client, gz(VALID)).status_code == 201
    counts = session.scalars(select(DailyRollup.session_count).where(DailyRollup.result_type == "success")).all()
    assert sorted(counts) == [ROLLUP_CEILING - 1] * (ROLLUP_SHARDS - 1) + [ROLLUP_CEILING]


def test_sts_block_links_the_policy_version_the_sender_applied(client, session, hosted):
    domain = get_domain(session, "example.com")
    update_policy(session, domain, mode="testing", actor="test")
    post(client, gz(VALID))  # the sender applied the first (enforce) version
    block = session.scalars(select(ReportPolicy)).one()
    assert (block.domain_id, block.policy_version_id, block.policy_match) == (domain.id, hosted.id, MATCHED)


def test_sts_block_with_a_policy_we_never_served_matches_none_of_ours(client, session, hosted):
    document = report()
    document["policies"][0]["policy"]["policy-string"] = ["version: STSv1", "mode: enforce",
                                                          "mx: other.example.net", "max_age: 604800"]
    post(client, gz(document))
    block = session.scalars(select(ReportPolicy)).one()
    assert (block.policy_version_id, block.policy_match) == (None, MATCHES_NONE)


def test_dane_block_about_an_mx_host_links_the_domain_whose_policy_names_it(client, session, hosted):
    document = report()
    document["policies"][0]["policy"] = {"policy-type": "tlsa", "policy-domain": "mx1.example.com",
                                         "policy-string": ["3 1 1 " + "ab" * 32]}
    assert post(client, gz(document)).status_code == 201
    assert session.scalars(select(ReportPolicy)).one().domain_id == hosted.domain_id


def test_report_survives_the_removal_of_its_domain(client, session, hosted):
    post(client, gz(VALID))
    remove_domain(session, get_domain(session, "example.com"), actor="test", force=True)
    session.expire_all()
    block = session.scalars(select(ReportPolicy)).one()
    assert (block.domain_id, block.policy_version_id, block.policy_domain) == (None, None, "example.com")
    assert count(session, FailureDetail) == 1


def test_unhosted_reports_are_accepted_when_configured(migrated_database):
    app = create_app(app_settings(migrated_database, TLSRPT_ACCEPT_UNHOSTED="true"))
    with app.app_context():
        response = app.test_client().post("/tlsrpt", data=gz(report(report_id="unhosted-accepted")), headers=GZ)
        assert response.status_code == 201
        db.session.execute(Report.__table__.delete().where(Report.report_id == "unhosted-accepted"))
        db.session.commit()
        databases.release_connections()


@pytest.mark.parametrize("name", [n for n in SAMPLE_COUNTS if not n.endswith(".eml")])
def test_every_json_sample_is_stored_over_https_with_its_counts(client, session, name):
    organization, report_id, blocks = SAMPLE_COUNTS[name]
    for _, domain, *_ in blocks:
        if not session.scalar(select(func.count()).where(ReportPolicy.policy_domain == domain)):
            try:
                get_domain(session, domain)
            except Exception:
                add_domain(session, domain, make_policy("testing", ["mx." + domain], 86400), actor="test")
    response = post(client, (SAMPLES / name).read_bytes(), "application/tlsrpt+json")
    assert response.status_code == 201, response.get_json()
    stored = session.scalars(select(Report)).one()
    assert (stored.organization_name, stored.report_id) == (organization, report_id)
    assert [(p.policy_type, p.policy_domain, p.successful_session_count, p.failed_session_count)
            for p in stored.policies] == [block[:4] for block in blocks]
    assert count(session, FailureDetail) == sum(block[4] for block in blocks)


def test_token_url_takes_reports_about_its_domains_only(client, session, hosted):
    add_domain(session, "example.org", make_policy("testing", ["mx.example.org"], 86400), actor="test")
    token = create_report_token(session, ["example.org"], "tenant org")
    other = report()
    other["policies"][0]["policy"]["policy-domain"] = "example.org"
    assert post(client, gz(VALID), path=f"/tlsrpt/{token.token}").status_code == 422
    assert post(client, gz(other), path=f"/tlsrpt/{token.token}").status_code == 201
    assert post(client, gz(other), path="/tlsrpt/not-a-token").status_code == 404
    for odd in ("%00", "t%C3%B6ken", "x" * 65):  # a NUL cannot even be queried on PostgreSQL
        assert post(client, gz(other), path=f"/tlsrpt/{odd}").status_code == 404


@pytest.mark.parametrize(("content_type", "body", "headers", "note"), [
    ("application/tlsrpt+gzip", encode(VALID), {}, "https: declared application/tlsrpt+gzip, the body is plain JSON"),
    ("application/tlsrpt+json", gz(VALID), {}, "https: declared application/tlsrpt+json, the body is gzip"),
    ("application/tlsrpt+json", gz(VALID), {"Content-Encoding": "gzip"}, "https: Content-Encoding gzip"),
    ("application/json", encode(VALID), {}, "https: declared media type application/json"),
    ("application/tlsrpt+gzip", gz(gz(VALID)), {"Content-Encoding": "gzip"}, "gzip inside gzip"),
])
def test_a_body_that_is_not_what_its_headers_say_is_taken_and_noted(client, session, hosted, content_type, body,
                                                                     headers, note):
    """HTTPS-01: gzip is told by its magic bytes whatever the headers say."""
    assert client.post("/tlsrpt", data=body, headers={"Content-Type": content_type} | headers).status_code == 201
    assert note in session.scalars(select(Report.notes)).one()


def test_a_no_policy_found_report_without_a_domain_is_kept_for_the_report_urls_domain(client, session, hosted):
    """JSON-10: the per-tenant URL names the domain; the block then counts for it."""
    token = create_report_token(session, ["example.com"], "tenant")
    document = report(report_id="no-domain-in-this-id", contact_info=None, policies=[{
        "policy": {"policy-type": "no-policy-found"},
        "summary": {"total-successful-session-count": 12, "total-failure-session-count": 0}}])
    assert post(client, gz(document), path="/tlsrpt").status_code == 422  # nothing names a domain
    assert post(client, gz(document), path=f"/tlsrpt/{token.token}").status_code == 201
    stored = session.scalars(select(Report)).one()
    assert [(block.policy_domain, block.domain_id) for block in stored.policies] == [("example.com", hosted.domain_id)]
    assert "$.policies[0].policy.policy-domain: missing, read as example.com from the report URL" in stored.notes
    assert rollup_totals(session, "example.com")[(date(2026, 11, 1), "example.com", "no-policy-found",
                                                  "success", "")] == 12


def test_an_odd_content_length_is_no_fault(client):
    answer = client.post("/tlsrpt", data=b"{}", headers=GZ, environ_overrides={"CONTENT_LENGTH": "\u00b2"})
    assert answer.status_code != 500


def test_other_methods_are_not_allowed(client):
    assert client.get("/tlsrpt").status_code == 405
    assert client.put("/tlsrpt", data=b"{}").status_code == 405


def test_policy_hosts_do_not_take_reports(client, hosted):
    response = client.post("/tlsrpt", data=gz(VALID), headers=GZ | {"Host": "mta-sts.example.com"})
    assert response.status_code == 404


def test_rate_limit_answers_429(new_database):
    url = new_database()
    from tests import databases

    databases.upgrade(url)
    app = create_app(app_settings(url, TLSRPT_RATE_LIMIT="3 per minute"))
    client = app.test_client()
    statuses = [client.post("/tlsrpt", data=b"", headers=GZ).status_code for _ in range(5)]
    assert statuses == [400, 400, 400, 429, 429]
    assert "too many reports" in client.post("/tlsrpt", data=b"", headers=GZ).get_json()["error"]
    with app.app_context():
        databases.release_connections()


def test_failure_details_over_an_addresses_budget_answer_429_and_413_before_anything_is_stored(new_database):
    url = new_database()
    databases.upgrade(url)
    app = create_app(app_settings(url, TLSRPT_FAILURE_DETAIL_LIMIT="3 per hour", TLSRPT_ACCEPT_UNHOSTED="true"))
    client = app.test_client()

    def post_details(details: int, report_id: str, address: str = "203.0.113.9"):
        document = report(report_id=report_id)
        document["policies"][0]["failure-details"] *= details
        return client.post("/tlsrpt", data=gz(document), headers=GZ, environ_base={"REMOTE_ADDR": address})

    assert post_details(2, "first").status_code == 201
    refused = post_details(2, "second")
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert refused.get_json()["error"] == "too many failure details from this address (3 per 1 hour), try again later"
    assert post_details(2, "second", "203.0.113.10").status_code == 201  # another client, its own budget
    too_many = post_details(4, "third", "203.0.113.11")
    assert too_many.status_code == 413 and "4 failure details" in too_many.get_json()["error"]
    with app.app_context():
        assert db.session.scalars(select(Report.report_id).order_by(Report.id)).all() == ["first", "second"]
        databases.release_connections()


def test_an_unreachable_rate_limit_storage_limits_per_worker_instead_of_failing(new_database):
    url = new_database()
    databases.upgrade(url)
    app = create_app(app_settings(url, TLSRPT_RATE_LIMIT="2 per minute",
                                  RATELIMIT_STORAGE_URI=f"redis://127.0.0.1:{free_port()}/0"))
    client = app.test_client()
    statuses = [client.post("/tlsrpt", data=b"", headers=GZ).status_code for _ in range(3)]
    assert statuses == [400, 400, 429]
    signing_in = {"csrf_token": csrf_token(client), "email": "nobody@example.com", "password": "wrong"}
    assert [client.post("/login", data=signing_in).status_code for _ in range(2)] == [200, 200]  # the form again
    with app.app_context():
        databases.release_connections()


def test_behind_nginx_the_limit_and_the_record_go_by_the_forwarded_client(new_database):
    url = new_database()
    databases.upgrade(url)
    app = create_app(app_settings(url, PROXY_HOPS="1", TLSRPT_RATE_LIMIT="2 per minute",
                                  TLSRPT_ACCEPT_UNHOSTED="true"))
    client = app.test_client()

    def post_from(address: str, body: bytes = b"") -> object:
        return client.post("/tlsrpt", data=body, headers=GZ | {"X-Forwarded-For": f"198.51.100.1, {address}"})

    assert post_from("203.0.113.9", gz(VALID)).status_code == 201
    assert post_from("203.0.113.9").status_code == 400
    refused = post_from("203.0.113.9")
    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert post_from("203.0.113.10").status_code == 400  # another client, its own count
    with app.app_context():
        recorded = db.session.scalars(select(Report.source_detail)).all()
        databases.release_connections()
    assert recorded == ["203.0.113.9 /tlsrpt"]
