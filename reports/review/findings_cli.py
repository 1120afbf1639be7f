"""`flask report findings [DOMAIN...]`: the findings about hosted domains, for people and for cron.

Exit 0: no finding; 1: findings; 2: it could not look (a domain not hosted, a bad range, the
database unavailable). With --refresh it stores the findings of the last days first (what pages and
alerts read) and prints the open ones.
"""

import json
import sys
from datetime import datetime

import click

from reports.cli import printable
from reports.ingest import DATABASE_ERRORS
from reports.review.finding_queries import DEFAULT_DAYS, RangeError, finding_range, load_findings
from reports.review.finding_store import RECENT, open_findings, refresh_findings
from stspolicy.extensions import db, utcnow
from stspolicy.policies.errors import DomainError
from stspolicy.policies.queries import get_domain, list_domains

NONE_FOUND, FOUND, COULD_NOT_LOOK = 0, 1, 2
_WHEN = click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])


@click.command("findings")
@click.argument("domains", nargs=-1)
@click.option("--since", type=_WHEN, help=f"From this UTC time (default: {DEFAULT_DAYS} days before --until).")
@click.option("--until", type=_WHEN, help="To this UTC time (default: now).")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of {kind, domain, side, since, until, evidence, "
                                                      "fix}.")
@click.option("--refresh", is_flag=True, help=f"Store the findings of every domain over the last {RECENT.days} days, "
                                              "then print the open ones (not with --since or --until).")
def findings_command(domains: tuple[str, ...], since: datetime | None, until: datetime | None, as_json: bool,
                     refresh: bool):
    """What the reports, our policy versions and DNS checks say together about DOMAINS (default: all)."""
    if refresh and (since or until):
        raise click.UsageError("--refresh stores the last days: give it no --since or --until")
    try:
        now = utcnow()
        start, end = (now - RECENT, now) if refresh else finding_range(since, until, now)
        names = [get_domain(db.session, name).name for name in domains] or [d.name for d in list_domains(db.session)]
        if refresh:
            counts = refresh_findings(db.session, now)
            found = open_findings(db.session, names)
        else:
            found = load_findings(db.session, names, since=start, until=end)
    except RangeError as error:
        _could_not_look(f"--{error.field}: {error.message}")
    except DomainError as error:
        _could_not_look(error.message)
    except DATABASE_ERRORS as error:
        _could_not_look(f"database unavailable: {error.orig}")
    if as_json:
        click.echo(json.dumps([finding.as_dict() for finding in found], indent=2))
    else:
        for finding in found:
            click.echo(f"{finding.domain}  {finding.kind}  {finding.side}  "
                       f"{finding.since:%Y-%m-%d %H:%M} .. {finding.until:%Y-%m-%d %H:%M}")
            click.echo(f"    {printable(finding.fix)}")
        span = f"from {start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
        click.echo(f"{len(found)} open finding(s) after storing those of the reports {span} ({counts['new']} new, "
                   f"{counts['resolved']} resolved)" if refresh else f"{len(found)} finding(s) {span}")
    sys.exit(FOUND if found else NONE_FOUND)


def _could_not_look(message: str):
    click.echo(message, err=True)
    sys.exit(COULD_NOT_LOOK)
