"""The one way a report is stored, whether it came by HTTPS, mail, IMAP or from a file.

bytes -> bounded decompression -> parse -> link to hosted domains -> one transaction
(report, policy blocks, failure details, rollups) -> stored or duplicate. The caller
maps a ReportError to its status or exit code and DATABASE_ERRORS to "try again later".
"""

import hashlib
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session

from stspolicy.models import Domain, PolicyVersion, utcnow
from stspolicy.policy import PolicyError, mx_pattern_matches, parse_policy

from . import schema
from .mail import MailHeaders, header_notes
from .models import MATCHED, MATCHES_NONE, NOT_COMPARED, UNPARSEABLE
from .payload import Limits, ReportError, decode_body, is_gzip
from .storage import store

STORED = "stored"
DUPLICATE = "duplicate"
# The database cannot be reached (or is locked): nothing was stored, the sender should retry.
DATABASE_ERRORS = (OperationalError, InterfaceError)


class UnhostedDomain(ReportError):
    """A report about no domain we host (or none that the rua token covers)."""

    status = 422


@dataclass(frozen=True)
class Outcome:
    status: str  # STORED or DUPLICATE
    report: schema.Report
    row_id: int | None = None


@dataclass(frozen=True)
class Settings:
    """What the intake accepts, from the TLSRPT_* settings."""

    limits: Limits = schema.DEFAULT_LIMITS
    accept_unhosted: bool = False
    max_mail_bytes: int = 10 * 1024 * 1024
    dkim: str = "record"  # off, record or require
    dkim_nameserver: str = ""  # empty: the system resolver


def settings_from_config(config: Mapping) -> Settings:
    limits = Limits(
        max_compressed=config["TLSRPT_MAX_COMPRESSED_BYTES"],
        max_decompressed=config["TLSRPT_MAX_DECOMPRESSED_BYTES"],
        max_depth=config["TLSRPT_MAX_JSON_DEPTH"],
        max_json_values=config["TLSRPT_MAX_JSON_VALUES"],
        max_policies=config["TLSRPT_MAX_POLICIES"],
        max_failure_details=config["TLSRPT_MAX_FAILURE_DETAILS"],
        max_string=config["TLSRPT_MAX_STRING_LENGTH"],
        max_range_days=config["TLSRPT_MAX_RANGE_DAYS"],
    )
    return Settings(
        limits, config["TLSRPT_ACCEPT_UNHOSTED"], config["TLSRPT_MAX_MAIL_BYTES"], config["TLSRPT_DKIM"],
        config["TLSRPT_DKIM_NAMESERVER"],
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
    dkim_result: str | None = None,
) -> Outcome:
    """Store the report in `body` once; a report already stored is a DUPLICATE, not an error.

    `allowed_domains` (a per-tenant rua URL) restricts which hosted domains it may be about;
    `mail` (the headers of the message it came in) adds notes where they disagree with it.
    """
    data, body_notes = decode_body(body, settings.limits)
    now = utcnow()
    report = schema.parse_report(data, settings.limits, now)
    links = _link_domains(session, report)
    _check_domains(report, links, settings.accept_unhosted, allowed_domains)
    all_notes = [*body_notes, *report.notes, *notes]
    if mail is not None:
        all_notes += header_notes(mail, report.contact_info)
    # A gzip body is kept as it came: compressing the JSON again would cost more than the parse.
    raw_gzip = body if is_gzip(body) and not body_notes else _gzip(data)
    row = {
        "organization_name": report.organization_name,
        "report_id": report.report_id,
        "contact_info": report.contact_info,
        "start_datetime": report.start_datetime,
        "end_datetime": report.end_datetime,
        "source": source,
        "source_detail": source_detail,
        "received_at": now,
        "raw_gzip": raw_gzip,
        "sha256": hashlib.sha256(data).hexdigest(),
        "notes": all_notes,
        "dkim_result": dkim_result,
    }
    blocks = []
    for position, (result, domain) in enumerate(zip(report.policies, links, strict=True)):
        version_id, match = _match_version(result, domain, report.end_datetime)
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
        })
    row_id = store(session, report, row, blocks)
    if row_id is None:
        session.rollback()
        return Outcome(DUPLICATE, report)
    session.commit()
    return Outcome(STORED, report, row_id)


@dataclass(frozen=True)
class _Version:
    id: int
    policy: tuple  # (mode, max_age, sorted mx patterns)
    created_at: datetime


@dataclass(frozen=True)
class _Hosted:
    """A hosted domain as the ingestion needs it: id, name and its versions, newest first."""

    id: int
    name: str
    versions: tuple[_Version, ...] = ()


_HOSTED_VERSIONS = (
    select(Domain.id, Domain.name, PolicyVersion.id, PolicyVersion.mode, PolicyVersion.max_age,
           PolicyVersion.mx_patterns, PolicyVersion.created_at)
    .join(PolicyVersion, PolicyVersion.domain_id == Domain.id)
    .where(Domain.name.in_(bindparam("names", expanding=True)))
    .order_by(PolicyVersion.id.desc())
)


def _link_domains(session: Session, report: schema.Report) -> list[_Hosted | None]:
    """The hosted domain each policy block is about, by policy-domain, in one query.

    For DANE the policy-domain may be the MX host (the TLSA base domain, RFC 8460
    section 4.3.2.1), so for a tlsa block a name we do not host is tried against our mx patterns.
    """
    names = {result.policy_domain for result in report.policies if result.policy_domain}
    hosted: dict[str, _Hosted] = {}
    if names:
        rows = session.connection().execute(_HOSTED_VERSIONS, {"names": sorted(names)})
        versions: dict[tuple[int, str], list[_Version]] = {}
        for domain_id, name, version_id, mode, max_age, patterns, created_at in rows:
            versions.setdefault((domain_id, name), []).append(
                _Version(version_id, (mode, max_age, sorted(patterns)), created_at))
        hosted = {name: _Hosted(domain_id, name, tuple(found)) for (domain_id, name), found in versions.items()}
    links = [hosted.get(result.policy_domain) for result in report.policies]
    unmatched = {r.policy_domain for r, d in zip(report.policies, links, strict=True)
                 if d is None and r.policy_domain and r.policy_type == "tlsa"}
    if unmatched:
        by_mx = _domains_by_mx(session, unmatched)
        links = [link or by_mx.get(result.policy_domain) for result, link in zip(report.policies, links, strict=True)]
    return links


def _domains_by_mx(session: Session, hosts: set[str]) -> dict[str, _Hosted]:
    latest = select(func.max(PolicyVersion.id)).group_by(PolicyVersion.domain_id)
    found = {}
    rows = session.execute(
        select(Domain.id, Domain.name, PolicyVersion.mx_patterns)
        .join(PolicyVersion, PolicyVersion.domain_id == Domain.id)
        .where(PolicyVersion.id.in_(latest))
    )
    for domain_id, name, patterns in rows:
        for host in hosts:
            if host not in found and any(mx_pattern_matches(pattern, host) for pattern in patterns):
                found[host] = _Hosted(domain_id, name)
    return found


def _check_domains(report, links, accept_unhosted: bool, allowed_domains: Iterable[str] | None) -> None:
    about = sorted({r.policy_domain or "(none)" for r in report.policies})
    if allowed_domains is not None:
        allowed = set(allowed_domains)
        outside = sorted({d.name for d in links if d is not None and d.name not in allowed})
        if outside or not any(d is not None and d.name in allowed for d in links):
            raise UnhostedDomain(
                f"report about {', '.join(outside or about)}: not a domain of this report URL", "$.policies"
            )
    elif not accept_unhosted and not any(links):
        raise UnhostedDomain(f"report about {', '.join(about)}: no domain hosted here", "$.policies")


def _match_version(result: schema.PolicyResult, domain: _Hosted | None, end: datetime):
    """The policy version whose text an sts block applied, and how it compared (JSON-09)."""
    if result.policy_type != "sts" or domain is None or not result.policy_strings:
        return None, NOT_COMPARED
    try:
        applied = parse_policy("\n".join(result.policy_strings))
    except PolicyError:
        return None, UNPARSEABLE
    key = (applied.mode, applied.max_age, sorted(applied.mx_patterns))
    matching = [version for version in domain.versions if version.policy == key]
    if not matching:
        return None, MATCHES_NONE
    # The newest that was already served when the report period ended, else the newest.
    served = [version for version in matching if version.created_at <= end]
    return (served or matching)[0].id, MATCHED


def _gzip(data: bytes) -> bytes:
    """gzip with a window no larger than the report: the compressor's set-up is most of the cost."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, 16 + max(9, min(15, len(data).bit_length())))
    return compressor.compress(data) + compressor.flush()
