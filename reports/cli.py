"""`flask report ...`: reports from the MTA, an IMAP mailbox or files; listing; rua tokens.

Exit codes follow sysexits(3), so an MTA piping mail to `ingest-mail` does the right
thing: 0 stored or already stored, 65 (EX_DATAERR) no valid report, 75 (EX_TEMPFAIL)
the database is unavailable, keep the mail and retry, 78 (EX_CONFIG) settings missing.
"""

import json
import sys
from collections import Counter
from pathlib import Path

import click
from flask import Flask, current_app

from reports.channels import imap
from reports.channels.files import MESSAGE, count_items, read_items
from reports.channels.mail import TemporaryFailure, ingest_message
from reports.ingest import DATABASE_ERRORS, CopyError, choose_copy, ingest_report, parse_copy, settings_from_config
from reports.models import COUNTED, HELD, MAX_TOKEN_LABEL
from reports.parsing.body import ReportError
from reports.queries import list_conflicts, list_reports, report_summary
from reports.storage import CONFLICT, DUPLICATE, STORED
from reports.tokens import create_report_token, list_report_tokens
from stspolicy.base.audit import cli_actor
from stspolicy.extensions import db
from stspolicy.policies.errors import DomainError

EX_OK, EX_DATAERR, EX_TEMPFAIL, EX_CONFIG = 0, 65, 75, 78


@click.group("report")
def report_cli():
    """Receive and list TLS-RPT reports."""


@report_cli.command("ingest-mail")
def ingest_mail_command():
    """Store the reports in one mail read from stdin (for an MTA pipe or alias)."""
    settings = settings_from_config(current_app.config)
    raw = sys.stdin.buffer.read(settings.max_mail_bytes + 1)
    try:
        outcome = ingest_message(db.session, raw, settings, source="mail")
    except DATABASE_ERRORS as error:
        _exit(EX_TEMPFAIL, f"database unavailable, try again later: {error.orig}")
    except TemporaryFailure as error:
        _exit(EX_TEMPFAIL, f"{error}, try again later")
    for result in outcome.outcomes:
        report = result.report
        click.echo(f"{result.status}: {printable(report.organization_name)} {printable(report.report_id)}")
    for error in outcome.errors:
        click.echo(f"rejected: {printable(str(error))}", err=True)
    sys.exit(EX_OK if outcome.ok else EX_DATAERR)


@report_cli.command("fetch-imap")
def fetch_imap_command():
    """Ingest the unflagged mail in the TLSRPT_IMAP_* mailbox over IMAPS.

    Mail that gave a report moves to TLSRPT_IMAP_DONE_FOLDER; other mail is flagged and left.
    """
    config = current_app.config
    if not config["TLSRPT_IMAP_HOST"]:
        _exit(EX_CONFIG, "set TLSRPT_IMAP_HOST, TLSRPT_IMAP_USER and TLSRPT_IMAP_PASSWORD")
    box = imap.Mailbox(
        config["TLSRPT_IMAP_HOST"], config["TLSRPT_IMAP_PORT"], config["TLSRPT_IMAP_USER"],
        config["TLSRPT_IMAP_PASSWORD"], config["TLSRPT_IMAP_FOLDER"], config["TLSRPT_IMAP_DONE_FOLDER"],
        config["TLSRPT_IMAP_CAFILE"],
    )
    settings = settings_from_config(config)
    reasons: Counter = Counter()

    def handle(raw: bytes) -> str:
        outcome = ingest_message(db.session, raw, settings, source="imap", source_detail=box.host)
        reasons.update(str(error) for error in outcome.errors if not outcome.ok)
        return imap.DONE if outcome.ok else imap.FAILED

    try:
        client = imap.connect(box)
        try:
            counts = imap.poll(client, box, handle, settings.max_mail_bytes)
        finally:
            client.logout()
    except imap.ImapError as error:
        _exit(EX_TEMPFAIL, str(error))
    except DATABASE_ERRORS as error:
        _exit(EX_TEMPFAIL, f"database unavailable, stopped: {error.orig}")
    except TemporaryFailure as error:
        _exit(EX_TEMPFAIL, f"{error}, stopped")
    click.echo(f"{counts[imap.DONE]} message(s) with reports moved to {box.done_folder}, "
               f"{counts[imap.FAILED]} flagged{_reasons(reasons)}")


@report_cli.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
def import_command(paths):
    """Store reports from files: .json, .json.gz, .eml, mbox files and Maildir folders."""
    settings = settings_from_config(current_app.config)
    limit = max(settings.max_mail_bytes, settings.limits.max_compressed)
    counts: Counter = Counter()
    reasons: Counter = Counter()
    items = read_items(list(paths), limit)
    with click.progressbar(items, length=count_items(list(paths)), label="importing", file=sys.stderr) as bar:
        for item in bar:
            try:
                if item.kind == MESSAGE:
                    outcome = ingest_message(db.session, item.data, settings, source="file", source_detail=item.label)
                    results, errors = outcome.outcomes, outcome.errors
                else:
                    results, errors = [ingest_report(db.session, item.data, settings, source="file",
                                                     source_detail=item.label, file_name=Path(item.label).name)], []
            except ReportError as error:
                results, errors = [], [error]
            except DATABASE_ERRORS as error:
                _exit(EX_TEMPFAIL, f"database unavailable, stopped at {item.label}: {error.orig}")
            except TemporaryFailure as error:
                _exit(EX_TEMPFAIL, f"{error}, stopped at {item.label}")
            counts.update(result.status for result in results)
            counts["rejected"] += len(errors)
            reasons.update(str(error) for error in errors)
    click.echo(f"stored {counts[STORED]}, duplicate {counts[DUPLICATE]}, conflicting copies {counts[CONFLICT]}, "
               f"rejected {counts['rejected']}{_reasons(reasons)}")
    sys.exit(EX_DATAERR if counts["rejected"] else EX_OK)


@report_cli.command("list")
@click.option("--domain", help="Only reports with a policy block about this domain.")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list.")
def list_command(domain, limit, as_json):
    """List stored reports with their policy blocks."""
    try:
        found = list_reports(db.session, domain, limit)
    except DATABASE_ERRORS as error:
        _exit(EX_TEMPFAIL, f"database unavailable: {error.orig}")
    if as_json:
        click.echo(json.dumps([report_summary(report) for report in found], indent=2))
        return
    for report in found:
        click.echo(f"{printable(report.organization_name)}  {printable(report.report_id)}  "
                   f"{report.start_datetime:%Y-%m-%d %H:%M} .. {report.end_datetime:%Y-%m-%d %H:%M}  {report.source}"
                   + ("" if report.standing == COUNTED else f"  (copy {report.copy_number}, {report.standing})"))
        for block in report.policies:
            click.echo(f"    {block.policy_type:<15} {printable(block.policy_domain or '-'):<40} "
                       f"successful {block.successful_session_count:>8}  failed {block.failed_session_count:>8}")
    click.echo(f"{len(found)} report(s)")


@report_cli.command("conflicts")
def conflicts_command():
    """List the reports stored in several copies with different content, and each copy's standing.

    Only a counted copy feeds the figures; a held one waits for `flask report choose`.
    """
    settings = settings_from_config(current_app.config)
    try:
        found = list_conflicts(db.session)
    except DATABASE_ERRORS as error:
        _exit(EX_TEMPFAIL, f"database unavailable: {error.orig}")
    unresolved = 0
    for copies in found:
        first = copies[0]
        held = any(copy.standing == HELD for copy in copies)
        unresolved += held
        click.echo(f"{printable(first.organization_name)}  {printable(first.report_id)}  "
                   f"{first.start_datetime:%Y-%m-%d %H:%M} .. {first.end_datetime:%Y-%m-%d %H:%M}  "
                   f"{'unresolved: choose the copy that counts' if held else 'settled'}")
        for copy in copies:
            click.echo(f"    #{copy.id:<8} copy {copy.copy_number:<3} {copy.standing:<10} "
                       f"{printable(copy.dkim_result or 'unsigned'):<24} {_totals(copy, settings)}  "
                       f"{copy.received_at:%Y-%m-%d %H:%M} {copy.source} {printable(copy.source_detail or '')}")
    click.echo(f"{len(found)} report(s) in several copies, {unresolved} unresolved")


def _totals(copy, settings) -> str:
    try:
        report = parse_copy(copy, settings.limits)
    except ReportError as error:
        return f"not readable under today's limits ({printable(str(error))})"
    successful = sum(block.successful_session_count for block in report.policies)
    failed = sum(block.failed_session_count for block in report.policies)
    return f"successful {successful:>8}  failed {failed:>8}"


@report_cli.command("choose")
@click.argument("copy_id", type=int)
def choose_command(copy_id):
    """Make the stored report #COPY_ID the copy of its report that counts; its other copies are set aside."""
    settings = settings_from_config(current_app.config)
    try:
        copy = choose_copy(db.session, copy_id, settings, cli_actor())
    except CopyError as error:
        _exit(EX_DATAERR, str(error))
    except ReportError as error:
        _exit(EX_DATAERR, f"report #{copy_id} cannot be read again: {printable(str(error))}")
    except DATABASE_ERRORS as error:
        _exit(EX_TEMPFAIL, f"database unavailable: {error.orig}")
    click.echo(f"#{copy.id}, copy {copy.copy_number} of {printable(copy.organization_name)} "
               f"{printable(copy.report_id)}, counts now; its other copies are set aside")


@report_cli.group("token")
def token_cli():
    """Per-tenant report URLs: https://<this host>/tlsrpt/<token>."""


@token_cli.command("create")
@click.argument("domains", nargs=-1, required=True)
@click.option("--label", default="", help=f"Who the URL is for (at most {MAX_TOKEN_LABEL} characters).")
def token_create_command(domains, label):
    """A new report URL token for reports about DOMAINS."""
    if len(label) > MAX_TOKEN_LABEL:
        raise click.BadParameter(f"{len(label)} characters, at most {MAX_TOKEN_LABEL}", param_hint="--label")
    try:
        token = create_report_token(db.session, list(domains), label or _default_label(domains))
    except DomainError as error:
        raise click.ClickException(error.message) from None
    click.echo(f"token {token.token}: publish rua=https://<collector host>/tlsrpt/{token.token}")


def _default_label(domains: tuple[str, ...]) -> str:
    """The domains' names, or how many there are when the names do not fit."""
    label = " ".join(domains)
    return label if len(label) <= MAX_TOKEN_LABEL else f"{len(domains)} domains"


@token_cli.command("list")
def token_list_command():
    """List report URL tokens and their domains."""
    for token in list_report_tokens(db.session):
        click.echo(f"{token.token}  {', '.join(d.name for d in token.domains)}  ({printable(token.label)})")


def _reasons(reasons: Counter) -> str:
    if not reasons:
        return ""
    return " (" + "; ".join(f"{count} × {printable(reason)}" for reason, count in reasons.most_common(5)) + ")"


def printable(text: str) -> str:
    """Report fields are attacker-controlled: no control characters reach the terminal."""
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in text)


def _exit(code: int, message: str):
    click.echo(message, err=True)
    sys.exit(code)


def init_app(app: Flask) -> None:
    app.cli.add_command(report_cli)
