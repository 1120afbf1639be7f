"""Gathering what the rules look at, for many domains in a few queries: rule settings, DNS checks,
certificates, rollups and the failure details of the last days.

DANE blocks may name an MX host as their policy domain (RFC 8460 section 4.3.2.1, "host
TLSRPT"): their counts go to every hosted domain using that MX, by its latest DNS check or
its mx patterns.
"""

from collections import defaultdict
from datetime import date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reports.alerts.models import AlertRule
from reports.alerts.rules import (
    Check,
    DomainFacts,
    MxSeen,
    PolicyHostCertificate,
    RuleSetting,
    effective_settings,
    midnight,
)
from reports.models import DailyRollup, FailureDetail, Report, ReportPolicy
from reports.review.finding_store import open_findings
from stspolicy.certificates.models import Certificate
from stspolicy.dns.models import DnsObservation, MxObservation
from stspolicy.dns.queries import latest_observations
from stspolicy.policies.models import Domain
from stspolicy.policies.names import POLICY_HOST_PREFIX
from stspolicy.policies.queries import current_versions
from stspolicy.policies.rules import mx_pattern_matches

SUMMARY = ("success", "failure")


def rule_settings(session: Session, domains: list[Domain]) -> dict[int, dict[str, RuleSetting]]:
    """Each domain's effective rule settings, keyed by domain id."""
    stored: dict[int, dict] = defaultdict(dict)
    for row in session.scalars(select(AlertRule).where(AlertRule.domain_id.in_([d.id for d in domains]))):
        stored[row.domain_id][row.rule] = (row.enabled, row.parameters)
    return {domain.id: effective_settings(stored[domain.id]) for domain in domains}


def _longest(settings: dict[int, dict[str, RuleSetting]], rule: str, *names: str) -> int:
    return max((sum(s[rule].parameters[name] for name in names) for s in settings.values()), default=1)


def gather(session: Session, domains: list[Domain], now: datetime) -> list[DomainFacts]:
    """The facts of `domains` as the rules see them at `now`."""
    if not domains:
        return []
    today = now.date()
    versions = current_versions(session, domains)
    settings = rule_settings(session, domains)
    checks = recent_checks(session, domains, now - timedelta(days=_longest(settings, "enforce-ready", "days") + 2))
    users_of_mx = mx_users(domains, versions, checks)
    rate_days = _longest(settings, "failure-rate", "window_days", "baseline_days")
    sessions = session_totals(session, today - timedelta(days=rate_days + 1), domains, users_of_mx)
    detail_days = max(_longest(settings, "failure-rate", "window_days"),
                      _longest(settings, "new-result-type", "window_days"))
    details = failure_details(session, midnight(today - timedelta(days=detail_days - 1)), domains, users_of_mx)
    first_seen = _first_seen(session, today - timedelta(days=_longest(settings, "new-result-type", "window_days",
                                                                         "history_days")), domains, users_of_mx)
    report_days, sts_days = _report_days(session, midnight(today - timedelta(days=max(
        _longest(settings, "reporting-silent", "silent_days", "baseline_days"),
        _longest(settings, "enforce-ready", "days")))), domains, users_of_mx)
    certificates = {row.host: row for row in session.scalars(select(Certificate).where(
        Certificate.host.in_([POLICY_HOST_PREFIX + d.name for d in domains]), Certificate.not_after.is_not(None)))}
    findings = defaultdict(list)
    for finding in open_findings(session, [domain.name for domain in domains]):
        findings[finding.domain].append(finding)
    facts = []
    for domain in domains:
        version = versions[domain.id]
        certificate = certificates.get(POLICY_HOST_PREFIX + domain.name)
        facts.append(DomainFacts(
            name=domain.name, mode=version.mode, policy_id=version.policy_id,
            version_created_at=version.created_at, mx_patterns=tuple(version.mx_patterns),
            settings=settings[domain.id], checks=tuple(checks.get(domain.id, ())),
            certificate=PolicyHostCertificate(certificate.host, certificate.not_after, certificate.failures,
                                              certificate.last_error) if certificate else None,
            sessions=sessions.get(domain.name, {}), details=dict(details.get(domain.name, {})),
            first_seen=first_seen.get(domain.name, {}), report_days=dict(report_days.get(domain.name, {})),
            sts_organisations=dict(sts_days.get(domain.name, {})), findings=tuple(findings[domain.name]),
        ))
    return facts


def recent_checks(session: Session, domains: list[Domain], since: datetime) -> dict[int, list[Check]]:
    """The checks of each domain since `since`, and its latest one in any case, newest first."""
    ids = [domain.id for domain in domains]
    latest = {observation.id for observation in latest_observations(session, "check", ids)}
    rows = session.execute(
        select(DnsObservation.id, DnsObservation.domain_id, DnsObservation.observed_at, DnsObservation.policy_id,
               DnsObservation.status, DnsObservation.findings)
        .where(DnsObservation.kind == "check", DnsObservation.domain_id.in_(ids),
               (DnsObservation.observed_at >= since) | DnsObservation.id.in_(latest))
    ).all()
    mx: dict[int, list[MxSeen]] = defaultdict(list)
    observation_ids = [row.id for row in rows]
    for start in range(0, len(observation_ids), 1000):
        for row in session.execute(
            select(MxObservation.observation_id, MxObservation.host, MxObservation.starttls,
                   MxObservation.probe_error, MxObservation.certificate_sha256, MxObservation.spki_sha256,
                   MxObservation.not_after, MxObservation.tlsa_name, MxObservation.tlsa_state,
                   MxObservation.tlsa_records, MxObservation.tlsa_match)
            .where(MxObservation.observation_id.in_(observation_ids[start:start + 1000]))
            .order_by(MxObservation.id)
        ):
            mx[row.observation_id].append(MxSeen(
                row.host, row.starttls, row.probe_error, row.certificate_sha256, row.spki_sha256, row.not_after,
                row.tlsa_name, row.tlsa_state, tuple(row.tlsa_records), row.tlsa_match))
    checks: dict[int, list[Check]] = defaultdict(list)
    for row in sorted(rows, key=lambda row: (row.observed_at, row.id), reverse=True):
        checks[row.domain_id].append(Check(row.observed_at, row.policy_id, row.status, tuple(row.findings),
                                           tuple(mx[row.id])))
    return checks


def mx_users(domains: list[Domain], versions: dict, checks: dict[int, list[Check]]):
    """A function: the names of the hosted domains using MX `host` (by their latest check or mx patterns)."""
    by_host: dict[str, set[str]] = defaultdict(set)
    for domain in domains:
        for check in checks.get(domain.id, [])[:1]:
            for mx in check.mx:
                by_host[mx.host].add(domain.name)
    patterns = [(domain.name, versions[domain.id].mx_patterns) for domain in domains]
    cache: dict[str, set[str]] = {}

    def users(host: str) -> set[str]:
        if host not in cache:
            cache[host] = by_host.get(host, set()) | {
                name for name, found in patterns if any(mx_pattern_matches(p, host) for p in found)}
        return cache[host]

    return users


def session_totals(session: Session, since: date, domains: list[Domain], users_of_mx,
                   until: date | None = None) -> dict[str, dict]:
    """Summary totals per domain name from day `since` (to the day before `until`): (day, policy type) ->
    (successful, failed)."""
    names = {domain.name for domain in domains}
    totals: dict[str, dict] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for day, policy_domain, policy_type, result_type, count in session.execute(
        select(DailyRollup.day, DailyRollup.policy_domain, DailyRollup.policy_type, DailyRollup.result_type,
               func.sum(DailyRollup.session_count))
        .where(DailyRollup.day >= since, DailyRollup.day < (until or date.max), DailyRollup.result_type.in_(SUMMARY))
        .group_by(DailyRollup.day, DailyRollup.policy_domain, DailyRollup.policy_type, DailyRollup.result_type)
    ):
        for name in _owners(policy_domain, policy_type, names, users_of_mx):
            totals[name][(day, policy_type)][result_type == "failure"] += int(count)
    return {name: {key: tuple(value) for key, value in counts.items()} for name, counts in totals.items()}


def _owners(policy_domain: str, policy_type: str, names: set[str], users_of_mx) -> set[str]:
    if policy_domain in names:
        return {policy_domain}
    return users_of_mx(policy_domain) if policy_type == "tlsa" and policy_domain else set()


def _first_seen(session: Session, since: date, domains: list[Domain], users_of_mx) -> dict[str, dict[str, date]]:
    names = {domain.name for domain in domains}
    first: dict[str, dict[str, date]] = defaultdict(dict)
    for policy_domain, policy_type, result_type, day in session.execute(
        select(DailyRollup.policy_domain, DailyRollup.policy_type, DailyRollup.result_type, func.min(DailyRollup.day))
        .where(DailyRollup.day >= since, DailyRollup.result_type.not_in(SUMMARY), DailyRollup.session_count > 0)
        .group_by(DailyRollup.policy_domain, DailyRollup.policy_type, DailyRollup.result_type)
    ):
        for name in _owners(policy_domain, policy_type, names, users_of_mx):
            seen = first[name]
            seen[result_type] = min(day, seen.get(result_type, day))
    return first


def failure_details(session: Session, since: datetime, domains: list[Domain], users_of_mx,
                    until: datetime | None = None) -> dict[str, dict]:
    """Failed sessions of reports from `since` (to `until`): (policy type, result type, MX, organisation) ->
    count, by domain name."""
    names = {domain.name for domain in domains}
    details: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    mx = func.coalesce(FailureDetail.receiving_mx_hostname, "")
    for policy_domain, policy_type, result_type, host, organisation, count in session.execute(
        select(ReportPolicy.policy_domain, ReportPolicy.policy_type, FailureDetail.result_type, mx,
               Report.organization_name, func.sum(FailureDetail.failed_session_count))
        .join(ReportPolicy, FailureDetail.report_policy_id == ReportPolicy.id)
        .join(Report, ReportPolicy.report_row_id == Report.id)
        .where(Report.start_datetime >= since, *([Report.start_datetime < until] if until else []))
        .group_by(ReportPolicy.policy_domain, ReportPolicy.policy_type, FailureDetail.result_type, mx,
                  Report.organization_name)
    ):
        key = (policy_type, result_type, host.rstrip(".").lower(), organisation)
        for name in _owners(policy_domain or "", policy_type, names, users_of_mx):
            details[name][key] += int(count)
    return details


def _report_days(session: Session, since: datetime, domains: list[Domain], users_of_mx) -> tuple[dict, dict]:
    """Days each organisation reported on each domain, and days with an sts block, by domain name."""
    names = {domain.name for domain in domains}
    days: dict[str, dict] = defaultdict(lambda: defaultdict(set))
    sts: dict[str, dict] = defaultdict(lambda: defaultdict(set))
    for policy_domain, organisation, policy_type, start in session.execute(
        select(ReportPolicy.policy_domain, Report.organization_name, ReportPolicy.policy_type, Report.start_datetime)
        .join(Report, ReportPolicy.report_row_id == Report.id)
        .where(Report.start_datetime >= since)
        .distinct()
    ):
        for name in _owners(policy_domain or "", policy_type, names, users_of_mx):
            days[name][organisation].add(start.date())
            if policy_type == "sts":
                sts[name][organisation].add(start.date())
    return days, sts
