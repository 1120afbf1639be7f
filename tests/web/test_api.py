"""/api/v1: bearer tokens, tenancy, errors that name the field, and the OpenAPI document it keeps to."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from stspolicy.accounts.service import create_user
from stspolicy.accounts.tokens import create_token
from stspolicy.app import create_app
from stspolicy.dns.models import DnsSetting
from stspolicy.extensions import db
from stspolicy.nodes.service import serving_revision
from stspolicy.policies.queries import current_version
from tests import databases
from tests.conftest import app_settings
from tests.factories import PASSWORD, host, store_report, stored_check
from tests.support.config import configure
from tests.support.reportdata import daily_report, days_ago, failure, sts_block
from tests.web.test_admin_nodes import two_nodes


@pytest.fixture
def bearer(session, people):
    """Authorization headers for each persona."""
    return {
        name: {"Authorization": f"Bearer {create_token(session, getattr(people, name), 'test', actor='test')[1]}"}
        for name in ("admin", "editor", "viewer", "outsider")
    }


def error(response) -> dict:
    return response.get_json()["error"]


def test_list_shows_only_the_tokens_accounts_domains(client, bearer):
    listed = client.get("/api/v1/domains", headers=bearer["viewer"]).get_json()["domains"]
    assert [d["domain"] for d in listed] == ["shared.example"]
    admin_listed = client.get("/api/v1/domains", headers=bearer["admin"]).get_json()["domains"]
    assert {d["domain"] for d in admin_listed} == {"shared.example", "foreign.example"}


def test_members_read_the_policy_events_of_a_domain_but_not_its_grants(client, bearer):
    client.patch("/api/v1/domains/shared.example", headers=bearer["editor"], json={"max_age": 86400})
    viewer = client.get("/api/v1/domains/shared.example/events", headers=bearer["viewer"]).get_json()["events"]
    assert [event["action"] for event in viewer] == ["policy.update", "domain.add"]
    assert viewer[0]["actor"].startswith("api:editor@customer.example")
    admin = client.get("/api/v1/domains/shared.example/events", headers=bearer["admin"]).get_json()["events"]
    assert {"grant.set", "policy.update", "domain.add"} <= {event["action"] for event in admin}
    assert client.get("/api/v1/domains/foreign.example/events", headers=bearer["viewer"]).status_code == 404


def test_admin_creates_a_domain_which_is_served(client, bearer):
    body = {"domain": "new.example", "mode": "enforce", "mx": ["mx.new.example"], "max_age": 86400}
    response = client.post("/api/v1/domains", headers=bearer["admin"], json=body)
    assert response.status_code == 201
    assert response.headers["Location"] == "/api/v1/domains/new.example"
    created = response.get_json()
    served = client.get("/.well-known/mta-sts.txt", headers={"Host": "mta-sts.new.example"}).data
    assert served == created["policy_text"].encode() == (
        b"version: STSv1\r\nmode: enforce\r\nmx: mx.new.example\r\nmax_age: 86400\r\n")
    assert created["dns_records"][0] == {
        "name": "_mta-sts.new.example", "type": "TXT", "value": f"v=STSv1; id={created['policy_id']}", "ttl": 300}


def test_patch_changes_some_fields_and_put_replaces_the_policy(client, session, people, bearer):
    before = current_version(session, people.shared).policy_id
    patched = client.patch("/api/v1/domains/shared.example", headers=bearer["editor"], json={"max_age": 86400})
    assert patched.status_code == 200
    body = patched.get_json()
    assert body["changed"] and body["max_age"] == 86400 and body["mode"] == "testing" and body["policy_id"] > before
    put = client.put("/api/v1/domains/shared.example/policy", headers=bearer["editor"],
                     json={"mode": "enforce", "mx": ["mx.shared.example"], "max_age": 604800,
                           "confirm_enforce": True}).get_json()
    assert (put["mode"], put["mx"], put["max_age"]) == ("enforce", ["mx.shared.example"], 604800)
    again = client.put("/api/v1/domains/shared.example/policy", headers=bearer["editor"],
                       json={"mode": "enforce", "mx": ["MX.shared.example."], "max_age": 604800}).get_json()
    assert again["changed"] is False and again["policy_id"] == put["policy_id"]


def test_the_response_lists_policy_warnings(client, bearer):
    body = client.patch("/api/v1/domains/shared.example", headers=bearer["editor"],
                        json={"mx": ["*.shared.example"]}).get_json()
    assert body["changed"] and [warning["field"] for warning in body["warnings"]] == ["mx"]
    assert body["warnings"][0]["message"].startswith("mx pattern *.shared.example matches every host")


def test_a_switch_to_enforce_is_refused_with_what_argues_against_it_until_confirmed(client, session, people, bearer):
    untrusted = {"level": "error", "code": "certificate-not-trusted", "subject": "mx1.shared.example",
                 "message": "mx1.shared.example: the certificate does not validate: unable to get issuer"}
    stored_check(session, people.shared, [untrusted], mx_hosts=("mx1.shared.example",))
    response = client.patch("/api/v1/domains/shared.example", headers=bearer["editor"], json={"mode": "enforce"})
    assert response.status_code == 409 and error(response)["field"] == "mode"
    assert "confirm_enforce" in error(response)["message"]
    [dns, reports] = error(response)["concerns"]
    assert dns.endswith("UTC: mx1.shared.example: the certificate does not validate: unable to get issuer")
    assert reports.startswith("TLS reports: none over the last 30 days")
    assert current_version(session, people.shared).mode == "testing"
    confirmed = client.patch("/api/v1/domains/shared.example", headers=bearer["editor"],
                             json={"mode": "enforce", "confirm_enforce": True})
    assert confirmed.status_code == 200 and confirmed.get_json()["mode"] == "enforce"


def test_versions_and_rollback(client, session, people, bearer):
    first = current_version(session, people.shared)
    client.patch("/api/v1/domains/shared.example", headers=bearer["editor"], json={"mode": "none"})
    versions = client.get("/api/v1/domains/shared.example/versions", headers=bearer["viewer"]).get_json()["versions"]
    assert [v["mode"] for v in versions] == ["none", "testing"]
    assert versions[0]["created_by"].startswith("api:editor@customer.example")
    rolled = client.post("/api/v1/domains/shared.example/rollback", headers=bearer["editor"],
                         json={"policy_id": first.policy_id}).get_json()
    assert rolled["policy_text"] == first.policy_text and rolled["policy_id"] > versions[0]["policy_id"]


def test_dns_records(client, bearer, people, session):
    records = client.get("/api/v1/domains/shared.example/dns-records", headers=bearer["viewer"]).get_json()["records"]
    assert [(r["name"], r["ttl"]) for r in records] == [
        ("_mta-sts.shared.example", 300), ("_smtp._tls.shared.example", 86400), ("mta-sts.shared.example", 3600)]


def test_delete_starts_the_removal_then_force_deletes(client, bearer):
    started = client.delete("/api/v1/domains/foreign.example", headers=bearer["admin"]).get_json()
    assert started["state"] == "started" and started["policy_id"]
    deleted = client.delete("/api/v1/domains/foreign.example?force=true", headers=bearer["admin"]).get_json()
    assert deleted["state"] == "deleted"
    assert client.get("/api/v1/domains/foreign.example", headers=bearer["admin"]).status_code == 404


@pytest.mark.parametrize("method, path, body, persona, status, field", [
    ("get", "/api/v1/domains/foreign.example", None, "editor", 404, "domain"),
    ("patch", "/api/v1/domains/foreign.example", {"mode": "none"}, "viewer", 404, "domain"),
    ("patch", "/api/v1/domains/shared.example", {"mode": "none"}, "viewer", 403, "domain"),
    ("delete", "/api/v1/domains/shared.example", None, "editor", 403, "domain"),
    ("post", "/api/v1/domains", {"domain": "x.example", "mx": ["mx.x.example"]}, "editor", 403, None),
    ("post", "/api/v1/domains", {"domain": "shared.example", "mx": ["mx.x.example"]}, "admin", 409, "domain"),
    ("post", "/api/v1/domains", {"domain": "x.example", "mx": ["a.*.x.example"]}, "admin", 422, "mx"),
    ("post", "/api/v1/domains", {"domain": "x_y.example", "mx": ["mx.x.example"]}, "admin", 422, "domain"),
    ("post", "/api/v1/domains", {"domain": "x.example", "mx": "mx.x.example"}, "admin", 422, "mx"),
    ("post", "/api/v1/domains", {"domain": "x.example", "mx": ["m"] * 101}, "admin", 422, "mx"),
    ("post", "/api/v1/domains", {"domain": "x.example", "mx": ["mx.x.example"], "max_age": True}, "admin", 422,
     "max_age"),
    ("post", "/api/v1/domains", {"mx": ["mx.x.example"]}, "admin", 422, "domain"),
    ("post", "/api/v1/domains", {"domain": "x.example", "mx": [], "colour": 1}, "admin", 422, "colour"),
    ("patch", "/api/v1/domains/shared.example", {"max_age": 31557601}, "editor", 422, "max_age"),
    ("patch", "/api/v1/domains/shared.example", {"mode": "x" * 300}, "editor", 422, "mode"),
    ("patch", "/api/v1/domains/shared.example", [1, 2], "editor", 400, None),
    ("post", "/api/v1/domains/shared.example/rollback", {"policy_id": "1999"}, "editor", 404, "policy_id"),
    ("post", "/api/v1/domains/shared.example/rollback", {"policy_id": "1\x00"}, "editor", 422, "policy_id"),
    ("delete", "/api/v1/domains/shared.example?force=yes", None, "admin", 422, "force"),
    ("delete", "/api/v1/domains/shared.example?forse=true", None, "admin", 422, "forse"),
    ("get", "/api/v1/domains?page=2", None, "admin", 422, "page"),
])
def test_errors_have_the_right_status_and_name_the_field(client, bearer, method, path, body, persona, status, field):
    response = getattr(client, method)(path, headers=bearer[persona], json=body)
    assert response.status_code == status
    assert error(response)["field"] == field
    assert error(response)["message"]


def test_a_failed_dns_update_is_a_502_that_says_the_policy_is_served(client, session, people, bearer):
    session.add(DnsSetting(domain_id=people.shared.id, publish_mode="rfc2136", update_server="127.0.0.1:9",
                           update_zone="shared.example", tsig_key="missing-key"))
    session.commit()
    response = client.patch("/api/v1/domains/shared.example", headers=bearer["editor"], json={"max_age": 86400})
    assert response.status_code == 502
    assert error(response)["code"] == "dns_update_failed" and "missing-key" in error(response)["message"]
    assert current_version(session, people.shared).max_age == 86400


def test_a_body_that_is_not_json_is_415_and_a_huge_one_413(client, bearer):
    assert client.patch("/api/v1/domains/shared.example", headers=bearer["editor"], data="mode=none").status_code == 415
    huge = client.patch("/api/v1/domains/shared.example", headers=bearer["editor"],
                        data="[" + "1," * 40000 + "1]", content_type="application/json")
    assert huge.status_code == 413 and error(huge)["code"] == "too_large"


@pytest.mark.parametrize("authorization", [None, "Bearer", "Bearer stsp_nope", "Basic YTpi", "bearer "])
def test_requests_without_a_valid_token_are_401(client, people, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/api/v1/domains", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert error(response)["code"] == "unauthorized"


def test_a_browser_session_does_not_authenticate_the_api(client, people):
    from tests.factories import sign_in

    sign_in(client, people.admin)
    assert client.get("/api/v1/domains").status_code == 401


def test_wrong_method_is_a_json_405(client, bearer):
    response = client.put("/api/v1/domains", headers=bearer["admin"], json={})
    assert response.status_code == 405 and error(response)["code"] == "method_not_allowed"


# The document and the implementation agree: schemathesis generates requests from it,
# valid and invalid, and checks every answer against it (status codes, bodies, headers).


@pytest.fixture(scope="module")
def api_app(new_database):
    url = new_database()
    databases.upgrade(url)
    app = create_app(app_settings(url))
    with app.app_context():
        admin = create_user(db.session, "admin@provider.example", PASSWORD, "admin", actor="test")
        host(db.session, "example.com")
        host(db.session, "example.org", mode="enforce")
        store_report(db.session, daily_report("schemathesis", sts_block("example.com", 5, 1, failure(
            "certificate-expired", 1, "mx1.example.com", "192.0.2.1")), day=days_ago(1)))
        app.config["TEST_TOKEN"] = create_token(db.session, admin, "schemathesis", actor="test")[1]
        db.session.remove()
    yield app
    with app.app_context():
        databases.release_connections()


def operations(api_app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api_app)
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
def test_api_keeps_to_its_openapi_document(api_app, mode):
    headers = {"Authorization": f"Bearer {api_app.config['TEST_TOKEN']}"}
    checked = []
    for operation in operations(api_app):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def agrees(case):
            # The document cannot state every rule (a valid host name, an mx pattern unless mode is
            # none), so schema-valid input may still be refused: a 422 naming the field, which the
            # other checks hold to the document.
            case.call_and_validate(headers=headers, excluded_checks=[schemathesis.checks.positive_data_acceptance])

        agrees()
        checked.append(f"{operation.method.upper()} {operation.path}")
    assert len(checked) == 18, checked


def test_an_unwritable_policy_file_is_a_500_that_says_the_change_is_saved(app, client, session, people, bearer,
                                                                          tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    configure(monkeypatch, app, POLICY_FILES_DIR=blocker / "policies")
    response = client.patch("/api/v1/domains/shared.example", headers=bearer["editor"], json={"max_age": 86400})
    assert response.status_code == 500
    assert error(response)["code"] == "policy_file_not_written"
    assert "the change is saved" in error(response)["message"] and "policy-files sync" in error(response)["message"]
    assert current_version(session, people.shared).max_age == 86400


def test_an_unexpected_failure_is_a_500_labelled_internal(app, client, bearer, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("a fault of ours")

    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    monkeypatch.setattr("stspolicy.web.api.views.change_policy", broken)
    response = client.patch("/api/v1/domains/shared.example", headers=bearer["editor"], json={"max_age": 86400})
    assert response.status_code == 500
    assert error(response)["code"] == "internal" and "a fault of ours" not in error(response)["message"]


def test_the_api_answers_503_while_the_database_is_unreachable():
    app = create_app(app_settings("postgresql://postgres@127.0.0.1:1/unreachable"))
    response = app.test_client().get("/api/v1/domains", headers={"Authorization": "Bearer stsp_anything"})
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert error(response)["code"] == "database_unavailable"


def test_a_domain_says_when_it_was_hosted_and_when_its_policy_last_changed(client, session, bearer, people):
    before = client.get("/api/v1/domains/shared.example", headers=bearer["editor"]).get_json()
    changed = client.patch("/api/v1/domains/shared.example", headers=bearer["editor"],
                           json={"max_age": 86400}).get_json()
    assert changed["created_at"] == before["created_at"] == people.shared.created_at.isoformat()
    assert changed["updated_at"] > before["updated_at"]
    assert changed["updated_at"] == current_version(session, people.shared).created_at.isoformat()


def test_the_api_lists_nodes_to_admins_only(client, session, people, bearer):
    two_nodes(session)
    assert client.get("/api/v1/nodes", headers=bearer["editor"]).status_code == 403
    assert client.get("/api/v1/nodes").status_code == 401
    answer = client.get("/api/v1/nodes", headers=bearer["admin"]).get_json()
    assert answer["revision"] == serving_revision(session)
    assert [(node["name"], node["state"], node["policies"]) for node in answer["nodes"]] == [
        ("node-a", "current", 2), ("node-b", "silent", 0)]
    assert answer["nodes"][1]["seen_seconds_ago"] >= 600
