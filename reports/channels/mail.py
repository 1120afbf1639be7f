"""Report mail (RFC 8460 section 5.3): each report part of a message through the one ingestion path.

Used by `flask report ingest-mail` (a message piped from the MTA), the IMAP poller and
file imports. DKIM is checked once per message, as TLSRPT_DKIM says. A message is bounded as a
whole before anything walks it: its size, how deep its MIME parts nest and how many there are,
and what its reports decompress to together.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from reports.channels import dkim
from reports.ingest import Ingested, Settings, ingest_report
from reports.parsing.body import Budget, ReportError, ReportTooLarge, media_type_notes
from reports.parsing.message import mail_headers, parse_message, report_parts
from stspolicy.base.counters import record_report_refused


class NoReport(ReportError):
    """A message with no part that holds a report."""

    reason = "no_report"


class Unsigned(ReportError):
    """Mail without a valid DKIM signature by the submitter, under TLSRPT_DKIM=require."""

    reason = "dkim"


class TemporaryFailure(RuntimeError):
    """The message cannot be judged now (DNS for its DKIM key did not answer): deliver it again later."""


@dataclass
class MessageOutcome:
    """What became of each report part; `ok` when at least one was stored or already stored."""

    outcomes: list[Ingested] = field(default_factory=list)
    errors: list[ReportError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.outcomes)


def ingest_message(
    session: Session,
    raw: bytes,
    settings: Settings,
    *,
    source: str,
    source_detail: str | None = None,
    dnsfunc: Callable | None = None,
) -> MessageOutcome:
    """Store every report in the RFC 5322 message `raw`; errors are collected, not raised.

    Database errors and TemporaryFailure propagate: the message must be kept and delivered again.
    """
    started = time.perf_counter()
    result = MessageOutcome()

    def refuse(error: ReportError) -> MessageOutcome:
        """The whole message refused, counted in /metrics like a refused report (its parts never were)."""
        record_report_refused(source, error.reason, time.perf_counter() - started)
        result.errors.append(error)
        return result

    if len(raw) > settings.max_mail_bytes:
        return refuse(ReportTooLarge(f"message larger than {settings.max_mail_bytes} bytes", "mail"))
    try:
        message = parse_message(raw, settings.max_mail_parts)
    except ReportTooLarge as error:
        return refuse(error)
    headers = mail_headers(message)
    parts = report_parts(message)
    if not parts:
        return refuse(NoReport("no TLS-RPT report in this message", "mail"))
    dkim_result = None
    if settings.dkim != "off":
        dkim_result = dkim.verify(raw, headers.submitter, dnsfunc or dkim.txt_lookup(settings.dkim_nameserver))
        if dkim_result == dkim.TEMPERROR:  # no verdict, in either mode: a later delivery gets one
            raise TemporaryFailure("DKIM key lookup failed, DNS did not answer")
        if settings.dkim == "require" and not dkim_result.startswith(dkim.PASS):
            return refuse(Unsigned(
                f"DKIM {dkim_result}: no valid signature by the submitter. If the mail is genuine: check that "
                "the resolver answers for the submitter's DKIM key (TLSRPT_DKIM_NAMESERVER); old mail whose key "
                "has since been rotated imports with TLSRPT_DKIM=record, which stores the report and notes the "
                "DKIM result (TLSRPT_DKIM=off skips the check)", "mail"))
    detail = " ".join(filter(None, [source_detail, headers.message_id]))
    budget = Budget(settings.limits.max_decompressed)
    for part in parts:
        try:
            result.outcomes.append(ingest_report(
                session, part.data, settings, source=source, source_detail=detail or None,
                notes=media_type_notes("mail", part.content_type, part.data), mail=headers,
                file_name=part.filename, dkim_result=dkim_result, budget=budget,
            ))
        except ReportError as error:
            result.errors.append(error)
    return result
