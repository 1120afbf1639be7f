"""Reading stored reports and their daily rollups."""


from datetime import date
from itertools import groupby

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session, selectinload

from reports.models import REPORT_KEY, DailyRollup, Report, ReportPolicy
from stspolicy.policies.names import InvalidName, normalize_domain


def list_reports(session: Session, domain: str | None = None, limit: int | None = None) -> list[Report]:
    """Stored reports, newest period first; with `domain`, only those with a block about it."""
    query = select(Report).options(selectinload(Report.policies)).order_by(
        Report.end_datetime.desc(), Report.id.desc()
    )
    if domain:
        try:
            name = normalize_domain(domain)
        except InvalidName:
            name = domain.lower()
        query = query.where(Report.id.in_(select(ReportPolicy.report_row_id).where(ReportPolicy.policy_domain == name)))
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def list_conflicts(session: Session) -> list[list[Report]]:
    """The reports stored in more than one copy, newest period first, each as its copies in order."""
    key = [getattr(Report, name) for name in REPORT_KEY]
    several = select(*key).group_by(*key).having(func.count() > 1)
    copies = session.scalars(select(Report).where(tuple_(*key).in_(several)).order_by(
        Report.end_datetime.desc(), *key, Report.copy_number))
    return [list(group) for _, group in groupby(copies, key=lambda copy: tuple(getattr(copy, n) for n in REPORT_KEY))]


def report_summary(report: Report) -> dict:
    """A stored report as JSON-ready values (report fields verbatim: escape them when rendering)."""
    return {
        "organization_name": report.organization_name,
        "report_id": report.report_id,
        "contact_info": report.contact_info,
        "start_datetime": report.start_datetime.isoformat(),
        "end_datetime": report.end_datetime.isoformat(),
        "source": report.source,
        "received_at": report.received_at.isoformat(),
        "sha256": report.sha256,
        "dkim_result": report.dkim_result,
        "copy_number": report.copy_number,
        "standing": report.standing,
        "notes": report.notes,
        "policies": [
            {
                "policy_type": block.policy_type,
                "policy_domain": block.policy_domain,
                "mx_hosts": block.mx_hosts,
                "successful_session_count": block.successful_session_count,
                "failed_session_count": block.failed_session_count,
                "hosted": block.domain_id is not None,
                "policy_match": block.policy_match,
            }
            for block in report.policies
        ],
    }


def rollup_totals(session: Session, policy_domain: str | None = None, since: date | None = None) -> dict:
    """Session counts keyed by (day, policy domain, policy type, result type, MX host), shards summed."""
    key = (DailyRollup.day, DailyRollup.policy_domain, DailyRollup.policy_type, DailyRollup.result_type,
           DailyRollup.mx_host)
    query = select(*key, func.sum(DailyRollup.session_count)).group_by(*key)
    if policy_domain is not None:
        query = query.where(DailyRollup.policy_domain == policy_domain)
    if since is not None:
        query = query.where(DailyRollup.day >= since)
    return {tuple(row[:5]): int(row[5]) for row in session.execute(query)}
