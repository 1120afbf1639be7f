"""`flask domain ...`: host domains and their policies from the command line."""

import getpass
import json

import click
from flask import Flask
from sqlalchemy.exc import OperationalError

from .domains import (
    DomainError,
    add_domain,
    current_version,
    dns_records,
    domain_summary,
    get_domain,
    list_domains,
    remove_domain,
    rollback_to,
    update_policy,
)
from .extensions import db
from .names import to_unicode
from .policy import PolicyError, make_policy
from .publisher import PublishError


def cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


class DomainGroup(click.Group):
    """Turns our errors into one line on stderr and a non-zero exit."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (PolicyError, DomainError) as error:
            raise click.ClickException(error.message) from None
        except PublishError as error:
            raise click.ClickException(str(error)) from None
        except OperationalError as error:
            raise click.ClickException(f"database unavailable: {error.orig}") from None


@click.group("domain", cls=DomainGroup)
def domain_cli():
    """Host domains and edit their MTA-STS policies."""


mode_option = click.option("--mode", type=click.Choice(["enforce", "testing", "none"]))
mx_option = click.option("--mx", "mx_patterns", multiple=True, help="An mx pattern; repeat for several.")
max_age_option = click.option("--max-age", help="Seconds senders may cache the policy (0..31557600).")


@domain_cli.command("add")
@click.argument("name")
@click.option("--mode", type=click.Choice(["enforce", "testing", "none"]), default="testing", show_default=True)
@mx_option
@click.option("--max-age", default="604800", show_default=True, help="Seconds senders may cache the policy.")
def add_command(name, mode, mx_patterns, max_age):
    """Host NAME with its first policy."""
    version = add_domain(db.session, name, make_policy(mode, mx_patterns, max_age), actor=cli_actor())
    click.echo(f"added {version.domain.name} with policy id {version.policy_id}; publish:")
    _echo_records(version.domain.name, version.policy_id)


@domain_cli.command("update")
@click.argument("name")
@mode_option
@mx_option
@max_age_option
def update_command(name, mode, mx_patterns, max_age):
    """Change NAME's policy; --mx replaces the whole mx list."""
    domain = get_domain(db.session, name)
    version = update_policy(
        db.session, domain, mode=mode, mx_patterns=list(mx_patterns) or None, max_age=max_age, actor=cli_actor()
    )
    if version is None:
        click.echo(f"{domain.name}: policy unchanged, id stays {current_version(db.session, domain).policy_id}")
        return
    click.echo(f"updated {domain.name}: new policy id {version.policy_id}; publish:")
    _echo_records(domain.name, version.policy_id)


@domain_cli.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def show_command(name, as_json):
    """Show NAME's current policy and the DNS records to publish."""
    domain = get_domain(db.session, name)
    version = current_version(db.session, domain)
    records = dns_records(domain.name, version.policy_id)
    if as_json:
        click.echo(json.dumps(domain_summary(domain, version, records), indent=2))
        return
    label = domain.name if domain.unicode_name == domain.name else f"{domain.name} ({domain.unicode_name})"
    click.echo(f"domain:    {label}")
    click.echo(f"policy id: {version.policy_id} (since {version.created_at:%Y-%m-%d %H:%M:%S} UTC)")
    if domain.removal_requested_at:
        click.echo(f"removal:   started {domain.removal_requested_at:%Y-%m-%d %H:%M:%S} UTC")
    click.echo(f"policy served at https://mta-sts.{domain.name}/.well-known/mta-sts.txt:")
    for line in version.policy_text.splitlines():
        click.echo(f"    {line}")
    click.echo("DNS records to publish:")
    _echo_records(domain.name, version.policy_id)


@domain_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list.")
def list_command(as_json):
    """List hosted domains with their mode and policy id."""
    rows = [(domain, current_version(db.session, domain)) for domain in list_domains(db.session)]
    if as_json:
        click.echo(json.dumps(
            [{"domain": d.name, "domain_unicode": d.unicode_name, "policy_id": v.policy_id, "mode": v.mode}
             for d, v in rows], indent=2))
        return
    for domain, version in rows:
        note = "  (removal started)" if domain.removal_requested_at else ""
        click.echo(f"{domain.name:<40} {version.mode:<8} {version.policy_id}{note}")
    click.echo(f"{len(rows)} domain(s)")


@domain_cli.command("history")
@click.argument("name")
def history_command(name):
    """List every policy version of NAME, newest first."""
    domain = get_domain(db.session, name)
    for version in reversed(domain.versions):
        mx = ",".join(version.mx_patterns) or "-"
        click.echo(
            f"{version.policy_id}  {version.created_at:%Y-%m-%d %H:%M:%S}  {version.mode:<8} "
            f"max_age={version.max_age:<9} mx={mx}  by {version.created_by}"
        )


@domain_cli.command("rollback")
@click.argument("name")
@click.argument("policy_id")
def rollback_command(name, policy_id):
    """Serve NAME's version POLICY_ID again, under a new policy id."""
    domain = get_domain(db.session, name)
    version = rollback_to(db.session, domain, policy_id, actor=cli_actor())
    if version is None:
        click.echo(f"{domain.name}: {policy_id} is the current policy already")
        return
    click.echo(f"rolled {domain.name} back to {policy_id}: new policy id {version.policy_id}; publish:")
    _echo_records(domain.name, version.policy_id)


@domain_cli.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete now, without waiting for cached policies to expire.")
def remove_command(name, force):
    """Remove NAME: first serve `mode: none`, delete once cached policies have expired."""
    domain = get_domain(db.session, name)
    removal = remove_domain(db.session, domain, actor=cli_actor(), force=force)
    if removal.state == "deleted":
        click.echo(f"deleted {to_unicode(domain.name)}; remove its _mta-sts and mta-sts DNS records")
    elif removal.state == "started":
        new_id = f" with new policy id {removal.version.policy_id}" if removal.version else ""
        click.echo(
            f"{domain.name} now serves mode: none{new_id}; publish the new _mta-sts id, then run "
            f"remove again after {removal.deletable_at:%Y-%m-%d %H:%M} UTC"
        )
        _echo_records(domain.name, current_version(db.session, domain).policy_id)
    else:
        click.echo(
            f"{domain.name}: senders may cache the old policy until {removal.deletable_at:%Y-%m-%d %H:%M} UTC; "
            "run remove again then, or use --force"
        )


def _echo_records(domain: str, policy_id: str) -> None:
    for record in dns_records(domain, policy_id):
        click.echo(f"    {record.zone_line()}")


def init_app(app: Flask) -> None:
    app.cli.add_command(domain_cli)
