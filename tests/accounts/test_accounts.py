"""Accounts, tenancy helpers, tokens and the audit trail, through the services and `flask user|token`."""

import pytest
from sqlalchemy import select

from stspolicy.accounts.models import ApiToken, User
from stspolicy.accounts.service import (
    AccessDenied,
    AccountError,
    authenticate,
    create_user,
    domain_for_user,
    remove_user,
    visible_domains,
)
from stspolicy.accounts.tokens import create_token, revoke_token, user_for_token
from stspolicy.base.audit import AuditEvent, describe, domain_events
from stspolicy.policies.errors import DomainNotFound
from stspolicy.policies.queries import current_version
from stspolicy.policies.service import rollback_to, update_policy
from tests import factories
from tests.factories import PASSWORD


def test_passwords_are_stored_as_argon2_hashes_and_checked(session):
    user = create_user(session, " New@Example.COM ", "a long enough password", "member", actor="test")
    assert user.email == "new@example.com"
    assert user.password_hash.startswith("$argon2id$") and "a long enough password" not in user.password_hash
    assert authenticate(session, "NEW@example.com", "a long enough password") == user
    assert authenticate(session, "new@example.com", "a long enough passworD") is None
    assert authenticate(session, "nobody@example.com", "a long enough password") is None
    assert authenticate(session, "new@example.com", "x" * 5000) is None


@pytest.mark.parametrize("email, password, role, message", [
    ("not-an-address", PASSWORD, "member", "invalid e-mail address"),
    ("a@example.com", "short", "member", "at least 10 characters"),
    ("a@example.com", PASSWORD, "owner", "invalid role 'owner'"),
    ("admin@provider.example", PASSWORD, "admin", "exists already"),
])
def test_account_mistakes_are_refused(session, people, email, password, role, message):
    with pytest.raises(AccountError, match=message):
        create_user(session, email, password, role, actor="test")


def test_tenancy_admin_sees_all_members_their_grants(session, people):
    assert {d.name for d in visible_domains(session, people.admin)} == {"shared.example", "foreign.example"}
    assert [d.name for d in visible_domains(session, people.viewer)] == ["shared.example"]
    assert domain_for_user(session, people.viewer, "SHARED.example.") == people.shared
    assert domain_for_user(session, people.editor, "shared.example", need="edit") == people.shared
    with pytest.raises(AccessDenied):
        domain_for_user(session, people.viewer, "shared.example", need="edit")
    with pytest.raises(AccessDenied):
        domain_for_user(session, people.editor, "shared.example", need="admin")


@pytest.mark.parametrize("name", ["foreign.example", "unhosted.example", "not a name", "x" * 300])
def test_a_foreign_domain_reads_exactly_like_one_not_hosted(session, people, name):
    with pytest.raises(DomainNotFound) as raised:
        domain_for_user(session, people.editor, name)
    assert raised.value.message == f"domain {name[:253]} is not hosted here"


def test_tokens_are_stored_hashed_and_stop_at_revocation(session, people):
    token, secret = create_token(session, people.editor, "deploy", actor="test")
    stored = session.scalars(select(ApiToken.token_hash)).all()
    assert secret.startswith("stsp_") and secret not in stored and len(stored[0]) == 64
    assert user_for_token(session, secret) == (people.editor, token)
    assert token.last_used_at is not None
    assert user_for_token(session, secret[:-1] + ("A" if secret[-1] != "A" else "B")) is None
    revoke_token(session, token, actor="test")
    assert user_for_token(session, secret) is None


def test_every_policy_change_is_audited_with_what_changed(session, people):
    first = current_version(session, people.shared)
    update_policy(session, people.shared, mode="enforce", actor="web:editor@customer.example", enforce_confirmed=True)
    rollback_to(session, people.shared, first.policy_id, actor="api:editor@customer.example (token #1)")
    events = domain_events(session, people.shared, people.admin)
    assert [e.action for e in events[:3]] == ["policy.rollback", "policy.update", "grant.set"]
    update = events[1]
    assert update.actor == "web:editor@customer.example"
    assert update.detail["changes"] == {"mode": ["testing", "enforce"]}
    assert describe(update.action, update.detail) == (
        f"changed mode from testing to enforce (policy id {first.policy_id} to {update.detail['policy_id']})")
    assert describe(events[0].action, events[0].detail).startswith(f"rolled back to {first.policy_id}")


def test_rollback_to_the_current_policy_makes_no_version(session, people):
    current = current_version(session, people.shared)
    assert rollback_to(session, people.shared, current.policy_id, actor="test") is None
    assert current_version(session, people.shared).policy_id == current.policy_id


def test_describe_never_fails_on_odd_details():
    assert describe("policy.update", {}) == "policy.update"
    assert describe("unknown.action", {"x": 1}) == "unknown.action"


# The command line


def test_user_create_reads_the_password_from_stdin_or_a_prompt(cli, session):
    result = cli("user", "create", "ops@example.com", "--role", "admin", "--password-stdin",
                 input="a long enough password\n")
    assert result.exit_code == 0 and result.output == "created admin ops@example.com\n"
    result = cli("user", "create", "m@example.com", "--role", "member", input="prompted password\nprompted password\n")
    assert result.exit_code == 0, result.output
    assert authenticate(session, "m@example.com", "prompted password") is not None
    assert session.scalars(select(AuditEvent.action)).all().count("user.create") == 2


def test_user_create_refuses_a_short_password_in_one_line(cli):
    result = cli("user", "create", "ops@example.com", "--role", "admin", "--password-stdin", input="short\n")
    assert result.exit_code == 1
    assert result.output == "Error: the password needs at least 10 characters\n"


def test_set_password_and_remove_from_the_command_line(cli, client, session, people):
    from tests.factories import sign_in

    sign_in(client, people.viewer)
    assert client.get("/").status_code == 200
    result = cli("user", "set-password", "viewer@customer.example", "--password-stdin", input="another good one\n")
    assert result.output == "new password set for viewer@customer.example\n"
    assert authenticate(session, "viewer@customer.example", "another good one") == people.viewer
    assert authenticate(session, "viewer@customer.example", PASSWORD) is None
    assert client.get("/").status_code == 302  # sessions signed in with the old password end
    sign_in(client, people.viewer)
    assert client.get("/").status_code == 200
    secret = create_token(session, people.viewer, "ci", actor="test")[1]
    assert cli("user", "remove", "viewer@customer.example").output == "removed viewer@customer.example\n"
    assert client.get("/").status_code == 302  # the signed-in session ends with the account
    assert user_for_token(session, secret) is None and session.scalar(select(ApiToken.id)) is None
    assert session.scalar(select(User).where(User.email == "viewer@customer.example")) is None
    assert cli("user", "remove", "nobody@example.com").output == "Error: no account 'nobody@example.com'\n"


def test_grant_and_revoke_from_the_command_line(cli, session, people):
    assert cli("user", "grant", "viewer@customer.example", "foreign.example", "--role", "editor").exit_code == 0
    assert domain_for_user(session, people.viewer, "foreign.example", need="edit")
    assert "viewer@customer.example" in cli("user", "list").output
    assert cli("user", "revoke", "viewer@customer.example", "foreign.example").exit_code == 0
    with pytest.raises(DomainNotFound):
        domain_for_user(session, people.viewer, "foreign.example")
    refused = cli("user", "grant", "admin@provider.example", "foreign.example", "--role", "viewer")
    assert refused.output == "Error: admin@provider.example is an admin and sees every domain already\n"


def test_token_create_shows_the_secret_once_and_list_never(cli, session, people):
    result = cli("token", "create", "--user", "editor@customer.example", "--name", "ci")
    secret = result.output.splitlines()[-1]
    assert user_for_token(session, secret)[0] == people.editor
    listing = cli("token", "list").output
    assert "editor@customer.example" in listing and "ci" in listing and secret not in listing
    token_id = session.scalars(select(ApiToken.id)).one()
    assert cli("token", "revoke", str(token_id)).exit_code == 0
    assert user_for_token(session, secret) is None
    assert cli("token", "revoke", "999").output == "Error: no token #999\n"


def test_check_admin_tells_a_newcomer_how_to_create_the_first_admin(cli, session):
    output = cli("user", "check-admin").output
    assert "user create you@example.com --role admin" in output and "at least 10 characters" in output
    session.add(User(email="a@example.com", password_hash="x", role="admin"))
    session.commit()
    assert cli("user", "check-admin").output == "admin accounts: a@example.com\n"


def test_domain_rollback_from_the_command_line(cli, session, people):
    first = current_version(session, people.shared)
    cli("domain", "update", "shared.example", "--max-age", "86400")
    result = cli("domain", "rollback", "shared.example", first.policy_id)
    assert result.exit_code == 0, result.output
    assert current_version(session, people.shared).policy_text == first.policy_text
    assert cli("domain", "rollback", "shared.example", "1999").output == (
        "Error: domain shared.example has no policy version 1999\n")


# Settings


def test_admin_hosts_and_login_limit_settings(tmp_path):
    from stspolicy.config import ConfigError, load_config

    config = load_config({"SECRET_KEY": "x", "ADMIN_HOSTS": "Admin.Provider.example. localhost"}, tmp_path)
    assert config["ADMIN_HOSTS"] == ["admin.provider.example", "localhost"]
    assert load_config({"SECRET_KEY": "x"}, tmp_path)["LOGIN_RATE_LIMIT"] == "10 per minute"
    with pytest.raises(ConfigError, match="ADMIN_HOSTS: 'mta-sts.example.com' is a policy host name"):
        load_config({"SECRET_KEY": "x", "ADMIN_HOSTS": "mta-sts.example.com"}, tmp_path)
    with pytest.raises(ConfigError, match="LOGIN_RATE_LIMIT: 'often' is not a rate limit"):
        load_config({"SECRET_KEY": "x", "LOGIN_RATE_LIMIT": "often"}, tmp_path)


def test_the_last_admin_cannot_be_removed(session):
    only = factories.make_user(session, "only@provider.example", "admin")
    with pytest.raises(AccountError, match="the last admin"):
        remove_user(session, only, actor="test")
    factories.make_user(session, "second@provider.example", "admin")
    remove_user(session, only, actor="test")
