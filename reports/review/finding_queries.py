"""Gathering what `findings` correlates, for many domains in a few aggregate queries.

Each query sums in the database (by organisation, result type, MX host, policy text, the state an
MX showed), so a year of failure details comes back as a few rows per cause, never row by row.
DANE blocks may name an MX host as their policy domain: they are read for the MX hosts our
checks saw and for the blocks the intake linked to a domain through its mx patterns.
"""

import json
from collections import defaultdict
from collections.abc import Collection
from datetime import UTC, datetime, timedelta

from sqlalchemy import Text, and_, bindparam, cast, func, or_, select
from sqlalchemy.orm import Session, aliased

from reports.models import MATCHES_NONE, UNPARSEABLE, FailureDetail, Report, ReportPolicy
from reports.review.findings import (
    DnsProblem,
    FailureRow,
    Finding,
    Hosted,
    MxState,
    Observed,
    PolicyBlock,
    PolicyHostCertificate,
    Version,
    find,
)
from stspolicy.certificates.models import Certificate
from stspolicy.dns.models import DnsObservation, MxObservation
from stspolicy.policies.models import Domain, PolicyVersion
from stspolicy.policies.names import POLICY_HOST_PREFIX

DEFAULT_DAYS = 30  # what the CLI and the API look at unless told
# The DNS check problems findings compare reports with: the policy host, the _mta-sts record.
DNS_PROBLEMS = ("sts-id-stale", "sts-record-invalid", "sts-record-unreadable", "delegation-missing",
                "policy-host-unreadable", "policy-host-missing", "policy-host-elsewhere")
# What our checks saw a little before the window still says what an MX presented at its start.
_STATE_MARGIN = timedelta(days=1)
# Reports and checks are from this century: a range beyond it is a mistake, and near datetime's ends overflows.
_EARLIEST, _LATEST = datetime(2000, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC)


class RangeError(ValueError):
    """A time range that cannot be looked at; `field` names the bound at fault."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field, self.message = field, message


def finding_range(since: datetime | None, until: datetime | None, now: datetime) -> tuple[datetime, datetime]:
    """The range to look at: `until` now and `since` DEFAULT_DAYS before it unless given; a time without a
    zone is UTC."""
    until = (until or now).replace(tzinfo=(until or now).tzinfo or UTC)
    since = (since or until - timedelta(days=DEFAULT_DAYS))
    since = since.replace(tzinfo=since.tzinfo or UTC)
    for field, value in (("since", since), ("until", until)):
        if not _EARLIEST <= value <= _LATEST:
            raise RangeError(field, f"{field} must be between {_EARLIEST:%Y-%m-%d} and {_LATEST:%Y-%m-%d}")
    if since >= until:
        raise RangeError("since", "since must be before until")
    return since, until


def load_findings(session: Session, domain_names: Collection[str], *, since: datetime,
                  until: datetime) -> list[Finding]:
    """The findings about the hosted domains named (stored A-label names; others are left out) from the
    reports of `since` to `until`, by domain.

    A hundred domains at a time: each statement then stays well inside the database timeout
    (DATABASE_TIMEOUT_SECONDS), however many domains there are.
    """
    names = sorted(set(domain_names))
    return [finding for start in range(0, len(names), _BATCH)
            for finding in _load_batch(session, names[start:start + _BATCH], since, until)]


_BATCH = 100


def _load_batch(session: Session, domain_names: list[str], since: datetime, until: datetime) -> list[Finding]:
    domains = list(session.scalars(select(Domain).where(Domain.name.in_(domain_names))))
    if not domains:
        return []
    ids = [domain.id for domain in domains]
    mx_hosts = _latest_mx_hosts(session, ids)
    hosted = _hosted(session, domains, mx_hosts)
    names = sorted({d.name for d in domains} | {host for hosts in mx_hosts.values() for host in hosts})
    about = or_(ReportPolicy.policy_domain.in_(bindparam("names", names, expanding=True)),
                ReportPolicy.domain_id.in_(ids))
    window = and_(Report.end_datetime > since, Report.start_datetime < until)
    failures = _failures(session, about, window)
    blocks = (*_superseded_blocks(session, ids, window), *_other_blocks(session, about, window))
    # What our checks saw matters on the MX hosts the reports name, and only there.
    hosts = {row.mx_host or row.policy_domain for row in failures} | {
        host.rstrip(".").lower() for block in blocks if block.policy_type == "tlsa"
        for host in (*block.mx_hosts, block.policy_domain)}
    return find(Observed(
        hosted=hosted, failures=failures, blocks=blocks,
        mx_states=_mx_states(session, ids, sorted(hosts - {""}), since - _STATE_MARGIN, until) if hosts else (),
        dns_problems=_dns_problems(session, ids, {d.id: d.name for d in domains}, since, until),
    ))


def _latest_mx_hosts(session: Session, ids: list[int]) -> dict[int, set[str]]:
    """The MX hosts the latest check of each domain saw."""
    latest = (select(DnsObservation.id).where(DnsObservation.domain_id == Domain.id, DnsObservation.kind == "check")
              .order_by(DnsObservation.observed_at.desc(), DnsObservation.id.desc()).limit(1).scalar_subquery())
    found: dict[int, set[str]] = defaultdict(set)
    for domain_id, host in session.execute(
        select(Domain.id, MxObservation.host).join(MxObservation, MxObservation.observation_id == latest)
        .where(Domain.id.in_(ids))
    ):
        found[domain_id].add(host)
    return found


def _hosted(session: Session, domains: list[Domain], mx_hosts: dict[int, set[str]]) -> tuple[Hosted, ...]:
    versions: dict[int, list[Version]] = defaultdict(list)
    for row in session.scalars(select(PolicyVersion).where(PolicyVersion.domain_id.in_([d.id for d in domains]))
                               .order_by(PolicyVersion.id)):
        versions[row.domain_id].append(Version(row.id, row.policy_id, row.mode, tuple(row.mx_patterns), row.max_age,
                                               row.created_at))
    certificates = {row.host: row for row in session.scalars(
        select(Certificate).where(Certificate.host.in_([POLICY_HOST_PREFIX + d.name for d in domains])))}
    hosted = []
    for domain in domains:
        row = certificates.get(POLICY_HOST_PREFIX + domain.name)
        certificate = PolicyHostCertificate(row.not_before, row.not_after, row.issued_at, row.last_error,
                                            row.failures) if row else None
        hosted.append(Hosted(domain.name, tuple(versions[domain.id]), frozenset(mx_hosts.get(domain.id, ())),
                             certificate))
    return tuple(hosted)


def _failures(session: Session, about, window) -> tuple[FailureRow, ...]:
    mx = func.coalesce(FailureDetail.receiving_mx_hostname, "")
    ip = func.coalesce(FailureDetail.receiving_ip, "")
    key = (ReportPolicy.policy_domain, ReportPolicy.policy_type, Report.organization_name, FailureDetail.result_type,
           mx, ip)
    blocks = select(ReportPolicy.id).join(Report, ReportPolicy.report_row_id == Report.id).where(about, window)
    if session.get_bind().dialect.name == "postgresql":
        # Expecting thousands of blocks, PostgreSQL would read every failure detail of every domain rather
        # than look up the few blocks that have some in the index; given an array of their ids, it looks up.
        of_blocks = FailureDetail.report_policy_id == func.any(func.array(blocks.scalar_subquery()))
    else:
        of_blocks = FailureDetail.report_policy_id.in_(blocks)
    rows = session.execute(
        select(*key, func.sum(FailureDetail.failed_session_count), func.min(Report.start_datetime),
               func.max(Report.end_datetime), func.min(FailureDetail.failure_reason_code))
        .join(ReportPolicy, FailureDetail.report_policy_id == ReportPolicy.id)
        .join(Report, ReportPolicy.report_row_id == Report.id)
        .where(of_blocks)
        .group_by(*key)
    )
    return tuple(
        FailureRow(policy_domain or "", policy_type, organisation, result_type, host.rstrip(".").lower(), address,
                   int(count), first, last, reason)
        for policy_domain, policy_type, organisation, result_type, host, address, count, first, last, reason in rows
    )


def _superseded_blocks(session: Session, ids: list[int], window) -> list[PolicyBlock]:
    """sts blocks that applied a version of ours in reports that began after a newer version was made."""
    newer = aliased(PolicyVersion)
    superseded = (
        select(PolicyVersion.id, func.min(newer.created_at).label("at"))
        .join(newer, and_(newer.domain_id == PolicyVersion.domain_id, newer.id > PolicyVersion.id))
        .where(PolicyVersion.domain_id.in_(ids))
        .group_by(PolicyVersion.id)
        .subquery()
    )
    key = (ReportPolicy.policy_domain, Report.organization_name, ReportPolicy.policy_version_id)
    rows = session.execute(
        select(*key, func.sum(ReportPolicy.successful_session_count + ReportPolicy.failed_session_count),
               func.sum(ReportPolicy.failed_session_count), func.min(Report.start_datetime),
               func.max(Report.start_datetime), func.max(Report.end_datetime))
        .join(Report, ReportPolicy.report_row_id == Report.id)
        .join(superseded, superseded.c.id == ReportPolicy.policy_version_id)
        .where(ReportPolicy.policy_type == "sts", ReportPolicy.domain_id.in_(ids),
               Report.start_datetime >= superseded.c.at, window)
        .group_by(*key)
    )
    return [PolicyBlock(policy_domain, "sts", organisation, (), (), version_id, int(sessions), int(failed), first,
                        last_start, last)
            for policy_domain, organisation, version_id, sessions, failed, first, last_start, last in rows]


def _other_blocks(session: Session, about, window) -> list[PolicyBlock]:
    """sts blocks whose policy matched none of our versions, and tlsa blocks with their records, by policy text."""
    strings, hosts = cast(ReportPolicy.policy_strings, Text), cast(ReportPolicy.mx_hosts, Text)
    key = (ReportPolicy.policy_domain, ReportPolicy.policy_type, Report.organization_name, strings, hosts)
    rows = session.execute(
        select(*key, func.sum(ReportPolicy.successful_session_count + ReportPolicy.failed_session_count),
               func.sum(ReportPolicy.failed_session_count), func.min(Report.start_datetime),
               func.max(Report.start_datetime), func.max(Report.end_datetime))
        .join(Report, ReportPolicy.report_row_id == Report.id)
        .where(about, window, or_(
            and_(ReportPolicy.policy_type == "sts", ReportPolicy.policy_match.in_((MATCHES_NONE, UNPARSEABLE))),
            ReportPolicy.policy_type == "tlsa"))
        .group_by(*key)
    )
    return [PolicyBlock(policy_domain or "", policy_type, organisation, tuple(json.loads(policy_strings)),
                        tuple(json.loads(mx_hosts)), None, int(sessions), int(failed), first, last_start, last)
            for policy_domain, policy_type, organisation, policy_strings, mx_hosts, sessions, failed, first,
            last_start, last in rows]


def _mx_states(session: Session, ids: list[int], hosts: list[str], since: datetime,
               until: datetime) -> tuple[MxState, ...]:
    """What the checks of these domains saw on `hosts`, one row per state however many checks saw it."""
    m = MxObservation
    key = (m.host, m.starttls, m.probe_error, m.tlsa_state, cast(m.tlsa_records, Text), m.certificate_sha256,
           m.spki_sha256, m.not_after, cast(m.names, Text), m.covers_host, m.webpki_error)
    rows = session.execute(
        select(*key, func.min(DnsObservation.observed_at), func.max(DnsObservation.observed_at), func.max(m.chain_pem))
        .join(m.observation)
        .where(DnsObservation.domain_id.in_(ids), DnsObservation.kind == "check", m.host.in_(hosts),
               DnsObservation.observed_at >= since, DnsObservation.observed_at < until)
        .group_by(*key)
    )
    return tuple(
        MxState(host, first, last, starttls, probe_error, tlsa_state, tuple(json.loads(records)), certificate,
                spki, chain, not_after, tuple(json.loads(names)), covers_host, webpki_error)
        for (host, starttls, probe_error, tlsa_state, records, certificate, spki, not_after, names, covers_host,
             webpki_error, first, last, chain) in rows
    )


def _dns_problems(session: Session, ids: list[int], names: dict[int, str], since: datetime,
                  until: datetime) -> tuple[DnsProblem, ...]:
    """The DNS_PROBLEMS our checks stored, by domain and code, with the latest message."""
    text = cast(DnsObservation.findings, Text)
    spans: dict[tuple[int, str], list] = {}
    for domain_id, observed_at, findings in session.execute(
        select(DnsObservation.domain_id, DnsObservation.observed_at, DnsObservation.findings)
        .where(DnsObservation.domain_id.in_(ids), DnsObservation.kind == "check", DnsObservation.status == "problems",
               DnsObservation.observed_at >= since, DnsObservation.observed_at < until,
               or_(*(text.like(f'%"{code}"%') for code in DNS_PROBLEMS)))
        .order_by(DnsObservation.observed_at)
    ):
        for finding in findings:
            if finding.get("code") in DNS_PROBLEMS and finding.get("level") != "ok":
                span = spans.setdefault((domain_id, finding["code"]), [observed_at, observed_at, ""])
                span[1], span[2] = observed_at, finding.get("message", "")
    return tuple(DnsProblem(names[domain_id], code, message, first, last)
                 for (domain_id, code), (first, last, message) in spans.items())
