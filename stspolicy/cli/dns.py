"""`flask dns ...`: check hosted domains as senders see them, and publish their `_mta-sts` records."""


import json
import sys

import click

from stspolicy.base.audit import cli_actor
from stspolicy.base.settings import current_settings
from stspolicy.cli.common import CommandGroup
from stspolicy.cli.domain import echo_if_pending, echo_records
from stspolicy.dns.check import check_domain, observation_summary
from stspolicy.dns.models import PENDING, PUBLISH_MODES, DnsObservation, DnsSetting
from stspolicy.dns.publish import set_publish_mode, sts_target
from stspolicy.dns.queries import history
from stspolicy.dns.records import DnsRecord, render_sts_record
from stspolicy.extensions import db, utcnow
from stspolicy.policies.errors import DomainError
from stspolicy.policies.queries import current_version, get_domain, list_domains
from stspolicy.propagation import propagate, publish_pending

EXIT_CODES = {"ok": 0, "problems": 1, "unchecked": 2}


class NotChecked(click.ClickException):
    """A domain that cannot be checked at all, such as one not hosted here: exit 2, not 1."""

    exit_code = EXIT_CODES["unchecked"]


@click.group("dns", cls=CommandGroup)
def dns_cli():
    """Check and publish the DNS records of hosted domains."""


@dns_cli.command("check")
@click.argument("names", nargs=-1)
@click.option("--json", "as_json", is_flag=True, help="A JSON list, one object per domain.")
def check_command(names, as_json):
    """Check DNS, DNSSEC, TLSA and STARTTLS of DOMAINs (all hosted domains when none).

    Exit status: 0 all good, 1 problems found, 2 could not check.
    """
    try:
        domains = [get_domain(db.session, name) for name in names] or list_domains(db.session)
    except DomainError as error:
        raise NotChecked(error.message) from None
    observations = [check_domain(db.session, current_settings(), domain, current_version(db.session, domain))
                    for domain in domains]
    summaries = [observation_summary(observation) for observation in observations]
    if as_json:
        click.echo(json.dumps(summaries, indent=2))
    else:
        for summary in summaries:
            _echo_summary(summary)
    sys.exit(max((EXIT_CODES[o.status] for o in observations), default=0))


def _echo_summary(summary: dict) -> None:
    click.echo(f"{summary['domain']}: {summary['status']} (policy id {summary['policy_id']}, "
               f"{summary['observed_at']})")
    for finding in summary["findings"]:
        click.echo(f"  {finding['level']:<7} {finding['message']}")
    for mx in summary["mx_hosts"]:
        tls = mx["tls_version"] or "no TLS"
        tlsa = f"TLSA {mx['tlsa_state']}" if mx["tlsa_records"] else "no TLSA"
        match = f", matches {mx['tlsa_match']}" if mx["tlsa_match"] else ""
        click.echo(f"  mx {mx['preference']:>3} {mx['host']} [{mx['address'] or '-'}] {tls}, {tlsa}{match}")


@dns_cli.command("history")
@click.argument("name")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True)
def history_command(name, limit, as_json):
    """List NAME's last checks and publishing attempts, newest first."""
    domain = get_domain(db.session, name)
    summaries = [observation_summary(o) for o in history(db.session, domain, limit)]
    if as_json:
        click.echo(json.dumps(summaries, indent=2))
        return
    for summary in summaries:
        problems = [f for f in summary["findings"] if f["level"] != "ok"]
        first = f": {problems[0]['message']}" if problems else ""
        more = f" (+{len(problems) - 1} more)" if len(problems) > 1 else ""
        click.echo(f"{summary['observed_at']}  {summary['kind']:<7} {summary['status']:<9} "
                   f"id {summary['policy_id']}{first}{more}")


@dns_cli.command("mode")
@click.argument("name")
@click.argument("mode", type=click.Choice(PUBLISH_MODES))
@click.option("--server", help="rfc2136: the primary server of the domain's zone, address[:port].")
@click.option("--zone", help="rfc2136: the zone that holds _mta-sts.<domain>.")
@click.option("--key", help="rfc2136: the name of a TSIG key from DNS_TSIG_KEYS.")
def mode_command(name, mode, server, zone, key):
    """Choose how NAME's _mta-sts record is published, then publish it and show what the owner must publish."""
    domain = get_domain(db.session, name)
    set_publish_mode(db.session, current_settings(), domain, mode, actor=cli_actor(), server=server, zone=zone, key=key)
    observation = propagate(db.session, current_settings(), domain.name, current_version(db.session, domain), wait=True)
    click.echo(f"{domain.name}: publishing mode {mode}")
    if observation is not None:
        _echo_attempt(observation)
    click.echo("the domain's owner publishes:" if mode == "delegated" else "DNS records of the domain:")
    _echo_records(domain)


@dns_cli.command("publish")
@click.argument("name")
def publish_command(name):
    """Write NAME's current _mta-sts record again (rfc2136 and delegated modes)."""
    domain = get_domain(db.session, name)
    observation = propagate(db.session, current_settings(), domain.name, current_version(db.session, domain), wait=True)
    if observation is None:
        raise click.ClickException(f"{domain.name} is in manual mode: publish its records by hand")
    _echo_attempt(observation)


def _echo_attempt(observation: DnsObservation) -> None:
    """Published, or pending while a serving node is behind (`dns publish-pending` writes it once none is)."""
    if observation.status == PENDING:
        echo_if_pending(observation)
    else:
        click.echo(f"published: {observation.findings[0]['message']}")


@dns_cli.command("publish-pending")
def publish_pending_command():
    """Write the _mta-sts ids that policy changes made in the web left pending, once due.

    A worker writes its own when they fall due; this is the backstop (the maintenance timer
    runs it) for those of a worker that stopped first. Exit status 1 if an update failed.
    """
    outcomes = publish_pending(db.session, current_settings(), utcnow())
    for outcome in outcomes:
        click.echo(f"{outcome.domain}: {outcome.state}: {outcome.detail}")
    failed = sum(outcome.state == "failed" for outcome in outcomes)
    published = sum(outcome.state == "published" for outcome in outcomes)
    click.echo(f"{published} published, {failed} failed, {len(outcomes) - published - failed} other")
    sys.exit(1 if failed else 0)


@dns_cli.command("records")
@click.argument("name")
def records_command(name):
    """Show the exact records NAME's owner publishes (CNAMEs once, in delegated mode)."""
    _echo_records(get_domain(db.session, name))


def _echo_records(domain) -> None:
    target = sts_target(current_settings(), domain.name, db.session.get(DnsSetting, domain.id))
    policy_id = current_version(db.session, domain).policy_id
    echo_records(domain, policy_id)
    if target:
        kept = DnsRecord(target, "TXT", render_sts_record(policy_id), current_settings().updates.record_ttl)
        click.echo(f"and this service keeps, in its own zone:\n    {kept.zone_line()}")
