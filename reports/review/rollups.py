"""Charts and totals from the daily rollups by hosted domain (reports.models.DailyTotal, DailyFailure,
ResultTypeSeen), never from the detail rows: they answer in the time of a year of one domain's rows
whatever the number of reports, and they outlive the reports that pruning deletes."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reports.models import DailyFailure, DailyTotal, Report, ReportDomain, ReportPolicy, ResultTypeSeen
from reports.review.filters import Filters
from stspolicy.policies.models import Domain

# A dimension's column in DailyFailure (filters.DIMENSIONS).
FAILURE_COLUMNS = {
    "day": DailyFailure.day, "policy_type": DailyFailure.policy_type, "result_type": DailyFailure.result_type,
    "mx": DailyFailure.mx_host, "org": DailyFailure.organization_name, "ip": DailyFailure.sending_ip,
}


def _failure_conditions(domain_ids: list[int], filters: Filters) -> list:
    conditions = [DailyFailure.domain_id.in_(domain_ids), DailyFailure.day.between(filters.since, filters.until)]
    for name, value in (("policy_type", filters.policy_type), ("result_type", filters.result_type),
                        ("mx", filters.mx), ("org", filters.org), ("ip", filters.ip)):
        if value:
            conditions.append(FAILURE_COLUMNS[name] == value)
    return conditions


def _total_conditions(domain_ids: list[int], filters: Filters) -> list:
    conditions = [DailyTotal.domain_id.in_(domain_ids), DailyTotal.day.between(filters.since, filters.until)]
    if filters.policy_type:
        conditions.append(DailyTotal.policy_type == filters.policy_type)
    if filters.org:
        conditions.append(DailyTotal.organization_name == filters.org)
    return conditions


@dataclass(frozen=True)
class DaySessions:
    """Sessions of one day by policy type: (successful, failed); successful is None when a filter
    (result type, MX, address) leaves only the failure details to count."""

    day: date
    by_policy_type: dict[str, tuple[int | None, int]]


def daily_sessions(session: Session, domain_ids: list[int], filters: Filters) -> list[DaySessions]:
    """Every day of the range, oldest first, with what the reports counted (nothing: an empty dict)."""
    counts: dict[date, dict[str, tuple[int | None, int]]] = defaultdict(dict)
    if filters.failures_only:
        query = (select(DailyFailure.day, DailyFailure.policy_type, func.sum(DailyFailure.failed_session_count))
                 .where(*_failure_conditions(domain_ids, filters))
                 .group_by(DailyFailure.day, DailyFailure.policy_type))
        for day, policy_type, failed in session.execute(query):
            counts[day][policy_type] = (None, int(failed))
    else:
        query = (select(DailyTotal.day, DailyTotal.policy_type, func.sum(DailyTotal.successful_session_count),
                        func.sum(DailyTotal.failed_session_count))
                 .where(*_total_conditions(domain_ids, filters))
                 .group_by(DailyTotal.day, DailyTotal.policy_type))
        for day, policy_type, successful, failed in session.execute(query):
            counts[day][policy_type] = (int(successful), int(failed))
    return [DaySessions(day, counts.get(day, {}))
            for day in (filters.since + timedelta(days=n) for n in range(filters.days))]


@dataclass(frozen=True)
class Group:
    values: tuple[str, ...]  # one per dimension grouped by (a day as YYYY-MM-DD)
    failed_session_count: int


def failure_groups(session: Session, domain_ids: list[int], filters: Filters, by: tuple[str, ...]) -> list[Group]:
    """Failed sessions of the failure details grouped by the dimensions `by`, most first."""
    columns = [FAILURE_COLUMNS[name] for name in by]
    total = func.sum(DailyFailure.failed_session_count)
    query = (select(*columns, total).where(*_failure_conditions(domain_ids, filters)).group_by(*columns)
             .order_by(total.desc(), *columns))
    return [Group(tuple(value.isoformat() if isinstance(value, date) else value for value in row[:-1]), int(row[-1]))
            for row in session.execute(query)]


@dataclass(frozen=True)
class Top:
    """The first `shown` groups, and the rest summed: how many more there are and their failed sessions."""

    shown: list[Group]
    rest_groups: int
    rest_failed: int

    @property
    def total(self) -> int:
        return sum(group.failed_session_count for group in self.shown) + self.rest_failed


def top(groups: list[Group], count: int) -> Top:
    rest = groups[count:]
    return Top(groups[:count], len(rest), sum(group.failed_session_count for group in rest))


@dataclass
class DomainSummary:
    """What the overview shows of one domain over the range."""

    domain_id: int
    by_policy_type: dict[str, list[int]] = field(default_factory=dict)  # policy type: [successful, failed]
    new_result_types: list[str] = field(default_factory=list)

    @property
    def successful_session_count(self) -> int:
        return sum(successful for successful, _ in self.by_policy_type.values())

    @property
    def failed_session_count(self) -> int:
        return sum(failed for _, failed in self.by_policy_type.values())


NEW_RESULT_TYPE_HOURS = 24


def domain_summaries(session: Session, domain_ids: list[int], filters: Filters,
                     now: datetime) -> dict[int, DomainSummary]:
    """Per domain: sessions by policy type, result types new in the last day (`last_reports` gives the last
    report, for the domains a page shows)."""
    summaries = {domain_id: DomainSummary(domain_id) for domain_id in domain_ids}
    for domain_id, policy_type, successful, failed in session.execute(
        select(DailyTotal.domain_id, DailyTotal.policy_type, func.sum(DailyTotal.successful_session_count),
               func.sum(DailyTotal.failed_session_count))
        .where(*_total_conditions(domain_ids, filters)).group_by(DailyTotal.domain_id, DailyTotal.policy_type)
    ):
        summaries[domain_id].by_policy_type[policy_type] = [int(successful), int(failed)]
    for domain_id, result_type in session.execute(
        select(ResultTypeSeen.domain_id, ResultTypeSeen.result_type)
        .where(ResultTypeSeen.domain_id.in_(domain_ids),
               ResultTypeSeen.first_received_at >= now - timedelta(hours=NEW_RESULT_TYPE_HOURS))
        .order_by(ResultTypeSeen.result_type)
    ):
        summaries[domain_id].new_result_types.append(result_type)
    return summaries


def last_reports(session: Session, domain_ids: list[int]) -> dict[int, tuple[date, datetime, str]]:
    """Each domain's newest report (the latest day it covers, the last stored of that day): its day, when
    it was received and from whom. An index look-up per domain, however many reports there are."""
    newest = (select(ReportDomain.report_row_id).where(ReportDomain.domain_id == Domain.id)
              .order_by(ReportDomain.day.desc(), ReportDomain.report_row_id.desc()).limit(1).scalar_subquery())
    latest = select(Domain.id.label("domain_id"), newest.label("report_row_id")).where(
        Domain.id.in_(domain_ids)).subquery()
    rows = session.execute(
        select(latest.c.domain_id, Report.start_datetime, Report.received_at, Report.organization_name)
        .join(Report, Report.id == latest.c.report_row_id)
    )
    return {domain_id: (start.date(), received, organization) for domain_id, start, received, organization in rows}


def reports_per_day(session: Session, domain_ids: list[int], filters: Filters) -> list[tuple[date, int]]:
    """Reports about the domains per day they covered (a report about two counts twice), every day of the range."""
    counts = dict(session.execute(
        select(ReportDomain.day, func.count())
        .where(ReportDomain.domain_id.in_(domain_ids), ReportDomain.day.between(filters.since, filters.until))
        .group_by(ReportDomain.day)
    ).all())
    return [(day, int(counts.get(day, 0))) for day in (filters.since + timedelta(days=n) for n in range(filters.days))]


UNHOSTED_SHOWN = 20


def unhosted_report_ids(session: Session, limit: int = UNHOSTED_SHOWN) -> list[int]:
    """The newest reports about no hosted domain (kept with TLSRPT_ACCEPT_UNHOSTED, or whose domain was removed)."""
    candidates = (select(ReportPolicy.report_row_id).where(ReportPolicy.domain_id.is_(None))
                  .order_by(ReportPolicy.report_row_id.desc()).limit(limit * 10))
    hosted = select(ReportDomain.report_row_id).where(ReportDomain.report_row_id.in_(candidates))
    return list(session.scalars(
        select(ReportPolicy.report_row_id).where(ReportPolicy.report_row_id.in_(candidates),
                                                 ReportPolicy.report_row_id.not_in(hosted))
        .distinct().order_by(ReportPolicy.report_row_id.desc()).limit(limit)
    ))
