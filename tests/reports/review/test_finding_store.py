"""Stored findings: a refresh keeps one row per open finding, updates it while reports show it, resolves it
once they no longer do; pages read the open ones of the domains they may show in one query."""

from datetime import timedelta

import pytest
from sqlalchemy import event, select

from reports.review.finding_queries import load_findings
from reports.review.finding_store import RECENT, StoredFinding, open_findings, refresh_findings
from stspolicy.accounts.service import visible_domains
from tests.reports.alerts.craft import NOW, block, day, report


def expired(session, on, organisation="Google Inc.", domain="shared.example"):
    """`organisation` reports an expired certificate on mx1.`domain` for UTC day `on`, applying our policy."""
    mx = f"mx1.{domain}"
    report(session, organisation, on, [block(domain, 10, 6, (("certificate-expired", mx, 6),),
                                             mx=(mx, f"*.mx.{domain}"))])


def rows(session):
    return session.scalars(select(StoredFinding).order_by(StoredFinding.id)).all()


def test_a_refresh_stores_what_load_findings_finds_and_pages_read_it_back(session, people):
    expired(session, day(1))
    report(session, "Microsoft Corporation", day(1), [block("foreign.example", 5, 5, (
        ("starttls-not-supported", "mx1.foreign.example", 5),), mx=("mx1.foreign.example", "*.mx.foreign.example"))])
    assert refresh_findings(session, NOW) == {"open": 2, "new": 2, "resolved": 0}
    live = load_findings(session, ["foreign.example", "shared.example"], since=NOW - RECENT, until=NOW)
    assert open_findings(session, ["foreign.example", "shared.example"]) == live
    [row] = [row for row in rows(session) if row.kind == "certificate-problem"]
    assert (row.subject, row.first_seen, row.last_seen, row.resolved_at) == (
        "mx1.shared.example certificate-expired", NOW, NOW, None)


def test_a_finding_seen_again_is_the_same_row_and_keeps_its_earliest_since(session, people):
    expired(session, day(2))
    refresh_findings(session, NOW)
    expired(session, day(0), organisation="Microsoft Corporation")
    later = NOW + timedelta(days=2)  # the report of day(2) has left the window
    assert refresh_findings(session, later) == {"open": 1, "new": 0, "resolved": 0}
    [row] = rows(session)
    assert row.first_seen == NOW and row.last_seen == later and row.resolved_at is None
    assert row.since.date() == day(2) and row.until.date() == day(0)
    assert row.evidence["organisations"] == {"Microsoft Corporation": 6}
    [finding] = open_findings(session, ["shared.example"])
    assert finding.since.date() == day(2) and finding.evidence["organisations"] == {"Microsoft Corporation": 6}


def test_a_finding_the_recent_reports_no_longer_show_is_resolved_and_a_return_is_a_new_row(session, people):
    expired(session, day(10))
    then, gone = NOW - timedelta(days=9), NOW - timedelta(days=5)
    refresh_findings(session, then)
    assert refresh_findings(session, gone) == {"open": 0, "new": 0, "resolved": 1}
    assert open_findings(session, ["shared.example"]) == []
    expired(session, day(1))
    assert refresh_findings(session, NOW)["new"] == 1
    first, second = rows(session)
    assert first.resolved_at == gone and second.resolved_at is None and second.first_seen == NOW


def test_resolved_findings_are_deleted_after_ninety_days(session, people):
    expired(session, day(1))
    refresh_findings(session, NOW)
    refresh_findings(session, NOW + RECENT + timedelta(days=1))
    assert len(rows(session)) == 1
    refresh_findings(session, NOW + RECENT + timedelta(days=92))
    assert rows(session) == []


def test_a_member_reads_only_the_findings_of_the_domains_they_may_see(session, people):
    expired(session, day(1))
    expired(session, day(1), domain="foreign.example")
    refresh_findings(session, NOW)
    names = [domain.name for domain in visible_domains(session, people.viewer)]
    assert [f.domain for f in open_findings(session, names)] == ["shared.example"]
    admin = [domain.name for domain in visible_domains(session, people.admin)]
    assert [f.domain for f in open_findings(session, admin)] == ["foreign.example", "shared.example"]


def test_open_findings_of_many_domains_are_one_query(session, people):
    expired(session, day(1))
    refresh_findings(session, NOW)
    statements = []
    listen = lambda *args: statements.append(args[2])  # noqa: E731
    event.listen(session.get_bind(), "before_cursor_execute", listen)
    try:
        found = open_findings(session, [f"d{n}.example" for n in range(1000)] + ["shared.example"])
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", listen)
    assert len(found) == 1 and len([s for s in statements if s.startswith("SELECT")]) == 1  # and the test's SAVEPOINT


def test_report_findings_refresh_stores_and_prints_the_open_ones(cli, session, people):
    expired(session, day(1))
    result = cli("report", "findings", "--refresh")
    assert result.exit_code == 1 and "shared.example  certificate-problem  sender" in result.output
    assert "1 open finding(s) after storing those of the reports from" in result.output
    assert "(1 new, 0 resolved)" in result.output and len(rows(session)) == 1
    assert cli("report", "findings", "--refresh", "foreign.example").exit_code == 0


@pytest.mark.parametrize("bound", ["--since", "--until"])
def test_report_findings_refresh_takes_no_range(cli, people, bound):
    result = cli("report", "findings", "--refresh", bound, "2026-01-01")
    assert result.exit_code == 2 and "--refresh stores the last days" in result.output
