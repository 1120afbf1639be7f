"""People and access in the browser: invitations, set-password links, grants per account, removal,
everyone's own password; errors summed up at the top, and no form sent twice by a refresh."""

from datetime import timedelta

from bs4 import BeautifulSoup

from stspolicy.accounts.links import link_for_secret, reset_link
from stspolicy.accounts.models import PasswordLink, User
from stspolicy.accounts.service import authenticate, find_user
from stspolicy.app import create_app
from stspolicy.base.audit import AuditEvent
from stspolicy.extensions import db, utcnow
from tests import databases, factories
from tests.conftest import app_settings
from tests.factories import PASSWORD, csrf_token, sign_in

NEW_PASSWORD = "a new and long passphrase"


def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def post(client, url, data=None, page_with_form="/tokens", **kwargs):
    return client.post(url, data={"csrf_token": csrf_token(client, page_with_form), **(data or {})}, **kwargs)


def link_path(html: BeautifulSoup) -> str:
    return "/" + html.select_one("#password-link-url").text.split("/", 3)[3]


def invite(client, email="new@customer.example", role="member"):
    response = post(client, "/users", {"email": email, "role": role})
    assert response.status_code == 302
    return response


def test_an_admin_invites_a_member_who_sets_a_password_through_the_link_once(app, client, session, people):
    sign_in(client, people.admin)
    response = invite(client, "New@Customer.example")
    invited = find_user(session, "new@customer.example")
    assert response.headers["Location"] == f"/users/{invited.id}"
    assert not invited.has_password and authenticate(session, invited.email, "") is None
    shown = page(client.get(response.headers["Location"]))
    path = link_path(shown)
    assert path.startswith("/password/") and "invited" in shown.select_one(".heading").text
    assert not page(client.get(f"/users/{invited.id}")).select("#password-link-url")  # shown once

    newcomer = app.test_client()
    form = page(newcomer.get(path))
    assert "new@customer.example" in form.text and "At least 10 characters" in form.text
    token = form.select_one("input[name=csrf_token]")["value"]
    refused = newcomer.post(path, data={"csrf_token": token, "password": "short", "repeat": "short"})
    assert refused.status_code == 422
    summary = page(refused).select_one("#error-summary")
    assert summary.select_one("a")["href"] == "#password" and "10 to 1024 characters" in summary.text
    done = newcomer.post(path, data={"csrf_token": token, "password": NEW_PASSWORD, "repeat": NEW_PASSWORD})
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert "Welcome, new@customer.example" in newcomer.get("/").get_data(as_text=True)
    assert authenticate(session, "new@customer.example", NEW_PASSWORD) is not None
    assert newcomer.get(path).status_code == 404
    actions = [event.action for event in session.query(AuditEvent).order_by(AuditEvent.id)]
    assert actions[-2:] == ["user.invite", "user.password"]


def test_the_two_passwords_must_agree(client, session, people):
    path = f"/password/{reset_link(session, people.viewer, actor='test')}"
    answer = client.post(path, data={"csrf_token": csrf_token(client, path), "password": NEW_PASSWORD,
                                     "repeat": NEW_PASSWORD + "!"})
    assert answer.status_code == 422 and "The two passwords differ." in page(answer).select_one("#repeat-error").text
    assert authenticate(session, people.viewer.email, PASSWORD) is not None
    assert client.get(path).status_code == 200  # the link still works


def test_a_newer_link_ends_the_older_and_an_expired_link_opens_nothing(client, session, people):
    first = reset_link(session, people.viewer, actor="test")
    second = reset_link(session, people.viewer, actor="test")
    assert client.get(f"/password/{first}").status_code == 404
    assert client.get(f"/password/{second}").status_code == 200
    link = link_for_secret(session, second, utcnow())
    assert link.purpose == "reset"
    assert link_for_secret(session, second, link.expires_at + timedelta(seconds=1)) is None
    link.expires_at = utcnow() - timedelta(seconds=1)
    session.commit()
    response = client.get(f"/password/{second}")
    assert response.status_code == 404 and "ask an admin for a new one" in response.get_data(as_text=True)
    assert client.get("/password/" + "x" * 200).status_code == 404


def test_a_reset_link_keeps_the_old_password_until_used_and_is_shown_once(client, session, people):
    sign_in(client, people.admin)
    response = post(client, f"/users/{people.editor.id}/link")
    assert response.status_code == 302
    shown = page(client.get(response.headers["Location"]))
    assert link_path(shown).startswith("/password/")
    assert authenticate(session, people.editor.email, PASSWORD) is not None
    assert session.query(PasswordLink).filter_by(user_id=people.editor.id).one().purpose == "reset"


def test_an_admin_gives_and_takes_a_members_access_from_the_account_page(client, session, people):
    sign_in(client, people.admin)
    html = page(client.get(f"/users/{people.outsider.id}"))
    assert [option["value"] for option in html.select("select[name=domain] option")] == [
        "foreign.example", "shared.example"]
    response = post(client, f"/users/{people.outsider.id}/grants", {"domain": "shared.example", "role": "viewer"})
    assert response.headers["Location"] == f"/users/{people.outsider.id}#access"
    html = page(client.get(f"/users/{people.outsider.id}"))
    assert "outsider@other.example is now viewer of shared.example." in html.select_one(".flash").text
    assert [row.select_one("td").text for row in html.select("#access tbody tr")] == [
        "foreign.example", "shared.example"]
    response = post(client, f"/users/{people.outsider.id}/grants/shared.example/remove")
    assert response.status_code == 302
    assert [grant.domain.name for grant in people.outsider.grants] == ["foreign.example"]
    assert post(client, f"/users/{people.outsider.id}/grants/shared.example/remove").status_code == 404
    refused = post(client, f"/users/{people.outsider.id}/grants", {"domain": "elsewhere.example", "role": "viewer"})
    assert refused.status_code == 422 and page(refused).select_one("#error-summary a")["href"] == "#domain"


def test_granting_an_admin_a_domain_says_why_not(client, session, people):
    other_admin = User(email="second@provider.example", password_hash="!", role="admin")
    session.add(other_admin)
    session.commit()
    sign_in(client, people.admin)
    html = page(client.get(f"/users/{other_admin.id}"))
    assert "sees and manages every domain" in html.select_one("#access").text
    assert not html.select("#access form")


def test_an_admin_removes_an_account_but_not_their_own(client, session, people):
    sign_in(client, people.admin)
    response = post(client, f"/users/{people.viewer.id}/remove")
    assert response.headers["Location"] == "/users"
    assert find_user(session, "viewer@customer.example") is None
    assert "removed the account viewer@customer.example" in page(client.get("/audit")).text
    assert post(client, f"/users/{people.admin.id}/remove").status_code == 403
    assert post(client, "/users/999999/remove").status_code == 404


def test_the_people_page_lists_accounts_with_their_state_and_refuses_a_second_account(client, session, people):
    sign_in(client, people.admin)
    invite(client, "pending@customer.example")
    html = page(client.get("/users"))
    rows = {row.select_one("td a").text: row for row in html.select("#accounts tbody tr")}
    assert set(rows) == {"admin@provider.example", "editor@customer.example", "outsider@other.example",
                         "pending@customer.example", "viewer@customer.example"}
    assert "invited" in rows["pending@customer.example"].text and "active" in rows["editor@customer.example"].text
    assert "every domain" in rows["admin@provider.example"].text
    refused = post(client, "/users", {"email": "editor@customer.example", "role": "member"})
    assert refused.status_code == 422
    html = page(refused)
    assert "exists already" in html.select_one("#email-error").text
    assert html.select_one("#error-summary a")["href"] == "#email"
    assert html.select_one("body")["data-replace-url"] == "/users"


def test_granting_an_unknown_address_on_the_domain_page_invites_a_member(client, session, people):
    sign_in(client, people.admin)
    response = post(client, "/domains/shared.example/grants", {"email": "ghost@customer.example", "role": "editor"})
    assert response.headers["Location"] == "/domains/shared.example#access"
    html = page(client.get("/domains/shared.example"))
    assert link_path(html).startswith("/password/")
    assert "ghost@customer.example is now editor of shared.example." in html.select_one(".flash").text
    ghost = find_user(session, "ghost@customer.example")
    assert ghost.role == "member" and not ghost.has_password and ghost.grants[0].role == "editor"


def test_everyone_changes_their_own_password_which_ends_their_other_sessions(app, client, session, people):
    elsewhere = app.test_client()
    sign_in(elsewhere, people.viewer)
    client.post("/login", data={"csrf_token": csrf_token(client), "email": people.viewer.email, "password": PASSWORD})
    refused = post(client, "/account", {"current": "wrong password", "password": NEW_PASSWORD,
                                        "repeat": NEW_PASSWORD}, page_with_form="/account")
    assert refused.status_code == 422
    assert page(refused).select_one("#error-summary a")["href"] == "#current"
    response = post(client, "/account", {"current": PASSWORD, "password": NEW_PASSWORD, "repeat": NEW_PASSWORD},
                    page_with_form="/account")
    assert response.headers["Location"] == "/account"
    assert "Your password is changed" in client.get("/account").get_data(as_text=True)
    assert client.get("/").status_code == 200
    assert elsewhere.get("/").status_code == 302
    assert authenticate(session, people.viewer.email, NEW_PASSWORD) is not None


def test_addresses_are_shown_escaped(client, session, people):
    sign_in(client, people.admin)
    invite(client, "<script>alert(1)</script>@customer.example")
    body = client.get("/users").get_data(as_text=True)
    assert "<script>alert(1)" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;@customer.example" in body


def test_guessing_ones_current_password_is_rate_limited_like_sign_in(new_database):
    url = new_database()
    databases.upgrade(url)
    app = create_app(app_settings(url, LOGIN_RATE_LIMIT="3 per minute"))
    with app.app_context():
        user = factories.make_user(db.session, "guesser@customer.example")
        client = app.test_client()
        sign_in(client, user)
        token = csrf_token(client, "/account")
        codes = [client.post("/account", data={"csrf_token": token, "current": f"guess {n}", "password": NEW_PASSWORD,
                                               "repeat": NEW_PASSWORD}).status_code for n in range(4)]
        assert codes == [422, 422, 422, 429]
        databases.release_connections()
