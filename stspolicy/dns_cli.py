"""`flask dns ...` (checks, history, publishing) and `flask tlsa ...` (records for certificates)."""

import json
import sys
from pathlib import Path

import click
from cryptography import x509
from flask import Flask

from stspolicy import dnscheck
from stspolicy.cli import DomainGroup, echo_records
from stspolicy.dane import PemError, load_certificates, load_public_key, records_for_certificate, tlsa_name
from stspolicy.dns_models import PUBLISH_MODES, DnsSetting
from stspolicy.domains import DomainError, current_version, get_domain, list_domains
from stspolicy.extensions import db
from stspolicy.models import as_utc, utcnow
from stspolicy.publishing import publish_policy_id, set_publish_mode

EXIT_CODES = {"ok": 0, "problems": 1, "unchecked": 2}
MAX_PEM_BYTES = 1 << 20  # a certificate chain or key file is a few kilobytes


class NotChecked(click.ClickException):
    """A domain that cannot be checked at all, such as one not hosted here: exit 2, not 1."""

    exit_code = EXIT_CODES["unchecked"]


@click.group("dns", cls=DomainGroup)
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
    observations = [dnscheck.check_domain(db.session, domain, current_version(db.session, domain))
                    for domain in domains]
    summaries = [dnscheck.observation_summary(observation) for observation in observations]
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
    summaries = [dnscheck.observation_summary(o) for o in dnscheck.history(db.session, domain, limit)]
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
    set_publish_mode(db.session, domain, mode, server=server, zone=zone, key=key)
    version = current_version(db.session, domain)
    observation = publish_policy_id(db.session, domain, version)
    click.echo(f"{domain.name}: publishing mode {mode}")
    if observation is not None:
        click.echo(f"published: {observation.findings[0]['message']}")
    click.echo("the domain's owner publishes:" if mode == "delegated" else "DNS records of the domain:")
    _echo_records(domain)


@dns_cli.command("publish")
@click.argument("name")
def publish_command(name):
    """Write NAME's current _mta-sts record again (rfc2136 and delegated modes)."""
    domain = get_domain(db.session, name)
    observation = publish_policy_id(db.session, domain, current_version(db.session, domain))
    if observation is None:
        raise click.ClickException(f"{domain.name} is in manual mode: publish its records by hand")
    click.echo(f"published: {observation.findings[0]['message']}")


@dns_cli.command("records")
@click.argument("name")
def records_command(name):
    """Show the exact records NAME's owner publishes (CNAMEs once, in delegated mode)."""
    _echo_records(get_domain(db.session, name))


def _echo_records(domain) -> None:
    target = dnscheck.sts_target(domain.name, db.session.get(DnsSetting, domain.id))
    policy_id = current_version(db.session, domain).policy_id
    echo_records(domain, policy_id)
    if target:
        click.echo(f"and this service keeps, in its own zone:\n    {target}. IN TXT \"v=STSv1; id={policy_id}\"")


@click.group("tlsa")
def tlsa_cli():
    """TLSA records (DANE, RFC 7672) for certificates and keys."""


def _read_pem(path: str) -> bytes:
    data = Path(path).read_bytes()[: MAX_PEM_BYTES + 1]
    if len(data) > MAX_PEM_BYTES:
        raise click.BadParameter(f"{path} is larger than {MAX_PEM_BYTES} bytes: not a PEM file")
    return data


def _certificates(path: str) -> list[x509.Certificate]:
    try:
        return load_certificates(_read_pem(path))
    except PemError as error:
        raise click.BadParameter(f"{path} holds {error}") from None


def _public_key(path: str):
    try:
        return load_public_key(_read_pem(path))
    except PemError as error:
        raise click.BadParameter(f"{path} holds {error}") from None


cert_option = click.option("--cert", "cert_file", required=True, type=click.Path(exists=True, dir_okay=False),
                           help="The server certificate, PEM (may be followed by its chain).")
mx_option = click.option("--mx", "mx_host", help="Show the records as zone lines at _25._tcp.MX.")


@tlsa_cli.command("generate")
@cert_option
@click.option("--chain", "chain_file", type=click.Path(exists=True, dir_okay=False),
              help="The issuer certificate(s), PEM, for a 2 1 1 record.")
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False),
              help="A next key (public or private PEM): its 3 1 1 record, to publish before the renewal.")
@mx_option
@click.option("--json", "as_json", is_flag=True)
def generate_command(cert_file, chain_file, key_file, mx_host, as_json):
    """Print 3 1 1 for the certificate's key and 2 1 1 for its issuer (RFC 7672 section 3.1)."""
    chain = _certificates(cert_file) + (_certificates(chain_file) if chain_file else [])
    rows = records_for_certificate(chain, _public_key(key_file) if key_file else None)
    if as_json:
        click.echo(json.dumps([{"record": str(r), "usage": r.usage, "selector": r.selector,
                                "matching_type": r.matching_type, "note": note} for r, note in rows], indent=2))
        return
    owner = f"{tlsa_name(mx_host)}. IN TLSA " if mx_host else ""
    for record, note in rows:
        click.echo(f"{owner}{record}  ; {note}")


utc_time = click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"])


@tlsa_cli.command("rollover")
@cert_option
@click.option("--next-cert", "next_cert", type=click.Path(exists=True, dir_okay=False),
              help="The certificate that will replace it.")
@click.option("--next-key", "next_key", type=click.Path(exists=True, dir_okay=False),
              help="Or just the key it will have (public or private PEM).")
@mx_option
@click.option("--ttl", type=click.IntRange(0, 2**31 - 1),
              help="The zone's TTL of the TLSA RRset (default: what the resolver returns with --mx, else 3600).")
@click.option("--published", type=utc_time,
              help="When the next key's record was published, UTC (default: when checks first saw it with --mx).")
@click.option("--deployed", type=utc_time, help="When the next certificate went into service, UTC.")
def rollover_command(cert_file, next_cert, next_key, mx_host, ttl, published, deployed):
    """Plan a key rollover: records to publish now, when to deploy, when to remove the old one (RFC 7671 section 8.1).

    With --mx the live TLSA records and the check history say how long the next key's
    record has been in DNS. Exit status 0: the next certificate may be deployed now; 1: not yet.
    """
    if bool(next_cert) == bool(next_key):
        raise click.UsageError("give one of --next-cert or --next-key")
    current = _certificates(cert_file)[0]
    new_key = _certificates(next_cert)[0].public_key() if next_cert else _public_key(next_key)
    now = utcnow()
    plan = dnscheck.rollover_plan(db.session, current, new_key, now=now, domains=list_domains(db.session),
                                  mx_host=mx_host, ttl=ttl, published_at=as_utc(published),
                                  deployed_at=as_utc(deployed))
    owner = f"{tlsa_name(mx_host)}. IN TLSA " if mx_host else ""
    if not plan.key_changes:
        click.echo("the next certificate keeps the key: 3 1 1 stays the same, no DNS change needed")
        click.echo(f"    {owner}{plan.publish[0]}")
        return
    click.echo("publish now (current + next):")
    for record in plan.publish:
        click.echo(f"    {owner}{record}")
    for warning in plan.warnings:
        click.echo(f"warning: {warning}")
    if plan.published_at is None:
        click.echo(f"the next record is not known to be in DNS: counted as published now, {now:%Y-%m-%d %H:%M} UTC "
                   "(give --published)")
    else:
        source = "given" if published else "first seen by the checks"
        click.echo(f"the next record was published {plan.published_at:%Y-%m-%d %H:%M} UTC ({source}); "
                   f"TLSA TTL {plan.ttl} s")
    click.echo(f"deploy the next certificate not before {plan.deploy_not_before:%Y-%m-%d %H:%M} UTC "
               "(publication + twice the TTL, so that no cache still holds the old set)")
    for record in plan.remove:
        if plan.remove_not_before is None:
            click.echo(f"remove {record} once the next certificate is in service, not before "
                       f"{plan.deploy_not_before:%Y-%m-%d %H:%M} UTC (give --deployed for the date)")
        else:
            click.echo(f"remove {record} not before {plan.remove_not_before:%Y-%m-%d %H:%M} UTC "
                       "(the later of the deployment and publication + twice the TTL)")
    ready = plan.ready(now)
    click.echo("ready: the next certificate may be deployed now" if ready else "not yet")
    sys.exit(0 if ready else 1)


def init_app(app: Flask) -> None:
    app.cli.add_command(dns_cli)
    app.cli.add_command(tlsa_cli)
