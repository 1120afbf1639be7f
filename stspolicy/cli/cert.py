"""`flask cert ...`: ACME certificates of the served hosts."""


import json

import click
from cryptography.fernet import Fernet

from stspolicy.base.settings import current_settings
from stspolicy.certificates.service import (
    acme_issuer,
    certificate_states,
    host_for,
    issue_certificate,
    renew_certificates,
    reseal_keys,
)
from stspolicy.cli.common import CommandGroup
from stspolicy.extensions import db, utcnow


@click.group("cert", cls=CommandGroup)
def cert_cli():
    """ACME certificates of mta-sts.<domain> and ACME_EXTRA_HOSTS (files in CERTS_DIR)."""


@cert_cli.command("status")
@click.option("--json", "as_json", is_flag=True, help="A JSON list.")
def cert_status_command(as_json):
    """Show each served host's certificate: valid, due for renewal, expired or missing."""
    states = certificate_states(db.session, current_settings(), utcnow())
    if as_json:
        click.echo(json.dumps([
            {"host": s.host, "state": s.state, "not_after": s.not_after.isoformat() if s.not_after else None,
             "days_left": round(s.days_left, 2) if s.days_left is not None else None, "failures": s.failures,
             "last_error": s.last_error, "next_attempt": s.next_attempt.isoformat() if s.next_attempt else None,
             "last_attempt": s.last_attempt.isoformat() if s.last_attempt else None}
            for s in states], indent=2))
        return
    for s in states:
        expiry = f"until {s.not_after:%Y-%m-%d} ({s.days_left:.0f} days)" if s.not_after else ""
        failing = f"  last attempt failed ({s.failures}x): {s.last_error}" if s.failures else ""
        click.echo(f"{s.host:<45} {s.state:<8} {expiry}{failing}")
    click.echo(f"{len(states)} host(s)")


@cert_cli.command("issue")
@click.argument("name")
def cert_issue_command(name):
    """Request a certificate for NAME (a hosted domain or an extra host) now."""
    settings = current_settings()
    host = host_for(db.session, settings, name)
    outcome = issue_certificate(db.session, settings, acme_issuer(db.session, settings), host, utcnow())
    _echo_outcome(outcome)
    if outcome.result == "failed":
        raise SystemExit(1)


@cert_cli.command("renew")
def cert_renew_command():
    """Issue missing certificates, renew those due, remove those of hosts no longer served."""
    settings = current_settings()
    outcomes = renew_certificates(db.session, settings, acme_issuer(db.session, settings), utcnow())
    for outcome in outcomes:
        _echo_outcome(outcome)
    failed = sum(outcome.result == "failed" for outcome in outcomes)
    click.echo(f"{len(outcomes)} change(s), {failed} failed")
    if failed:
        raise SystemExit(1)


@cert_cli.command("new-key")
def new_key_command():
    """Print a new key for KEY_ENCRYPTION_KEYS (put it first; keep the old ones until `flask cert reseal`)."""
    click.echo(Fernet.generate_key().decode("ascii"))


@cert_cli.command("reseal")
def reseal_command():
    """Seal every private key in the database again with the first of KEY_ENCRYPTION_KEYS."""
    click.echo(f"{reseal_keys(db.session, current_settings())} key(s) sealed with the first key")


def _echo_outcome(outcome) -> None:
    click.echo(f"{outcome.host}: {outcome.result}: {outcome.detail}")
