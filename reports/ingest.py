"""The one way a report is stored, whether it came by HTTPS, mail, IMAP or from a file.

bytes -> bounded decompression -> parse -> link to hosted domains -> one transaction
(report, policy blocks, failure details, rollups) -> stored or duplicate. The caller
maps a ReportError to its status or exit code and DATABASE_ERRORS to "try again later".
"""

import hashlib
import logging
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.orm import Session

from reports.linking import Hosted, HostedDomains, match_version
from reports.models import COUNTED, SET_ASIDE, Report
from reports.parsing import schema
from reports.parsing.body import Budget, Limits, ReportError, decode_body, is_gzip
from reports.parsing.envelope import Envelope, attribute, disagreements
from reports.parsing.message import MailHeaders
from reports.storage import STORED, count_copy, fingerprint, lock_copies, store, store_copy, withdraw
from stspolicy.base.audit import record_event
from stspolicy.base.counters import record_report_ingested, record_report_refused
from stspolicy.extensions import DATABASE_UNAVAILABLE, utcnow

# The database cannot be reached (or is locked): nothing was stored, the sender should retry.
DATABASE_ERRORS = DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)


class UnhostedDomain(ReportError):
    """A report about no domain we host (or none that the rua token covers)."""

    status = 422
    reason = "unhosted"


class Unstorable(ReportError):
    """A report with a value the database refuses: a fault of ours, as the parser should have refused it."""

    reason = "unstorable"


class CopyError(ValueError):
    """A copy of a report that cannot be chosen."""


@dataclass(frozen=True)
class Ingested:
    status: str  # STORED, DUPLICATE or CONFLICT (storage.store_copy)
    report: schema.ParsedReport
    row_id: int | None = None


@dataclass(frozen=True)
class Settings:
    """What the intake accepts, from the TLSRPT_* settings."""

    limits: Limits = schema.DEFAULT_LIMITS
    accept_unhosted: bool = False
    max_mail_bytes: int = 15 * 1024 * 1024
    max_mail_parts: int = 100
    dkim: str = "require"  # require, record or off
    dkim_nameserver: str = ""  # empty: the system resolver
    hosted: HostedDomains = field(default_factory=HostedDomains, compare=False)  # what this process looked up


def settings_from_config(config: Mapping) -> Settings:
    limits = Limits(
        max_compressed=config["TLSRPT_MAX_COMPRESSED_BYTES"],
        max_decompressed=config["TLSRPT_MAX_DECOMPRESSED_BYTES"],
        max_ratio=config["TLSRPT_MAX_DECOMPRESSION_RATIO"],
        max_depth=config["TLSRPT_MAX_JSON_DEPTH"],
        max_json_values=config["TLSRPT_MAX_JSON_VALUES"],
        max_policies=config["TLSRPT_MAX_POLICIES"],
        max_failure_details=config["TLSRPT_MAX_FAILURE_DETAILS"],
        max_string=config["TLSRPT_MAX_STRING_LENGTH"],
        max_range_days=config["TLSRPT_MAX_RANGE_DAYS"],
    )
    return Settings(
        limits, config["TLSRPT_ACCEPT_UNHOSTED"], config["TLSRPT_MAX_MAIL_BYTES"], config["TLSRPT_MAX_MAIL_PARTS"],
        config["TLSRPT_DKIM"], config["TLSRPT_DKIM_NAMESERVER"], HostedDomains(config["SNAPSHOT_REFRESH_SECONDS"]),
    )


def ingest_report(
    session: Session,
    body: bytes,
    settings: Settings,
    *,
    source: str,
    allowed_domains: Iterable[str] | None = None,
    source_detail: str | None = None,
    notes: Iterable[str] = (),
    mail: MailHeaders | None = None,
    file_name: str | None = None,
    dkim_result: str | None = None,
    budget: Budget | None = None,
    admit: Callable[[schema.ParsedReport], None] | None = None,
) -> Ingested:
    """Store the report in `body` once; a copy with the same content already stored is a DUPLICATE,
    one with other content a CONFLICT (storage.store_copy); neither is an error.

    `allowed_domains` (a per-tenant rua URL) restricts which hosted domains it may be about;
    they, `mail` (the headers of the message it came in) and `file_name` make its envelope, which
    adds notes where it disagrees with the report and names the domain of a block without one;
    `budget` is what the reports of that message may still decompress to; `admit` is called with
    the parsed report before anything is stored, and refuses it by raising.
    Counted in /metrics by `source`: stored (a duplicate too: the sender is done) or refused.
    """
    with _counted(source):
        data, body_notes = decode_body(body, settings.limits, budget)
        now = utcnow()
        parsed = schema.parse_report(data, settings.limits, now)
        if admit is not None:
            admit(parsed)
        envelope = Envelope(mail, file_name, None if allowed_domains is None else tuple(allowed_domains))
        report = attribute(parsed, envelope)
        all_notes = [*body_notes, *report.notes, *notes, *disagreements(report, envelope)]
        # A gzip body is kept as it came: compressing the JSON again would cost more than the parse.
        row = {
            "organization_name": report.organization_name,
            "report_id": report.report_id,
            "contact_info": report.contact_info,
            "start_datetime": report.start_datetime,
            "end_datetime": report.end_datetime,
            "source": source,
            "source_detail": source_detail,
            "received_at": now,
            "raw_gzip": body if is_gzip(body) and not body_notes else _gzip(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "fingerprint": fingerprint(parsed),  # the content as sent, not as the envelope completed it
            "notes": all_notes,
            "dkim_result": dkim_result,
        }
        try:
            status, row_id = _store(session, report, row, _links(session, report, settings, envelope.url_domains))
        except IntegrityError:
            # A domain or policy version removed since this process looked it up: look again, once.
            session.rollback()
            status, row_id = _store(session, report, row,
                                    _links(session, report, settings, envelope.url_domains, fresh=True))
        session.commit()
        return Ingested(status, report, row_id)


@contextmanager
def _counted(channel: str):
    """Count the report taken in under `with` in /metrics, stored or refused, with its time."""
    started = time.perf_counter()
    try:
        yield
    except ReportError as error:
        record_report_refused(channel, error.reason, time.perf_counter() - started)
        raise
    record_report_ingested(channel, time.perf_counter() - started)


def _store(session: Session, report: schema.ParsedReport, row: dict, links: list[Hosted | None]
           ) -> tuple[str, int | None]:
    """storage.store, or store_copy when a copy of the report is stored; a value the database refuses
    (a DataError) is a 400, not a 500 the sender would retry for ever. The parser keeps every value
    within its column, so this is logged as a fault."""
    blocks = _blocks(report, links)
    try:
        row_id = store(session, report, row, blocks)
        if row_id is not None:
            return STORED, row_id
        # Another copy is compared and ranked in a transaction of its own: the first statement may
        # have run in autocommit (reports.channels.https on PostgreSQL).
        session.rollback()
        return store_copy(session, report, row, blocks)
    except DataError as error:
        session.rollback()
        log.error("report %r %r refused by the database: %s", report.organization_name, report.report_id, error.orig)
        raise Unstorable("the database cannot store a value of this report") from None


def _links(session: Session, report: schema.ParsedReport, settings: Settings, allowed_domains: Iterable[str] | None,
           fresh: bool = False) -> list[tuple[Hosted, ...]]:
    """The hosted domains of each block (linking.HostedDomains.links); UnhostedDomain only on what the
    database says now."""
    links = _within(report, settings.hosted.links(session, report, fresh), allowed_domains)
    try:
        _check_domains(report, links, settings.accept_unhosted, allowed_domains)
    except UnhostedDomain:
        if fresh:
            raise
        links = _within(report, settings.hosted.links(session, report, fresh=True),  # not on what this process kept
                        allowed_domains)
        _check_domains(report, links, settings.accept_unhosted, allowed_domains)
    return links


def _within(report: schema.ParsedReport, links: list[tuple[Hosted, ...]],
            allowed_domains: Iterable[str] | None) -> list[tuple[Hosted, ...]]:
    """A report sent to a per-tenant URL counts a DANE block about an MX host only for that tenant's domains."""
    if allowed_domains is None:
        return links
    allowed = set(allowed_domains)
    return [found if not found or found[0].name == result.policy_domain
            else tuple(domain for domain in found if domain.name in allowed)
            for result, found in zip(report.policies, links, strict=True)]


def _check_domains(report, links, accept_unhosted: bool, allowed_domains: Iterable[str] | None) -> None:
    about = sorted({r.policy_domain or "(none)" for r in report.policies})
    linked = [found[0] for found in links if found]
    if allowed_domains is not None:
        allowed = set(allowed_domains)
        outside = sorted({d.name for d in linked if d.name not in allowed})
        if outside or not any(d.name in allowed for d in linked):
            raise UnhostedDomain(
                f"report about {', '.join(outside or about)}: not a domain of this report URL", "$.policies"
            )
    elif not accept_unhosted and not linked:
        raise UnhostedDomain(f"report about {', '.join(about)}: no domain hosted here", "$.policies")


def _blocks(report: schema.ParsedReport, links: list[tuple[Hosted, ...]]) -> list[dict]:
    """The report_policy rows, each with the failure details to store under it and the ids of the
    domains it counts for (linked to the first)."""
    blocks = []
    for position, (result, found) in enumerate(zip(report.policies, links, strict=True)):
        domain = found[0] if found else None
        version_id, match = match_version(result, domain, report.end_datetime)
        blocks.append({
            "position": position,
            "policy_type": result.policy_type,
            "policy_domain": result.policy_domain,
            "policy_strings": list(result.policy_strings),
            "mx_hosts": list(result.mx_hosts),
            "successful_session_count": result.successful_session_count,
            "failed_session_count": result.failed_session_count,
            "domain_id": domain.id if domain else None,
            "policy_version_id": version_id,
            "policy_match": match,
            "failure_details": result.failure_details,
            "domain_ids": [hosted.id for hosted in found],
        })
    return blocks


def parse_copy(copy: Report, limits: Limits) -> schema.ParsedReport:
    """A stored copy's report, parsed again from the bytes it came as (a block without a domain
    gets the one its report-id names: the rest of its envelope is not kept)."""
    return attribute(schema.parse_report(decode_body(copy.raw_gzip, limits)[0], limits), Envelope())


def choose_copy(session: Session, copy_id: int, settings: Settings, actor: str) -> Report:
    """Make copy `copy_id` the one of its report that counts, and set the others aside.

    The choice outranks every copy that arrives later (storage.store_copy); it is audited.
    """
    copy = session.get(Report, copy_id)
    if copy is None:
        raise CopyError(f"no stored report #{copy_id}")
    copies = lock_copies(session, copy)
    if len(copies) == 1:
        raise CopyError(f"report #{copy_id} is the only copy of its report: there is nothing to choose")
    report = parse_copy(copy, settings.limits)
    for other in copies:
        if other is not copy:
            if other.standing == COUNTED:
                withdraw(session, other)
            other.standing, other.chosen_by = SET_ASIDE, None
    if copy.standing != COUNTED:
        count_copy(session, copy, report, _blocks(report, settings.hosted.links(session, report, fresh=True)))
    copy.chosen_by = actor
    record_event(session, actor, "report.copy_chosen", organization_name=copy.organization_name,
                 report_id=copy.report_id, copy_number=copy.copy_number, copies=len(copies))
    session.commit()
    return copy


def _gzip(data: bytes) -> bytes:
    """gzip with a window no larger than the report: the compressor's set-up is most of the cost."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + max(9, min(15, len(data).bit_length())))
    return compressor.compress(data) + compressor.flush()
