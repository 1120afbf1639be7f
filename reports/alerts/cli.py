"""`flask alerts ...`: run the rules and send what is due (from a timer), list incidents.

Exit codes follow sysexits(3): 0 it ran (or another host's run holds the lease), 75
(EX_TEMPFAIL) the database or a channel is unavailable: what was not sent stays queued
and goes with a later run, never twice.
"""

import json
import sys

import click
from flask import current_app

from reports.alerts.incidents import incidents_for
from reports.alerts.service import run
from reports.alerts.settings import alert_settings
from reports.ingest import DATABASE_ERRORS
from stspolicy.extensions import db, utcnow

EX_OK, EX_TEMPFAIL = 0, 75


@click.group("alerts")
def alerts_cli():
    """Alerts and weekly digests."""


@alerts_cli.command("run")
@click.option("--no-digest", is_flag=True, help="Do not queue the weekly digest in this run.")
def run_command(no_digest):
    """Evaluate the rules, update incidents, queue and send notices (and the weekly digest when due)."""
    try:
        outcome = run(db.session, utcnow(), alert_settings(current_app.config), digest=not no_digest)
    except DATABASE_ERRORS as error:
        click.echo(f"database unavailable, try again later: {error.orig}", err=True)
        sys.exit(EX_TEMPFAIL)
    click.echo(outcome.line())
    sys.exit(EX_TEMPFAIL if outcome.unavailable else EX_OK)


@alerts_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list, one object per incident.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
def list_command(as_json, limit):
    """Open incidents, then the recently resolved ones."""
    found = [incident_summary(incident, rows) for incident, rows in incidents_for(db.session, None, limit=limit)]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no incidents")
    for item in found:
        state = f"resolved {item['resolved_at'][:16]}" if item["resolved_at"] else "open"
        click.echo(f"#{item['id']} {state:<22} {item['rule']:<26} {_printable(item['title'])}")
        names = [d["domain"] for d in item["domains"]]
        if names:
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            click.echo(f"    since {item['since'][:16]}; {', '.join(names[:5])}{more}")


def incident_summary(incident, rows) -> dict:
    return {
        "id": incident.id, "rule": incident.rule, "subject": incident.subject, "title": incident.title,
        "since": incident.since.isoformat(), "opened_at": incident.opened_at.isoformat(),
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "lines": incident.lines, "evidence": incident.evidence, "fix": incident.fix,
        "domains": [{"domain": row.domain_name, "since": row.since.isoformat(), "lines": row.lines,
                     "resolved_at": row.resolved_at.isoformat() if row.resolved_at else None} for row in rows],
    }


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)
