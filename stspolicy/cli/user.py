"""`flask user ...` and `flask token ...`: accounts, their domain access and API tokens."""

import sys

import click

from stspolicy.accounts.models import GRANT_ROLES, ROLES, ApiToken
from stspolicy.accounts.service import (
    PASSWORD_MIN_LENGTH,
    AccountError,
    create_user,
    get_user,
    list_users,
    remove_grant,
    remove_user,
    set_grant,
    set_password,
)
from stspolicy.accounts.tokens import create_token, list_tokens, revoke_token
from stspolicy.base.audit import cli_actor
from stspolicy.cli.common import CommandGroup
from stspolicy.extensions import db
from stspolicy.policies.queries import get_domain


@click.group("user", cls=CommandGroup)
def user_cli():
    """Accounts and their access to domains."""


password_stdin_option = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of standard input."
)


@user_cli.command("create")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), required=True, help="admin: every domain; member: granted ones.")
@password_stdin_option
def create_command(email, role, password_stdin):
    """Create the account EMAIL; the password is prompted for unless --password-stdin."""
    user = create_user(db.session, email, _read_password(password_stdin), role, actor=cli_actor())
    click.echo(f"created {user.role} {user.email}")


@user_cli.command("set-password")
@click.argument("email")
@password_stdin_option
def set_password_command(email, password_stdin):
    """Give the account EMAIL a new password."""
    user = get_user(db.session, email)
    set_password(db.session, user, _read_password(password_stdin), actor=cli_actor())
    click.echo(f"new password set for {user.email}")


@user_cli.command("remove")
@click.argument("email")
def remove_command(email):
    """Delete the account EMAIL with its domain access and API tokens."""
    user = get_user(db.session, email)
    remove_user(db.session, user, actor=cli_actor())
    click.echo(f"removed {user.email}")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt(f"Password (at least {PASSWORD_MIN_LENGTH} characters)", hide_input=True,
                        confirmation_prompt=True)


@user_cli.command("list")
def list_command():
    """List accounts with their role and domain access."""
    users = list_users(db.session)
    for user in users:
        access = ", ".join(f"{grant.domain.name} ({grant.role})" for grant in user.grants)
        click.echo(f"{user.email:<40} {user.role:<7} {access if user.role == 'member' else 'all domains'}")
    click.echo(f"{len(users)} account(s)")


@user_cli.command("check-admin")
def check_admin_command():
    """Say whether an admin account exists, and how to create the first one."""
    admins = [user for user in list_users(db.session) if user.is_admin]
    if admins:
        click.echo(f"admin accounts: {', '.join(user.email for user in admins)}")
    else:
        click.echo("No admin account yet. Create the first one (it asks for a password of at least "
                   f"{PASSWORD_MIN_LENGTH} characters):\n"
                   "    .venv/bin/flask --app wsgi user create you@example.com --role admin\n"
                   "then sign in at http://127.0.0.1:8000/ and invite the others under People.")


@user_cli.command("grant")
@click.argument("email")
@click.argument("domain")
@click.option("--role", type=click.Choice(GRANT_ROLES), required=True, help="editor may change the policy.")
def grant_command(email, domain, role):
    """Give the member EMAIL access to DOMAIN."""
    grant = set_grant(db.session, get_user(db.session, email), get_domain(db.session, domain), role,
                      actor=cli_actor())
    click.echo(f"{grant.user.email} is now {grant.role} of {grant.domain.name}")


@user_cli.command("revoke")
@click.argument("email")
@click.argument("domain")
def revoke_command(email, domain):
    """Take the member EMAIL's access to DOMAIN away."""
    user, hosted = get_user(db.session, email), get_domain(db.session, domain)
    remove_grant(db.session, user, hosted, actor=cli_actor())
    click.echo(f"{user.email} has no access to {hosted.name} any more")


@click.group("token", cls=CommandGroup)
def token_cli():
    """API tokens for /api/v1."""


@token_cli.command("create")
@click.option("--user", "email", required=True, help="The account the token acts as.")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
def token_create_command(email, name):
    """Create a token; its secret is printed once and never stored."""
    token, secret = create_token(db.session, get_user(db.session, email), name, actor=cli_actor())
    click.echo(f"token #{token.id} for {token.user.email} (shown once, keep it safe):")
    click.echo(secret)


@token_cli.command("list")
def token_list_command():
    """List every token (never their secrets)."""
    tokens = list_tokens(db.session)
    for token in tokens:
        state = f"revoked {token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "active"
        used = f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never"
        click.echo(f"#{token.id:<5} {token.user.email:<40} {token.name:<20} {state:<24} last used {used}")
    click.echo(f"{len(tokens)} token(s)")


@token_cli.command("revoke")
@click.argument("token_id", type=int)
def token_revoke_command(token_id):
    """Revoke token TOKEN_ID at once."""
    token = db.session.get(ApiToken, token_id)
    if token is None:
        raise AccountError(f"no token #{token_id}")
    revoke_token(db.session, token, actor=cli_actor())
    click.echo(f"revoked token #{token.id} of {token.user.email}")
