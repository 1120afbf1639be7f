"""Every admin and API route, found in the app's URL map, refuses whoever may not use it.

A new route is crawled without anyone listing it; one with a URL argument the crawl
cannot fill fails the first test until a sample value is added here.
"""

import pytest

from stspolicy.accounts.links import reset_link
from stspolicy.accounts.tokens import create_token
from stspolicy.policies.queries import current_version
from tests.factories import csrf_token, sign_in, store_report
from tests.support.reportdata import daily_report, failure, sts_block

AREAS = ("admin", "auth", "api")
PUBLIC = {("auth.login", "GET"), ("auth.login", "POST"), ("auth.set_password", "GET"), ("auth.set_password", "POST"),
          ("api.openapi", "GET")}
ADMIN_ONLY = {"admin.add", "admin.audit", "admin.certificates", "admin.issue", "api.domain_create", "admin.users",
              "admin.invite", "admin.user", "admin.user_grant", "admin.user_revoke", "admin.user_link",
              "admin.user_remove", "admin.nodes", "api.nodes"}
READ_METHODS = {"GET"}


def routes(app):
    """(endpoint, method, rule) for every route of the admin, sign-in and API blueprints."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] in AREAS:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule.endpoint, method, rule


def url(app, rule, domain, session, people, token_id, secret, report_ids) -> str:
    samples = {
        "report_id": report_ids[domain.name],
        "name": domain.name,
        "policy_id": current_version(session, domain).policy_id,
        "user_id": people.outsider.id if domain is people.foreign else people.editor.id,
        "token_id": token_id,
        "host": f"mta-sts.{domain.name}",
        "secret": secret,
        "removal_id": 1,
    }
    missing = rule.arguments - samples.keys()
    assert not missing, f"{rule.rule}: no sample value for {missing}; add one to the crawl"
    return app.url_map.bind("localhost").build(rule.endpoint, {name: samples[name] for name in rule.arguments})


def send(client, method, path, *, csrf=None, token=None):
    """A page request carries the CSRF token; an API request the bearer token and a JSON body."""
    if path.startswith("/api/"):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return client.open(path, method=method, headers=headers, json={} if method != "GET" else None)
    return client.open(path, method=method, data={"csrf_token": csrf} if csrf else None)


def stored_reports(session, people) -> dict[str, int]:
    """A report about each of the people's domains, by domain name."""
    return {name: store_report(session, daily_report(f"crawl-{name}", sts_block(
        name, 5, 1, failure("certificate-expired", 1, f"mx1.{name}")))) for name in (people.shared.name,
                                                                                       people.foreign.name)}


@pytest.fixture
def crawl(app, session, people):
    token, _ = create_token(session, people.admin, "crawl", actor="test")
    secret = reset_link(session, people.viewer, actor="test")
    report_ids = stored_reports(session, people)

    def make(domain, reports_of=None):
        ids = report_ids if reports_of is None else dict.fromkeys(report_ids, report_ids[reports_of.name])
        return [(endpoint, method, url(app, rule, domain, session, people, token.id, secret, ids))
                for endpoint, method, rule in routes(app)]

    return make


def test_the_crawl_covers_every_route_of_the_three_areas(app, crawl, people):
    found = {(endpoint, method) for endpoint, method, _ in crawl(people.shared)}
    assert len(found) >= 54
    assert found >= PUBLIC and {endpoint for endpoint, _ in found} >= ADMIN_ONLY


def test_without_a_session_every_page_redirects_to_sign_in(client, crawl, people):
    csrf = csrf_token(client)
    for endpoint, method, path in crawl(people.shared):
        if (endpoint, method) in PUBLIC or endpoint.startswith("api."):
            continue
        response = send(client, method, path, csrf=csrf)
        assert response.status_code == 302, (method, path, response.status_code)
        assert response.headers["Location"].startswith("/login?next="), (method, path)


def test_without_a_token_every_api_route_is_401(client, crawl, people):
    sign_in(client, people.admin)  # a browser session is no API credential
    for endpoint, method, path in crawl(people.shared):
        if endpoint.startswith("api.") and (endpoint, method) not in PUBLIC:
            response = send(client, method, path)
            assert response.status_code == 401, (method, path, response.status_code)
            assert response.get_json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize("persona", ["viewer", "editor"])
def test_members_get_404_for_every_route_of_another_tenants_domain(client, session, crawl, people, persona):
    user = getattr(people, persona)
    token = create_token(session, user, "crawl", actor="test")[1]
    sign_in(client, user)
    csrf = csrf_token(client, "/tokens")
    checked = 0
    for _endpoint, method, path in crawl(people.foreign):
        if "/domains/foreign.example" in path:
            response = send(client, method, path, csrf=csrf, token=token)
            assert response.status_code == 404, (persona, method, path, response.status_code)
            checked += 1
    assert checked >= 16


@pytest.mark.parametrize("persona", ["viewer", "editor"])
def test_another_tenants_report_is_404_under_ones_own_domain(client, session, crawl, people, persona):
    user = getattr(people, persona)
    token = create_token(session, user, "crawl", actor="test")[1]
    sign_in(client, user)
    checked = 0
    for _endpoint, method, path in crawl(people.shared, reports_of=people.foreign):
        if "/reports/" in path and method == "GET":
            response = send(client, method, path, token=token)
            assert response.status_code == 404, (persona, method, path, response.status_code)
            checked += 1
    assert checked >= 2


def test_viewers_cannot_change_anything(client, session, crawl, people):
    token = create_token(session, people.viewer, "crawl", actor="test")[1]
    sign_in(client, people.viewer)
    csrf = csrf_token(client, "/tokens")
    checked = 0
    for endpoint, method, path in crawl(people.shared):
        changes_a_domain = method not in READ_METHODS and "/domains/" in path
        if changes_a_domain or endpoint in ADMIN_ONLY:
            response = send(client, method, path, csrf=csrf, token=token)
            assert response.status_code == 403, (method, path, response.status_code)
            checked += 1
    assert checked >= 17
    assert current_version(session, people.shared).policy_id == people.shared.versions[-1].policy_id


def test_editors_may_not_do_what_only_admins_do(client, session, crawl, people):
    token = create_token(session, people.editor, "crawl", actor="test")[1]
    sign_in(client, people.editor)
    csrf = csrf_token(client, "/tokens")
    admin_only_on_domain = {"admin.remove", "admin.add_grant", "admin.delete_grant", "api.domain_delete",
                            "admin.dns_mode"}
    for endpoint, method, path in crawl(people.shared):
        if endpoint in ADMIN_ONLY | admin_only_on_domain:
            response = send(client, method, path, csrf=csrf, token=token)
            assert response.status_code == 403, (method, path, response.status_code)


def test_a_form_post_without_csrf_token_is_refused(client, crawl, people):
    sign_in(client, people.admin)
    for endpoint, method, path in crawl(people.shared):
        if method == "POST" and not endpoint.startswith("api."):
            response = send(client, method, path)
            assert response.status_code == 400, (path, response.status_code)
            assert "CSRF" in response.get_data(as_text=True)


def test_a_wrong_method_is_405(client, app, crawl, people):
    sign_in(client, people.admin)
    allowed = {}
    for _endpoint, method, path in crawl(people.shared):
        allowed.setdefault(path, set()).add(method)
    for path, methods in allowed.items():
        for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - methods:
            response = client.open(path, method=method)
            assert response.status_code == 405, (method, path, response.status_code)
            assert set(response.headers["Allow"].replace(" ", "").split(",")) >= methods
