"""Admin pages through the test client: what each persona sees and may change, read from the HTML."""

from datetime import UTC, datetime, timedelta

import pytest
from bs4 import BeautifulSoup

from stspolicy.accounts.models import Grant, User
from stspolicy.app import create_app
from stspolicy.base.audit import AuditEvent, domain_events
from stspolicy.dns.models import DnsObservation, DnsSetting
from stspolicy.extensions import db
from stspolicy.policies.queries import current_version, get_domain
from stspolicy.report_figures import failure_figures
from tests import databases, factories
from tests.conftest import app_settings
from tests.factories import PASSWORD, csrf_token, sign_in, stored_check
from tests.support import reportdata
from tests.support.config import configure

POLICY_HOST = {"Host": "mta-sts.shared.example"}


def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def post(client, url, data=None, page_with_form="/tokens", **kwargs):
    """POST as a browser would: with the session's CSRF token."""
    return client.post(url, data={"csrf_token": csrf_token(client, page_with_form), **(data or {})}, **kwargs)


def policy_form(mode="testing", mx=("mx1.shared.example", "*.mx.shared.example"), max_age="604800", **extra):
    return {"mode": mode, "max_age": max_age, **{f"mx-{i}": v for i, v in enumerate(mx)}, **extra}


def served(client, host="mta-sts.shared.example") -> bytes:
    return client.get("/.well-known/mta-sts.txt", headers={"Host": host}).data


# Signing in and out


def test_sign_in_with_the_password_then_sign_out(client, people):
    token = csrf_token(client)
    response = client.post("/login?next=/domains/shared.example", data={
        "csrf_token": token, "email": "Admin@Provider.example", "password": PASSWORD})
    assert response.status_code == 302 and response.headers["Location"] == "/domains/shared.example"
    assert "shared.example" in client.get("/").get_data(as_text=True)
    response = post(client, "/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302


def test_a_session_cookie_copied_before_sign_out_stops_working(app, client, people):
    client.post("/login", data={"csrf_token": csrf_token(client), "email": people.editor.email, "password": PASSWORD})
    copied = client.get_cookie("session").value
    elsewhere = app.test_client()
    elsewhere.set_cookie("session", copied)
    assert elsewhere.get("/").status_code == 200
    assert post(client, "/logout").status_code == 302
    assert elsewhere.get("/").status_code == 302
    replayed = app.test_client()
    replayed.set_cookie("session", copied)
    assert replayed.get("/").status_code == 302


@pytest.mark.parametrize("email, password", [
    ("admin@provider.example", "wrong password!"), ("nobody@provider.example", PASSWORD)])
def test_wrong_password_or_unknown_account_gets_one_message(client, people, email, password):
    response = client.post("/login", data={"csrf_token": csrf_token(client), "email": email, "password": password})
    assert response.status_code == 200
    assert page(response).select_one("#password-error").text == "Wrong e-mail or password."
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example"])
def test_sign_in_never_redirects_off_site(client, people, target):
    response = client.post(f"/login?next={target}", data={
        "csrf_token": csrf_token(client), "email": "admin@provider.example", "password": PASSWORD})
    assert response.headers["Location"] == "/"


def test_session_cookie_is_httponly_and_samesite_lax_and_secure_over_https(app, client, people):
    client.post("/login", data={"csrf_token": csrf_token(client), "email": people.admin.email, "password": PASSWORD})
    cookie = client.get_cookie("session")
    assert cookie.http_only and cookie.same_site == "Lax" and not cookie.secure
    over_https = app.test_client().get("/login", base_url="https://localhost")
    assert "; Secure" in over_https.headers["Set-Cookie"]


def test_login_attempts_are_rate_limited(migrated_database):
    app = create_app(app_settings(migrated_database, LOGIN_RATE_LIMIT="3 per minute"))
    client = app.test_client()
    token = csrf_token(client)
    codes = [client.post("/login", data={"csrf_token": token, "email": f"x{n}@example.com", "password": "guess"})
             .status_code for n in range(4)]
    assert codes == [200, 200, 200, 429]
    assert client.post("/login", data={"csrf_token": token}).headers["Retry-After"] == "60"
    with app.app_context():
        databases.release_connections()


def test_failed_guesses_from_elsewhere_never_lock_the_owner_out(migrated_database):
    app = create_app(app_settings(migrated_database, LOGIN_RATE_LIMIT="3 per minute"))
    with app.app_context():
        victim_id = factories.make_user(db.session, "victim@customer.example").id

    def attempt(address, password):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        return client.post("/login", data={"csrf_token": csrf_token(client), "email": "Victim@customer.example",
                                           "password": password})

    try:
        assert [attempt(f"192.0.2.{n}", "a wrong guess").status_code for n in range(1, 5)] == [200] * 4
        refused = attempt("192.0.2.1", PASSWORD)
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
        assert "Too many failed sign-ins to this account" in refused.get_data(as_text=True)
        owner = attempt("198.51.100.7", PASSWORD)
        assert owner.status_code == 302 and owner.headers["Location"] == "/"
    finally:
        with app.app_context():
            db.session.delete(db.session.get(User, victim_id))
            db.session.commit()
            databases.release_connections()


@pytest.mark.parametrize("method, path, status", [
    ("get", "/", 503), ("get", "/domains/shared.example", 503), ("get", "/tokens", 503),
    ("post", "/logout", 400), ("get", "/no/such/page", 404),  # refused before the database is asked
])
def test_signed_in_pages_answer_while_the_database_is_unreachable(method, path, status):
    """503 as documented, and other error pages are still pages: who is signed in is not asked again."""
    app = create_app(app_settings("postgresql://postgres@127.0.0.1:1/unreachable"))
    client = app.test_client()
    with client.session_transaction() as cookie:
        cookie["_user_id"], cookie["_fresh"] = "1:0", True
    response = getattr(client, method)(path)
    assert response.status_code == status
    assert page(response).h1.text.startswith(str(status))
    if status == 503:
        assert response.headers["Retry-After"] == "30"


# Strict hosts


@pytest.mark.parametrize("path", ["/", "/login", "/domains/shared.example", "/api/v1/domains"])
def test_admin_pages_answer_only_on_admin_hosts(client, people, path):
    sign_in(client, people.admin)
    assert client.get(path, headers={"Host": "evil.example"}).status_code == 404
    response = client.get(path, headers=POLICY_HOST)
    assert response.status_code == 404 and response.mimetype == "text/plain"
    assert "Set-Cookie" not in response.headers


# Domain list


def test_admin_sees_every_domain_member_only_granted_ones(client, people):
    sign_in(client, people.admin)
    assert {"shared.example", "foreign.example"} <= {a.text for a in page(client.get("/")).select("td a")}
    sign_in(client, people.viewer)
    listed = page(client.get("/"))
    assert [a.text for a in listed.select("td a")] == ["shared.example"]
    assert listed.select_one("a[href='/domains/new']") is None


def test_domain_list_shows_mode_policy_id_and_says_when_no_reports_exist(client, session, people):
    sign_in(client, people.viewer)
    row = page(client.get("/")).select_one("table.domains tbody tr")
    assert row.select_one(".badge").text == "testing"
    assert row.select_one("code").text == current_version(session, people.shared).policy_id
    assert "no reports" in row.text and "not checked" in row.text


@pytest.mark.parametrize("status, checked_id, badge", [
    ("ok", "current", "ok"), ("ok", "1999", "not checked since the last change"), ("problems", "current", "problems"),
    ("unchecked", "current", "could not check")])
def test_domain_list_and_pages_call_the_latest_dns_check_by_one_name(client, session, people, status, checked_id,
                                                                     badge):
    current = current_version(session, people.shared).policy_id
    session.add(DnsObservation(domain_id=people.shared.id, kind="check", status=status, findings=[],
                               policy_id=current if checked_id == "current" else checked_id))
    session.commit()
    sign_in(client, people.viewer)
    assert page(client.get("/")).select_one("table.domains tbody tr .badge:not([class*=mode])").text == badge
    assert page(client.get("/domains/shared.example")).select_one("#dns h2 .badge").text == badge
    if checked_id == "current":
        assert page(client.get("/domains/shared.example/dns")).select_one(".heading .badge").text == badge


def test_delegated_domains_show_the_cname_to_publish(client, session, people, app, monkeypatch):
    configure(monkeypatch, app, DELEGATION_ZONE="sts-delegation.provider.example")
    session.add(DnsSetting(domain_id=people.shared.id, publish_mode="delegated"))
    session.commit()
    sign_in(client, people.viewer)
    first = page(client.get("/domains/shared.example")).select_one("#dns tbody tr")
    assert [cell.text.strip() for cell in first.select("td")][:4] == [
        "_mta-sts.shared.example.", "3600", "CNAME", "_mta-sts.shared.example.sts-delegation.provider.example."]


def send_report(client, domain: str, days_ago: int, successful: int, failed: int) -> None:
    """A TLS-RPT report about `domain`, through the real intake."""
    day = (datetime.now(UTC) - timedelta(days=days_ago)).strftime("%Y-%m-%d")
    document = reportdata.report(
        report_id=f"{domain}-{days_ago}",
        date_range={"start-datetime": f"{day}T00:00:00Z", "end-datetime": f"{day}T23:59:59Z"})
    block = document["policies"][0]
    policy_string = ["version: STSv1", "mode: testing", f"mx: mx1.{domain}", "max_age: 604800"]
    block["policy"].update({"policy-domain": domain, "mx-host": [f"mx1.{domain}"], "policy-string": policy_string})
    block["summary"] = {"total-successful-session-count": successful, "total-failure-session-count": failed}
    block["failure-details"][0].update({"failed-session-count": failed, "receiving-mx-hostname": f"mx1.{domain}"})
    response = client.post("/tlsrpt", data=reportdata.encode(document), content_type="application/tlsrpt+json")
    assert response.status_code == 201, response.get_data(as_text=True)


def test_domain_list_shows_the_reported_failure_rate_of_the_last_7_days(client, people):
    send_report(client, "shared.example", days_ago=1, successful=10, failed=2)
    send_report(client, "shared.example", days_ago=3, successful=8, failed=0)
    send_report(client, "shared.example", days_ago=9, successful=0, failed=50)  # older: not counted
    sign_in(client, people.viewer)
    row = page(client.get("/")).select_one("table.domains tbody tr")
    assert row.select_one("td[data-label='Failures (7 days)']").text.strip() == "10.0 %"


def test_failure_figures_count_sessions_in_the_terms_of_rfc_8460(client, session, people):
    send_report(client, "shared.example", days_ago=1, successful=8, failed=2)
    figures = failure_figures(session, [people.shared], days=7)[people.shared.id]
    assert figures.by_policy_type == {"sts": (8, 2)}
    assert (figures.successful_session_count, figures.failed_session_count, figures.sts_failed_session_count) == (
        8, 2, 2)
    assert figures.failure_rate == 0.2


def test_the_enforce_confirmation_shows_what_the_latest_dns_check_found_against_it(client, session, people):
    untrusted = {"level": "error", "code": "certificate-not-trusted", "subject": "mx1.shared.example",
                 "message": "mx1.shared.example: the certificate does not validate: unable to get issuer"}
    stale = {"level": "error", "code": "sts-id-stale", "subject": "_mta-sts.shared.example",
             "message": "DNS still says id 1: publish id 2"}
    expiring = {"level": "warning", "code": "certificate-expiring", "subject": "mx1.shared.example",
                "message": "mx1.shared.example: the certificate expires in 20 days"}
    stored_check(session, people.shared, [untrusted, stale, expiring],
                 mx_hosts=("mx1.shared.example", "backup.elsewhere.example"))
    sign_in(client, people.editor)
    confirm = page(post(client, "/domains/shared.example/policy", policy_form(mode="enforce")))
    lines = [" ".join(li.text.split()) for li in confirm.select("main li[class]")]
    assert [line.split(" UTC: ")[1] for line in lines if line.startswith("DNS check of")] == [
        "MX backup.elsewhere.example matches no mx pattern of the policy: senders in enforce mode skip it",
        untrusted["message"], stale["message"]]
    assert current_version(session, people.shared).mode == "testing"


def test_the_enforce_confirmation_says_when_dns_was_never_checked(client, people):
    sign_in(client, people.editor)
    confirm = page(post(client, "/domains/shared.example/policy", policy_form(mode="enforce")))
    assert "DNS: never checked" in " ".join(confirm.select_one("main").text.split())


def test_the_enforce_confirmation_counts_reported_sts_failures(client, people):
    send_report(client, "shared.example", days_ago=20, successful=10, failed=7)
    sign_in(client, people.editor)
    confirm = page(post(client, "/domains/shared.example/policy", policy_form(mode="enforce")))
    assert "show 7 failed MTA-STS sessions" in " ".join(confirm.select_one("main").text.split())


# Adding a domain


def test_admin_adds_a_domain_which_is_served_at_once(client, session, people):
    sign_in(client, people.admin)
    response = post(client, "/domains/new", {"name": "Bücher.example", **policy_form(mx=("mx.bücher.example", ""))})
    assert response.status_code == 302 and response.headers["Location"] == "/domains/xn--bcher-kva.example"
    body = served(client, "mta-sts.xn--bcher-kva.example")
    assert body == b"version: STSv1\r\nmode: testing\r\nmx: mx.xn--bcher-kva.example\r\nmax_age: 604800\r\n"
    shown = page(client.get(response.headers["Location"]))
    assert shown.select_one("#policy-text").text == body.decode()
    assert [e.text.split(" UTC ")[-1] for e in shown.select("#audit li")][0].startswith(
        "web:admin@provider.example hosted the domain")


def test_members_may_not_add_domains(client, people):
    sign_in(client, people.editor)
    assert client.get("/domains/new").status_code == 403


@pytest.mark.parametrize("field, value, message", [
    ("mx-1", "a.*.example.com", "a wildcard may only be the whole leftmost label"),
    ("max_age", "31557601", "invalid max_age 31557601: must be between 0 and 31557600"),
    ("max_age", "a week", "not a non-negative integer"),
    ("name", "exa_mple.com", "invalid domain name 'exa_mple.com'"),
    ("name", "shared.example", "domain shared.example is already hosted"),
])
def test_an_invalid_field_shows_its_error_beside_it(client, people, field, value, message):
    sign_in(client, people.admin)
    form = {"name": "new.example", **policy_form(mx=("mx.new.example", "mx2.new.example")), field: value}
    response = post(client, "/domains/new", form)
    assert response.status_code == 422
    html = page(response)
    field_input = html.select_one(f"input[name='{field}']")
    assert field_input["value"] == value and field_input["aria-invalid"] == "true"
    container = field_input.find_parent(class_="invalid")
    assert message in container.select_one(".error").text
    assert len(html.select(".error")) == 1


def test_testing_mode_without_mx_patterns_is_refused_beside_the_mx_list(client, people):
    sign_in(client, people.admin)
    response = post(client, "/domains/new", {"name": "new.example", **policy_form(mx=("", ""))})
    assert response.status_code == 422
    assert page(response).select_one(".mx-row.invalid .error").text == "mode testing needs at least one mx pattern"


# Domain page: edit, history, rollback


def test_editor_edit_publishes_a_new_id_and_the_new_bytes(client, session, people):
    before = current_version(session, people.shared).policy_id
    sign_in(client, people.editor)
    response = post(client, "/domains/shared.example/policy",
                    policy_form(mx=("mx1.shared.example", "mx9.shared.example"), max_age="86400", mx_removal="now"))
    assert response.status_code == 302
    after = current_version(session, people.shared)
    assert after.policy_id > before
    assert served(client) == after.policy_text.encode() == (
        b"version: STSv1\r\nmode: testing\r\nmx: mx1.shared.example\r\nmx: mx9.shared.example\r\nmax_age: 86400\r\n")
    shown = page(client.get("/domains/shared.example"))
    assert shown.select_one("#policy-id").text == after.policy_id
    assert f"v=STSv1; id={after.policy_id}" in shown.select_one("#dns").text
    assert "Published policy id" in shown.select_one(".flash").text
    diff = shown.select_one("#history li .diff")
    assert "+ mx: mx9.shared.example" in diff.text and "- mx: *.mx.shared.example" in diff.text


def test_a_failed_dns_update_is_shown_while_the_new_policy_is_served(client, session, people):
    session.add(DnsSetting(domain_id=people.shared.id, publish_mode="rfc2136", update_server="127.0.0.1:9",
                           update_zone="shared.example", tsig_key="missing-key"))
    session.commit()
    sign_in(client, people.editor)
    response = post(client, "/domains/shared.example/policy", policy_form(max_age="86400"))
    assert response.headers["Location"] == "/domains/shared.example"
    assert "no TSIG key 'missing-key'" in page(client.get("/domains/shared.example")).select_one(".flash.error").text
    assert b"max_age: 86400\r\n" in served(client)


def test_an_unwritable_policy_file_is_shown_and_the_change_kept(app, client, session, people, tmp_path,
                                                                monkeypatch):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    configure(monkeypatch, app, POLICY_FILES_DIR=blocker / "policies")
    sign_in(client, people.editor)
    response = post(client, "/domains/shared.example/policy", policy_form(max_age="86400"))
    assert response.headers["Location"] == "/domains/shared.example"
    flash = page(client.get("/domains/shared.example")).select_one(".flash.error").text
    assert "the change is saved" in flash and "flask policy-files sync" in flash
    assert current_version(session, people.shared).max_age == 86400


def test_policy_warnings_are_shown_beside_their_field_and_the_change_stands(client, session, people):
    sign_in(client, people.editor)
    response = post(client, "/domains/shared.example/policy", policy_form(max_age="600"))
    assert response.status_code == 302 and current_version(session, people.shared).max_age == 600
    edit = page(client.get("/domains/shared.example"))
    [warning] = edit.select("p.warning")
    assert warning.find_parent("div").select_one("input")["name"] == "max_age"
    assert warning.text.startswith("warning: max_age 600 is below one day")


def test_an_edit_that_changes_nothing_keeps_the_id(client, session, people):
    sign_in(client, people.editor)
    current = current_version(session, people.shared)
    post(client, "/domains/shared.example/policy", policy_form(mx=current.mx_patterns))
    assert current_version(session, people.shared).policy_id == current.policy_id


def test_switching_to_enforce_asks_first_and_says_reports_are_not_available(client, session, people):
    sign_in(client, people.editor)
    before = current_version(session, people.shared).policy_id
    response = post(client, "/domains/shared.example/policy", policy_form(mode="enforce"))
    assert response.status_code == 200
    confirm = page(response)
    assert "not available yet" in confirm.text and "mx1.shared.example" in confirm.text
    assert current_version(session, people.shared).policy_id == before
    confirm_form = confirm.select_one("main form")
    form = {i["name"]: i["value"] for i in confirm_form.select("input[type=hidden]")}
    assert form["confirmed"] == "yes"
    client.post(confirm_form["action"], data=form)
    assert current_version(session, people.shared).mode == "enforce"
    assert b"mode: enforce\r\n" in served(client)


def test_rollback_serves_the_old_policy_under_a_new_id(client, session, people):
    sign_in(client, people.editor)
    first = current_version(session, people.shared)
    post(client, "/domains/shared.example/policy", policy_form(max_age="86400"))
    response = post(client, f"/domains/shared.example/rollback/{first.policy_id}")
    assert response.status_code == 302
    rolled = current_version(session, people.shared)
    assert rolled.policy_text == first.policy_text and rolled.policy_id > first.policy_id
    assert served(client) == first.policy_text.encode()
    events = domain_events(session, people.shared, people.admin)
    assert events[0].action == "policy.rollback" and events[0].detail["rolled_back_to"] == first.policy_id


def test_rollback_to_an_unknown_version_is_404(client, people):
    sign_in(client, people.editor)
    assert post(client, "/domains/shared.example/rollback/1999").status_code == 404


def test_viewer_sees_the_policy_but_no_edit_form_or_rollback(client, people):
    sign_in(client, people.viewer)
    shown = page(client.get("/domains/shared.example"))
    assert shown.select_one("#policy-text") is not None
    assert shown.select_one("#edit") is None and shown.select_one("#access") is None
    assert not shown.find("button", string="Roll back to this")


def test_dns_records_have_copy_buttons_that_work_without_javascript_hidden(client, people):
    sign_in(client, people.viewer)
    buttons = page(client.get("/domains/shared.example")).select("#dns button[data-copy]")
    assert [b["data-copy"].split()[0] for b in buttons] == [
        "_mta-sts.shared.example.", "_smtp._tls.shared.example.", "mta-sts.shared.example."]
    assert all(b.has_attr("hidden") for b in buttons)


# Access and removal (admins)


def test_admin_gives_and_takes_access(client, session, people):
    sign_in(client, people.admin)
    response = post(client, "/domains/foreign.example/grants", {"email": "viewer@customer.example", "role": "viewer"})
    assert response.status_code == 302
    sign_in(client, people.viewer)
    assert client.get("/domains/foreign.example").status_code == 200
    sign_in(client, people.admin)
    post(client, f"/domains/foreign.example/grants/{people.viewer.id}/remove")
    sign_in(client, people.viewer)
    assert client.get("/domains/foreign.example").status_code == 404


def test_members_see_the_policy_events_of_a_domain_but_not_who_was_given_access(client, session, people):
    sign_in(client, people.editor)
    post(client, "/domains/shared.example/policy", policy_form(max_age="86400"))
    events = [li.text for li in page(client.get("/domains/shared.example")).select("#audit li")]
    assert len(events) == 2 and "max_age from 604800 to 86400" in events[0]
    assert "hosted the domain" in events[1] and not any("access" in event for event in events)
    sign_in(client, people.admin)
    events = [li.text for li in page(client.get("/domains/shared.example")).select("#audit li")]
    assert any("gave viewer@customer.example viewer access" in event for event in events)


def test_granting_an_invalid_address_says_so_beside_the_field_and_at_the_top(client, people):
    sign_in(client, people.admin)
    response = post(client, "/domains/shared.example/grants", {"email": "not an address", "role": "editor"})
    assert response.status_code == 422
    html = page(response)
    assert "invalid e-mail address 'not an address'" in html.select_one("#email-error").text
    summary = html.select_one("#error-summary")
    assert summary["role"] == "alert" and summary.select_one("a")["href"] == "#email"
    assert html.select_one("body")["data-replace-url"] == "/domains/shared.example"


def test_remove_serves_mode_none_first_and_force_deletes_keeping_the_audit(client, session, people):
    sign_in(client, people.admin)
    post(client, "/domains/foreign.example/remove")
    assert b"mode: none\r\n" in served(client, "mta-sts.foreign.example")
    response = post(client, "/domains/foreign.example/remove", {"force": "y"})
    assert response.headers["Location"] == "/"
    assert served(client, "mta-sts.foreign.example") == b"no MTA-STS policy for this host\n"
    assert session.query(Grant).filter_by(user_id=people.outsider.id).count() == 0
    deleted = session.query(AuditEvent).filter_by(action="domain.delete").one()
    assert deleted.domain_name == "foreign.example" and deleted.domain_id is None
    assert "foreign.example" in page(client.get("/audit")).text


# Tokens


def test_token_is_shown_once_and_listed_without_its_secret(client, people):
    sign_in(client, people.editor)
    response = post(client, "/tokens", {"name": "deploy"})
    assert response.status_code == 302 and response.headers["Location"] == "/tokens#new-token"
    secret = page(client.get("/tokens")).select_one("#token-secret").text
    assert secret.startswith("stsp_")
    listing = client.get("/tokens").get_data(as_text=True)
    assert "deploy" in listing and secret not in listing
    assert client.get("/api/v1/domains", headers={"Authorization": f"Bearer {secret}"}).status_code == 200


@pytest.mark.parametrize("name, message", [("", "This field is required."), ("x" * 101, "longer than 100 characters")])
def test_a_token_needs_a_short_name(client, people, name, message):
    sign_in(client, people.editor)
    response = post(client, "/tokens", {"name": name})
    assert response.status_code == 422
    assert message in page(response).select_one("#name-error").text and not page(response).select("#token-secret")


def test_revoked_token_stops_working(client, session, people):
    sign_in(client, people.editor)
    secret = page(post(client, "/tokens", {"name": "deploy"}, follow_redirects=True)).select_one("#token-secret").text
    token_id = page(client.get("/tokens")).select_one("tbody td").text
    assert post(client, f"/tokens/{token_id}/revoke").status_code == 302
    assert client.get("/api/v1/domains", headers={"Authorization": f"Bearer {secret}"}).status_code == 401


def test_a_member_cannot_revoke_another_members_token(client, people):
    sign_in(client, people.outsider)
    post(client, "/tokens", {"name": "mine"})
    token_id = page(client.get("/tokens")).select_one("tbody td").text
    sign_in(client, people.editor)
    assert post(client, f"/tokens/{token_id}/revoke").status_code == 404
    assert "mine" not in client.get("/tokens").get_data(as_text=True)


def test_text_from_users_is_escaped(client, session, people):
    sign_in(client, people.editor)
    post(client, "/tokens", {"name": "<script>alert(1)</script>"})
    html = client.get("/tokens").get_data(as_text=True)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_oversized_form_is_refused_with_413(client, people):
    sign_in(client, people.admin)
    response = post(client, "/domains/new", {"name": "x" * 70000, **policy_form()})
    assert response.status_code == 413
    assert page(response).h1.text == "413 Request Entity Too Large"


def test_pages_forbid_framing_and_inline_scripts(client, people):
    sign_in(client, people.viewer)
    policy = client.get("/").headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy


def test_audit_log_page_is_for_admins(client, people):
    sign_in(client, people.editor)
    assert client.get("/audit").status_code == 403
    sign_in(client, people.admin)
    assert "gave editor@customer.example editor access" in page(client.get("/audit")).text


@pytest.mark.parametrize("host", ["localhost", "www.example.com"])
def test_the_generic_error_page_forbids_sniffing_and_scripts_from_elsewhere(client, host):
    response = client.get("/no/such/page", headers={"Host": host})
    assert response.status_code == 404
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_unknown_page_is_the_html_error_page(client, people):
    sign_in(client, people.viewer)
    response = client.get("/no/such/page")
    assert response.status_code == 404 and page(response).h1.text == "404 Not Found"


def test_the_policy_host_still_answers_405_as_plain_text(client, people):
    response = client.post("/.well-known/mta-sts.txt", headers=POLICY_HOST)
    assert response.status_code == 405 and response.mimetype == "text/plain"


def test_domain_service_changes_made_through_the_cli_are_audited_as_cli(cli, session, people):
    cli("domain", "update", "shared.example", "--mode", "none")
    event = domain_events(session, get_domain(session, "shared.example"), people.admin)[0]
    assert event.actor.startswith("cli:") and event.detail["changes"]["mode"] == ["testing", "none"]
