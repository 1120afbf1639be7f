"""`flask tlsa ...`: TLSA records (DANE, RFC 7672) for certificates and keys, and rollover plans."""


import json
import sys
from pathlib import Path

import click
from cryptography import x509

from stspolicy.base.settings import current_settings
from stspolicy.cli.common import CommandGroup
from stspolicy.dns.check import rollover_plan
from stspolicy.dns.dane import (
    PINS,
    PemError,
    TlsaError,
    key_record,
    load_certificates,
    load_public_key,
    pinned_records,
    records_for_certificate,
    tlsa_name,
    tlsa_record,
)
from stspolicy.dns.tlsa_publish import TlsaOutcome, publish_tlsa
from stspolicy.dns.tlsa_renewal import RenewalError, install_staged, stage_certificate
from stspolicy.extensions import as_utc, db, utcnow
from stspolicy.policies.names import InvalidName, normalize_domain
from stspolicy.policies.queries import list_domains

MAX_PEM_BYTES = 1 << 20  # a certificate chain or key file is a few kilobytes


@click.group("tlsa", cls=CommandGroup)
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


def _host(_context, _parameter, value: str | None) -> str | None:
    """An MX host as the TLSA owner name needs it: A-labels, lower case (RFC 6698 section 3)."""
    if value is None:
        return None
    try:
        return normalize_domain(value)
    except InvalidName as error:
        raise click.BadParameter(str(error)) from None


mx_host_option = click.option("--mx", "mx_host", callback=_host, help="Show the records as zone lines at _25._tcp.MX.")


@tlsa_cli.command("generate")
@cert_option
@click.option("--chain", "chain_file", type=click.Path(exists=True, dir_okay=False),
              help="The issuer certificate(s), PEM, for a 2 1 1 record.")
@click.option("--key", "key_file", type=click.Path(exists=True, dir_okay=False),
              help="A next key (public or private PEM): its 3 1 1 record, to publish before the renewal.")
@mx_host_option
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
@click.option("--next-issuer", "next_issuer", type=click.Path(exists=True, dir_okay=False),
              help="Or the intermediate that will issue it, for 2 1 1 (--cert then holds the chain served now).")
@mx_host_option
@click.option("--ttl", type=click.IntRange(0, 2**31 - 1),
              help="The zone's TTL of the TLSA RRset (default: what the resolver returns with --mx, else 3600).")
@click.option("--published", type=utc_time,
              help="When the next record was published, UTC (default: when checks first saw it with --mx).")
@click.option("--deployed", type=utc_time, help="When the next certificate went into service, UTC.")
def rollover_command(cert_file, next_cert, next_key, next_issuer, mx_host, ttl, published, deployed):
    """Plan a rollover: records to publish now, when to deploy, when to remove the old one (RFC 7671 section 8.1).

    A key rollover (--next-cert, --next-key) changes the 3 1 1 record; an issuer rollover
    (--next-issuer), as when a CA rotates its intermediate, the 2 1 1 record. With --mx the
    live TLSA records and the check history say how long the next record has been in DNS.
    Exit status 0: the next certificate may be deployed now; 1: not yet.
    """
    if sum(bool(option) for option in (next_cert, next_key, next_issuer)) != 1:
        raise click.UsageError("give one of --next-cert, --next-key or --next-issuer")
    chain = _certificates(cert_file)
    if next_issuer:
        if len(chain) < 2:
            raise click.UsageError("--next-issuer needs the chain served now in --cert: "
                                   "the certificate, then its issuer")
        current, upcoming = tlsa_record(chain[1], 2), tlsa_record(_certificates(next_issuer)[0], 2)
        what, unchanged = "a chain from the next issuer", "the next issuer is the current one: 2 1 1 stays the same"
    else:
        new_key = _certificates(next_cert)[0].public_key() if next_cert else _public_key(next_key)
        current, upcoming = tlsa_record(chain[0], 3), key_record(new_key)
        what, unchanged = "the next certificate", "the next certificate keeps the key: 3 1 1 stays the same"
    now = utcnow()
    plan = rollover_plan(db.session, current_settings(), current, upcoming, now=now, domains=list_domains(db.session),
                         mx_host=mx_host, ttl=ttl, published_at=as_utc(published), deployed_at=as_utc(deployed))
    owner = f"{tlsa_name(mx_host)}. IN TLSA " if mx_host else ""
    if not plan.changes:
        click.echo(f"{unchanged}, no DNS change needed")
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
    click.echo(f"deploy {what} not before {plan.deploy_not_before:%Y-%m-%d %H:%M} UTC "
               "(publication + twice the TTL, so that no cache still holds the old set)")
    for record in plan.remove:
        if plan.remove_not_before is None:
            click.echo(f"remove {record} once {what} is in service, not before "
                       f"{plan.deploy_not_before:%Y-%m-%d %H:%M} UTC (give --deployed for the date)")
        else:
            click.echo(f"remove {record} not before {plan.remove_not_before:%Y-%m-%d %H:%M} UTC "
                       "(the later of the deployment and publication + twice the TTL)")
    ready = plan.ready(now)
    click.echo(f"ready: {what} may be deployed now" if ready else "not yet")
    sys.exit(0 if ready else 1)


pin_option = click.option("--pin", type=click.Choice(PINS), default="key", show_default=True,
                          help="What the records pin: the key (3 1 1), the issuer (2 1 1), or both.")
ttl_option = click.option("--ttl", type=click.IntRange(1, 2**31 - 1),
                          help="TTL of the TLSA RRset (default: as published, else 3600).")


def _required_host(context, parameter, value):
    if value is None:
        raise click.BadParameter("an MX host is needed")
    return _host(context, parameter, value)


required_mx_option = click.option("--mx", "mx_host", callback=_required_host, required=True,
                                  help="The MX host: its records are at _25._tcp.MX.")


def _echo_outcome(outcome: TlsaOutcome) -> None:
    if outcome.server:
        change = ", ".join([*(f"+{r}" for r in outcome.added), *(f"-{r}" for r in outcome.removed)])
        click.echo(f"{outcome.owner}: written to {outcome.server}" + (f" ({change})" if change else " (no change)"))
    else:
        click.echo(f"no zone this service may update holds {outcome.owner}: publish exactly these records:")
    for line in outcome.zone_lines():
        click.echo(f"    {line}")
    click.echo(outcome.resolver_says())
    if not outcome.in_dns:
        missing = [str(record) for record in outcome.records if record not in outcome.visible]
        click.echo(f"not in DNS yet: {', '.join(missing)}")


@tlsa_cli.command("publish")
@required_mx_option
@cert_option
@click.option("--next-cert", "next_cert", type=click.Path(exists=True, dir_okay=False),
              help="The certificate that will replace it: its records are published now, beside the current ones.")
@click.option("--next-key", "next_key", type=click.Path(exists=True, dir_okay=False),
              help="Or just the key it will have (public or private PEM).")
@click.option("--next-issuer", "next_issuer", type=click.Path(exists=True, dir_okay=False),
              help="Or the intermediate that will issue it (2 1 1).")
@click.option("--prune", is_flag=True, help="Remove the records nothing presented for twice the TTL.")
@pin_option
@ttl_option
def publish_command(mx_host, cert_file, next_cert, next_key, next_issuer, prune, pin, ttl):
    """Publish the "current + next" TLSA records of an MX host (RFC 7671 section 8.1) and read them back.

    By RFC 2136 into the zone of a hosted domain in rfc2136 mode that holds _25._tcp.MX; else
    it prints the exact records and checks DNS for them. Exit status 0: the records are in DNS; 1: not yet.
    """
    if sum(bool(option) for option in (next_cert, next_key, next_issuer)) > 1:
        raise click.UsageError("give at most one of --next-cert, --next-key or --next-issuer")
    try:
        current = pinned_records(_certificates(cert_file), pin)
        if next_cert:
            upcoming = pinned_records(_certificates(next_cert), pin)
        elif next_key:
            upcoming = [key_record(_public_key(next_key))]
        else:
            upcoming = [tlsa_record(_certificates(next_issuer)[0], 2)] if next_issuer else []
    except TlsaError as error:
        raise click.UsageError(str(error)) from None
    outcome = publish_tlsa(db.session, current_settings(), mx_host, current=current, upcoming=upcoming, prune=prune,
                           ttl=ttl, now=utcnow())
    _echo_outcome(outcome)
    sys.exit(0 if outcome.in_dns else 1)


@tlsa_cli.command("stage")
@required_mx_option
@click.option("--cert", "cert_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The renewed certificate with its chain (fullchain), PEM.")
@click.option("--key", "key_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Its private key, PEM.")
@click.option("--installed", "installed_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="The certificate chain the mail server uses now.")
@click.option("--staging-dir", type=click.Path(file_okay=False), default="/var/lib/stspolicy/dane",
              show_default=True, help="Where staged certificates wait, one folder per MX host.")
@pin_option
@ttl_option
def stage_command(mx_host, cert_file, key_file, installed_file, staging_dir, pin, ttl):
    """Hold a renewed certificate back and publish its TLSA records now (a certbot or acme.sh hook runs this)."""
    try:
        staged, outcome = stage_certificate(
            db.session, current_settings(), mx_host, chain_file=Path(cert_file), key_file=Path(key_file),
            installed_file=Path(installed_file), staging_dir=Path(staging_dir), pin=pin, ttl=ttl, now=utcnow())
    except (RenewalError, TlsaError) as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"staged for {mx_host}: {staged.chain_path} (not installed)")
    _echo_outcome(outcome)


@tlsa_cli.command("install")
@required_mx_option
@click.option("--installed", "installed_file", required=True, type=click.Path(dir_okay=False),
              help="The certificate chain file the mail server reads: replaced by the staged one.")
@click.option("--installed-key", "installed_key_file", required=True, type=click.Path(dir_okay=False),
              help="The private key file the mail server reads.")
@click.option("--reload", "reload_command", default="postfix reload", show_default=True,
              help="The command that makes the mail server read them again.")
@pin_option
def install_command(mx_host, installed_file, installed_key_file, reload_command, pin):
    """Install the staged certificate once its records have been in DNS, DNSSEC-secure, for twice the TTL,
    then prune the records nothing presents any more (a timer runs this).

    Exit status 0: installed, or nothing staged; 1: not yet.
    """
    now = utcnow()
    try:
        outcome = install_staged(db.session, current_settings(), mx_host, installed_file=Path(installed_file),
                                 installed_key_file=Path(installed_key_file), reload_command=reload_command,
                                 pin=pin, now=now)
    except (RenewalError, TlsaError) as error:
        raise click.ClickException(str(error)) from None
    if outcome.waiting:
        for plan in outcome.plans:
            for warning in plan.warnings:
                click.echo(f"warning: {warning}")
            click.echo(f"not yet: {plan.publish[-1]} is safe to rely on from {plan.deploy_not_before:%Y-%m-%d %H:%M:%S}"
                       " UTC")
        sys.exit(1)
    if outcome.installed:
        click.echo(f"installed the certificate staged {outcome.staged.staged_at:%Y-%m-%d %H:%M:%S} UTC "
                   f"into {installed_file} and ran {reload_command!r}")
    _echo_outcome(outcome.publication)
