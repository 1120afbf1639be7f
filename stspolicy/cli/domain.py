"""`flask domain ...` and `flask policy-files ...`: host domains, edit their policies, write the files nginx serves."""


import json

import click

from stspolicy.base.audit import cli_actor
from stspolicy.base.settings import current_settings
from stspolicy.cli.common import CommandGroup
from stspolicy.dns.models import PENDING, DnsObservation
from stspolicy.dns.publish import domain_summary, published_records
from stspolicy.extensions import db, utcnow
from stspolicy.policies.files import sync_policy_files
from stspolicy.policies.models import Domain, PolicyVersion
from stspolicy.policies.names import to_unicode
from stspolicy.policies.queries import current_version, find_version, get_domain, list_domains
from stspolicy.policies.rules import make_policy, policy_warnings
from stspolicy.policies.service import (
    add_domain,
    apply_due_mx_removals,
    change_policy,
    needs_confirmation,
    planned_mx_removal,
    remove_domain,
    rollback_to,
)
from stspolicy.propagation import propagate
from stspolicy.report_figures import enforce_evidence


@click.group("domain", cls=CommandGroup)
def domain_cli():
    """Host domains and edit their MTA-STS policies."""


mode_option = click.option("--mode", type=click.Choice(["enforce", "testing", "none"]))


mx_option = click.option("--mx", "mx_patterns", multiple=True, help="An mx pattern; repeat for several.")


max_age_option = click.option("--max-age", help="Seconds senders may cache the policy (0..31557600).")


def echo_enforce_evidence(domain: Domain, previous: PolicyVersion, version: PolicyVersion | None) -> None:
    """A command line is the operator's decision, taken at once: a switch to enforce goes ahead,
    with what the confirmation page would have shown against it on stderr."""
    if version is not None and needs_confirmation(previous.policy, version.policy):
        for line in enforce_evidence(db.session, domain, version.policy).lines():
            click.echo(f"warning: against enforce: {line}", err=True)


@domain_cli.command("add")
@click.argument("name")
@click.option("--mode", type=click.Choice(["enforce", "testing", "none"]), default="testing", show_default=True)
@mx_option
@click.option("--max-age", default="604800", show_default=True, help="Seconds senders may cache the policy.")
def add_command(name, mode, mx_patterns, max_age):
    """Host NAME with its first policy."""
    version = add_domain(db.session, name, make_policy(mode, mx_patterns, max_age), actor=cli_actor())
    propagate(db.session, current_settings(), version.domain.name, version, wait=True)
    click.echo(f"added {version.domain.name} with policy id {version.policy_id}; publish:")
    echo_records(version.domain, version.policy_id)
    echo_warnings(version.domain, version)


@domain_cli.command("update")
@click.argument("name")
@mode_option
@mx_option
@max_age_option
@click.option("--schedule-removal", is_flag=True,
              help="Keep the mx patterns that --mx drops until senders' copies of the current policy expire, "
                   "and remove them then (flask domain apply-scheduled).")
def update_command(name, mode, mx_patterns, max_age, schedule_removal):
    """Change NAME's policy; --mx replaces the whole mx list."""
    domain = get_domain(db.session, name)
    previous = current_version(db.session, domain)
    settings = current_settings()
    change = change_policy(
        db.session, domain, mode=mode, mx_patterns=list(mx_patterns) or None, max_age=max_age, actor=cli_actor(),
        txt_ttl=settings.updates.record_ttl, schedule_mx_removal=schedule_removal, enforce_confirmed=True,
    )
    version = change.version
    if version is not None:
        echo_if_pending(propagate(db.session, settings, domain.name, version, wait=True))
    echo_enforce_evidence(domain, previous, version)
    if version is None:
        click.echo(f"{domain.name}: policy unchanged, id stays {previous.policy_id}")
    else:
        click.echo(f"updated {domain.name}: new policy id {version.policy_id}; publish:")
        echo_records(domain, version.policy_id)
    if change.scheduled:
        click.echo(f"kept {', '.join(change.scheduled.mx_patterns)} in the policy until "
                   f"{change.scheduled.due_at:%Y-%m-%d %H:%M} UTC, when flask domain apply-scheduled removes them")
    elif change.mx_removal:
        click.echo(f"warning: {change.mx_removal.message()}; next time: --schedule-removal", err=True)
    echo_warnings(domain, version or previous)


@domain_cli.command("apply-scheduled")
def apply_scheduled_command():
    """Remove the mx patterns whose scheduled removal is due (run by the maintenance timer)."""
    applied = apply_due_mx_removals(db.session, utcnow())
    for name, version in applied:
        if version is not None:
            propagate(db.session, current_settings(), name, version, wait=True)
            click.echo(f"{to_unicode(name)}: scheduled mx removal applied, new policy id {version.policy_id}")
        else:
            click.echo(f"{to_unicode(name)}: scheduled mx removal left the policy as it was (see the audit log)")
    click.echo(f"{len(applied)} scheduled removal(s) due")


@domain_cli.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def show_command(name, as_json):
    """Show NAME's current policy and the DNS records to publish."""
    domain = get_domain(db.session, name)
    version = current_version(db.session, domain)
    records = published_records(db.session, current_settings(), domain, version.policy_id)
    echo_warnings(domain, version)
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
    echo_records(domain, version.policy_id)


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
        shown = domain.name if domain.unicode_name == domain.name else f"{domain.name} ({domain.unicode_name})"
        click.echo(f"{shown:<40} {version.mode:<8} {version.policy_id}{note}")
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
    previous = current_version(db.session, domain)
    removal = planned_mx_removal(db.session, domain, find_version(db.session, domain, policy_id).policy,
                                 current_settings().updates.record_ttl)
    version = rollback_to(db.session, domain, policy_id, actor=cli_actor(), enforce_confirmed=True)
    if version is not None:
        echo_if_pending(propagate(db.session, current_settings(), domain.name, version, wait=True))
    echo_enforce_evidence(domain, previous, version)
    if version is None:
        click.echo(f"{domain.name}: {policy_id} is the current policy already")
        return
    click.echo(f"rolled {domain.name} back to {policy_id}: new policy id {version.policy_id}; publish:")
    echo_records(domain, version.policy_id)
    if removal:
        click.echo(f"warning: {removal.message()}", err=True)


@domain_cli.command("remove")
@click.argument("name")
@click.option("--force", is_flag=True, help="Delete now, without waiting for cached policies to expire.")
def remove_command(name, force):
    """Remove NAME: first serve `mode: none`, delete once cached policies have expired."""
    domain = get_domain(db.session, name)
    name = domain.name
    removal = remove_domain(db.session, domain, actor=cli_actor(), force=force)
    if removal.state != "pending":
        echo_if_pending(propagate(db.session, current_settings(), name, removal.version, wait=True))
    if removal.state == "deleted":
        click.echo(f"deleted {to_unicode(domain.name)}; remove its _mta-sts and mta-sts DNS records")
    elif removal.state == "started":
        new_id = f" with new policy id {removal.version.policy_id}" if removal.version else ""
        click.echo(
            f"{domain.name} now serves mode: none{new_id}; publish the new _mta-sts id, then run "
            f"remove again after {removal.deletable_at:%Y-%m-%d %H:%M} UTC"
        )
        echo_records(domain, current_version(db.session, domain).policy_id)
    else:
        click.echo(
            f"{domain.name}: senders may cache the old policy until {removal.deletable_at:%Y-%m-%d %H:%M} UTC; "
            "run remove again then, or use --force"
        )


def echo_if_pending(observation: DnsObservation | None) -> None:
    """An `_mta-sts` id left to `flask dns publish-pending` because a serving node is behind (a silent one)."""
    if observation is not None and observation.status == PENDING:
        click.echo(f"pending: {observation.findings[0]['message']}")


def echo_warnings(domain: Domain, version) -> None:
    """What RFC 8461 advises against in the policy, on stderr: the change stands, the exit status stays 0."""
    for warning in policy_warnings(domain.name, version.policy):
        click.echo(f"warning: {warning.message}", err=True)


def echo_records(domain: Domain, policy_id: str) -> None:
    """The records the domain's owner publishes, in its publishing mode (delegated: CNAMEs)."""
    for record in published_records(db.session, current_settings(), domain, policy_id):
        click.echo(f"    {record.zone_line()}")


@click.group("policy-files", cls=CommandGroup)
def policy_files_cli():
    """The policy files nginx serves (POLICY_FILES_DIR)."""


@policy_files_cli.command("sync")
def sync_command():
    """Write every current policy to its file and remove the files of domains no longer hosted."""
    root = current_settings().serving.policy_files_dir
    if root is None:
        raise click.ClickException("POLICY_FILES_DIR is not set: policies are served by the application only")
    result = sync_policy_files(root)
    click.echo(f"{root}: {result.written} written, {result.removed} removed, {result.unchanged} unchanged")
