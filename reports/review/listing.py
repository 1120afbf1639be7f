"""The stored reports behind the figures: a domain's reports with filters and pages, one report as its
reader may see it, and its raw body.

A report counts for the hosted domains in models.ReportDomain. Of a report, a reader sees every
block except those linked by their policy-domain to a hosted domain the reader may not see (a
block about an MX host, or about no hosted domain, tells nothing of another tenant); the raw
report only when nothing of it is hidden.
"""

import zlib
from dataclasses import dataclass
from datetime import date

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from reports.models import FailureDetail, Report, ReportDomain, ReportPolicy
from reports.review.filters import Filters
from stspolicy.policies.models import Domain, PolicyVersion

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 500
DETAILS_SHOWN = 200  # per block on a page; the CSV, the API and the raw report have them all


def _linked_elsewhere(domain_id: int):
    """A block linked by its policy-domain's name to another hosted domain than `domain_id`."""
    name = select(Domain.name).where(Domain.id == ReportPolicy.domain_id).scalar_subquery()
    return ReportPolicy.domain_id.is_not(None) & (ReportPolicy.domain_id != domain_id) & \
        (ReportPolicy.policy_domain == name)


def _mx_matches(column, mx: str):
    return or_(column == mx, column == mx + ".")


def _filtered(domain_id: int, filters: Filters):
    """The reports of the domain in the range that match the filters, as a query on Report."""
    query = (select(Report).join(ReportDomain, ReportDomain.report_row_id == Report.id)
             .where(ReportDomain.domain_id == domain_id, ReportDomain.day.between(filters.since, filters.until)))
    if filters.org:
        query = query.where(Report.organization_name == filters.org)
    if filters.policy_type or filters.failures_only:
        blocks = select(ReportPolicy.id).where(ReportPolicy.report_row_id == Report.id, ~_linked_elsewhere(domain_id))
        if filters.policy_type:
            blocks = blocks.where(ReportPolicy.policy_type == filters.policy_type)
        if filters.failures_only:
            blocks = blocks.join(FailureDetail, FailureDetail.report_policy_id == ReportPolicy.id)
            if filters.result_type:
                blocks = blocks.where(FailureDetail.result_type == filters.result_type)
            if filters.mx:
                blocks = blocks.where(_mx_matches(FailureDetail.receiving_mx_hostname, filters.mx))
            if filters.ip:
                blocks = blocks.where(FailureDetail.sending_mta_ip == filters.ip)
        query = query.where(exists(blocks))
    return query


@dataclass(frozen=True)
class ReportRow:
    report: Report
    day: date
    successful_session_count: int  # of the blocks about the domain
    failed_session_count: int
    policy_types: tuple[str, ...]


@dataclass(frozen=True)
class ReportPage:
    rows: list[ReportRow]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def reports_of(session: Session, domain_id: int, filters: Filters, page: int = 1,
               per_page: int = DEFAULT_PER_PAGE) -> ReportPage:
    """The page `page` (from 1) of the domain's reports matching `filters`, newest day first."""
    query = _filtered(domain_id, filters)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.execute(query.add_columns(ReportDomain.day).order_by(ReportDomain.day.desc(), Report.id.desc())
                           .offset((page - 1) * per_page).limit(per_page)).all()
    blocks: dict[int, list] = {}
    if rows:
        for report_row_id, policy_type, successful, failed in session.execute(
            select(ReportPolicy.report_row_id, ReportPolicy.policy_type, ReportPolicy.successful_session_count,
                   ReportPolicy.failed_session_count)
            .where(ReportPolicy.report_row_id.in_([report.id for report, _ in rows]), ~_linked_elsewhere(domain_id))
            .order_by(ReportPolicy.position)
        ):
            blocks.setdefault(report_row_id, []).append((policy_type, successful, failed))
    return ReportPage([_row(report, day, blocks.get(report.id, [])) for report, day in rows], total, page, per_page)


def _row(report: Report, day: date, blocks: list[tuple[str, int, int]]) -> ReportRow:
    return ReportRow(report, day, sum(block[1] for block in blocks), sum(block[2] for block in blocks),
                     tuple(dict.fromkeys(block[0] for block in blocks)))


@dataclass(frozen=True)
class ShownBlock:
    block: ReportPolicy
    version: PolicyVersion | None  # our policy version the block applied (sts blocks that match one)
    details: list[FailureDetail]  # the first DETAILS_SHOWN, or all (all_details)
    detail_count: int


@dataclass(frozen=True)
class ShownReport:
    report: Report
    blocks: list[ShownBlock]
    hidden_blocks: int  # about domains the reader may not see

    @property
    def raw_allowed(self) -> bool:
        return self.hidden_blocks == 0


def report_of(session: Session, report_id: int, domain_id: int | None = None,
              visible_domain_ids: set[int] | None = None, details_limit: int | None = DETAILS_SHOWN
              ) -> ShownReport | None:
    """The report `report_id` if it counts for the domain `domain_id` (None: any report, as the CLI
    sees them), else None. `visible_domain_ids`: the reader's domains (None: an admin's, all);
    `details_limit`: failure details per block, None for all."""
    query = select(Report).where(Report.id == report_id).options(
        selectinload(Report.policies).selectinload(ReportPolicy.domain))
    if domain_id is not None:
        query = query.where(exists(select(ReportDomain.report_row_id).where(
            ReportDomain.report_row_id == Report.id, ReportDomain.domain_id == domain_id)))
    report = session.scalar(query)
    if report is None:
        return None
    shown, hidden = [], 0
    for block in report.policies:
        if (visible_domain_ids is not None and block.domain is not None and block.domain_id not in visible_domain_ids
                and block.domain.name == block.policy_domain):
            hidden += 1
        else:
            shown.append(block)
    details, counts = _details(session, [block.id for block in shown], details_limit)
    versions = {version.id: version for version in session.scalars(
        select(PolicyVersion).where(PolicyVersion.id.in_([b.policy_version_id for b in shown if b.policy_version_id])))}
    return ShownReport(report, [
        ShownBlock(block, versions.get(block.policy_version_id), details.get(block.id, []), counts.get(block.id, 0))
        for block in shown
    ], hidden)


def _details(session: Session, block_ids: list[int],
             limit: int | None) -> tuple[dict[int, list[FailureDetail]], dict[int, int]]:
    """The failure details of the blocks (at most `limit` of each, None: all) and how many each has."""
    counts = dict(session.execute(select(FailureDetail.report_policy_id, func.count())
                                  .where(FailureDetail.report_policy_id.in_(block_ids))
                                  .group_by(FailureDetail.report_policy_id)).all())
    query = select(FailureDetail).where(FailureDetail.report_policy_id.in_(block_ids))
    if limit is not None:
        number = func.row_number().over(partition_by=FailureDetail.report_policy_id, order_by=FailureDetail.id)
        ranked = select(FailureDetail.id, number.label("number")).where(
            FailureDetail.report_policy_id.in_(block_ids)).subquery()
        query = query.where(FailureDetail.id.in_(select(ranked.c.id).where(ranked.c.number <= limit)))
    details: dict[int, list[FailureDetail]] = {}
    for detail in session.scalars(query.order_by(FailureDetail.id)):
        details.setdefault(detail.report_policy_id, []).append(detail)
    return details, counts


def raw_report(report: Report) -> bytes:
    """The report's JSON as received, decompressed (stored gzip; bounded when it was taken in)."""
    return zlib.decompress(report.raw_gzip, 16 + zlib.MAX_WBITS)

