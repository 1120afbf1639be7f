"""`flask report show|failures|prune`: one stored report, a domain's failures grouped, and retention.

They join the `flask report` group; as the other report commands, they see every report.
"""

import csv
import json
import sys
from datetime import UTC, datetime, timedelta

import click
from flask import current_app

from reports.cli import EX_TEMPFAIL, printable, report_cli
from reports.ingest import DATABASE_ERRORS
from reports.review.documents import group_document, report_document
from reports.review.filters import FilterError, parse_dimensions, parse_filters
from reports.review.listing import raw_report, report_of
from reports.review.retention import ip_rollup_start, prune_ip_rollups, prune_reports
from reports.review.rollups import failure_groups
from stspolicy.extensions import db
from stspolicy.policies.errors import DomainError
from stspolicy.policies.queries import get_domain

CLI_DIMENSIONS = ("day", "result_type", "mx", "org", "ip", "policy_type")


@click.command("show")
@click.argument("report_id", type=click.IntRange(min=1, max=2**31 - 1))
@click.option("--json", "as_json", is_flag=True, help="The report as the API gives it.")
@click.option("--raw", is_flag=True, help="The report's JSON as received, decompressed.")
def show_command(report_id, as_json, raw):
    """Show the stored report ID (the id of `report list --json` and the pages)."""
    if as_json and raw:
        raise click.UsageError("--json or --raw, not both")
    shown = _database(lambda: report_of(db.session, report_id, details_limit=None))
    if shown is None:
        raise click.ClickException(f"no report {report_id}")
    if raw:
        sys.stdout.buffer.write(raw_report(shown.report))
        return
    document = report_document(shown)
    if as_json:
        click.echo(json.dumps(document, indent=2))
        return
    for label, value in (("organization", document["organization_name"]), ("report-id", document["report_id"]),
                         ("contact", document["contact_info"] or "-"),
                         ("period", f"{document['start_datetime']} .. {document['end_datetime']}"),
                         ("received", f"{document['received_at']} by {document['source']}"
                                      f"{' ' + document['source_detail'] if document['source_detail'] else ''}"),
                         ("dkim", document["dkim_result"] or "not checked"), ("sha256", document["sha256"])):
        click.echo(f"{label:<13} {printable(value)}")
    for note in document["notes"]:
        click.echo(f"{'note':<13} {printable(note)}")
    for block in document["policies"]:
        ours = f"  our policy id {block['policy_id']}" if block["policy_id"] else f"  ({block['policy_match']})"
        click.echo(f"\n{block['policy_type']} {printable(block['policy_domain'] or '-')}: "
                   f"successful {block['successful_session_count']}, failed {block['failed_session_count']}"
                   f"{ours if block['policy_type'] == 'sts' else ''}")
        for detail in block["failure_details"]:
            where = " ".join(printable(detail[name]) for name in ("receiving_mx_hostname", "receiving_ip",
                                                                  "sending_mta_ip") if detail[name])
            why = "; ".join(printable(detail[name]) for name in ("failure_reason_code", "additional_information")
                            if detail[name])
            click.echo(f"    {detail['failed_session_count']:>8}  {printable(detail['result_type'])}  {where}"
                       f"{'  ' + why if why else ''}")


@click.command("failures")
@click.argument("domain")
@click.option("--since", metavar="YYYY-MM-DD", help="First UTC day (default: 29 days before --until).")
@click.option("--until", metavar="YYYY-MM-DD", help="Last UTC day (default: today).")
@click.option("--by", default="result_type", show_default=True, metavar="NAMES",
              help=f"Group by these, comma-separated: {', '.join(CLI_DIMENSIONS)}.")
@click.option("--policy-type", help="Only sts, tlsa or no-policy-found.")
@click.option("--result-type", help="Only this result type.")
@click.option("--mx", help="Only this receiving MX.")
@click.option("--org", help="Only this reporting organisation.")
@click.option("--ip", help="Only this sending IP.")
@click.option("--json", "as_json", is_flag=True, help="A JSON object, as the API gives it.")
@click.option("--csv", "as_csv", is_flag=True, help="CSV with a header row.")
def failures_command(domain, since, until, by, policy_type, result_type, mx, org, ip, as_json, as_csv):
    """Failed sessions of DOMAIN's reports grouped, most first, from the daily rollups."""
    if as_json and as_csv:
        raise click.UsageError("--json or --csv, not both")
    options = {"since": since, "until": until, "policy_type": policy_type, "result_type": result_type, "mx": mx,
               "org": org, "ip": ip}
    try:
        filters = parse_filters({name: value for name, value in options.items() if value},
                                datetime.now(UTC).date())
        dimensions = parse_dimensions(by, CLI_DIMENSIONS)
    except FilterError as error:
        raise click.BadParameter(error.message, param_hint=f"--{error.field.replace('_', '-')}") from None
    try:
        hosted = _database(lambda: get_domain(db.session, domain))
    except DomainError as error:
        raise click.ClickException(error.message) from None
    groups = _database(lambda: failure_groups(db.session, [hosted.id], filters, dimensions))
    if as_json:
        click.echo(json.dumps({"domain": hosted.name, "by": list(dimensions), "since": filters.since.isoformat(),
                               "until": filters.until.isoformat(),
                               "groups": [group_document(dimensions, group) for group in groups]}, indent=2))
        return
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow([*dimensions, "failed_session_count"])
        writer.writerows([*group.values, group.failed_session_count] for group in groups)
        return
    click.echo(f"{hosted.name}: failed sessions {filters.since} .. {filters.until} by {', '.join(dimensions)}")
    for group in groups:
        click.echo(f"{group.failed_session_count:>10}  " + "  ".join(printable(value or "-") for value in group.values))
    click.echo(f"{sum(group.failed_session_count for group in groups)} failed session(s) in {len(groups)} group(s)")


@click.command("prune")
@click.option("--older-than", "days", type=click.IntRange(min=1), metavar="DAYS",
              help="Delete reports whose period ended more than DAYS days ago (default: TLSRPT_RETENTION_DAYS).")
def prune_command(days):
    """Delete old reports, and the sending IPs of the failure rollups older than TLSRPT_IP_ROLLUP_RETENTION_DAYS;
    the daily rollups behind charts and totals stay."""
    now = datetime.now(UTC)
    before = now - timedelta(days=days or current_app.config["TLSRPT_RETENTION_DAYS"])
    deleted = _database(lambda: prune_reports(db.session, before))
    click.echo(f"deleted {deleted} report(s) that ended before {before:%Y-%m-%d %H:%M} UTC")
    ip_before = ip_rollup_start(now.date(), current_app.config["TLSRPT_IP_ROLLUP_RETENTION_DAYS"])
    folded = _database(lambda: prune_ip_rollups(db.session, ip_before))
    click.echo(f"deleted {folded} failure rollup row(s) by sending IP of days before {ip_before}, their counts kept "
               "by result type, MX and organisation; the other daily rollups stay")


def _database(work):
    """Run `work`; the database being unavailable exits 75 (EX_TEMPFAIL), as the other report commands do."""
    try:
        return work()
    except DATABASE_ERRORS as error:
        click.echo(f"database unavailable: {error.orig}", err=True)
        sys.exit(EX_TEMPFAIL)


def init_app() -> None:
    for command in (show_command, failures_command, prune_command):
        report_cli.add_command(command)
