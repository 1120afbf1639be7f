"""`flask report show|failures|prune`: one report as text, JSON or as received; failures grouped; retention."""

import csv
import gzip
import io
import json
from datetime import date

import pytest
from sqlalchemy import func, select

from reports.models import DailyFailure, DailyRollup, DailyTotal, FailureDetail, Report, ReportDomain, ResultTypeSeen
from tests.factories import host, store_report
from tests.support.config import configure
from tests.support.reportdata import daily_report, days_ago, encode, failure, sts_block, tlsa_block


@pytest.fixture
def shop(session):
    return host(session, "shop.example", mx=("mx1.shop.example", "mx2.shop.example"))


@pytest.fixture
def stored(session, shop):
    return {
        "google": store_report(session, daily_report("g1", sts_block(
            "shop.example", 90, 60, failure("certificate-expired", 60, "mx2.shop.example", "192.0.2.25")),
            day=days_ago(3))),
        "microsoft": store_report(session, daily_report("m1", tlsa_block(
            "mx1.shop.example", 5, 7, failure("tlsa-invalid", 7, "mx1.shop.example", "203.0.113.4")),
            organization="Microsoft Corporation", day=days_ago(2))),
    }


def test_show_prints_the_report_and_escapes_control_characters(cli, session, shop):
    report_id = store_report(session, daily_report("bell\a", sts_block("shop.example", 1, 1, failure(
        "validation-failure", 1, "mx1.shop.example", failure_reason_code="bad\x1b[31m")), day=days_ago(1)))
    result = cli("report", "show", str(report_id))
    assert result.exit_code == 0
    assert "report-id     bell\\x07" in result.output and "bad\\x1b[31m" in result.output
    assert "\a" not in result.output and "\x1b" not in result.output
    assert "validation-failure  mx1.shop.example" in result.output


def test_show_json_is_the_apis_document_and_raw_is_the_report_as_received(cli, session, shop):
    document = daily_report("gz", sts_block("shop.example", 3, 0), day=days_ago(1))
    report_id = store_report(session, document, gzip.compress(encode(document)))
    shown = json.loads(cli("report", "show", str(report_id), "--json").output)
    assert (shown["report_id"], shown["policies"][0]["hosted_domain"]) == ("gz", "shop.example")
    assert cli("report", "show", str(report_id), "--raw").stdout_bytes == encode(document)


def test_show_of_an_unknown_report_fails(cli, shop):
    result = cli("report", "show", "999999")
    assert result.exit_code == 1 and "no report 999999" in result.output


def test_failures_grouped_as_text_json_and_csv(cli, stored):
    text = cli("report", "failures", "shop.example", "--by", "org,mx")
    assert text.exit_code == 0
    assert text.output.splitlines()[1:] == ["        60  Google Inc.  mx2.shop.example",
                                             "         7  Microsoft Corporation  mx1.shop.example",
                                             "67 failed session(s) in 2 group(s)"]
    document = json.loads(cli("report", "failures", "shop.example", "--by", "day,ip", "--json").output)
    assert document["groups"] == [{"day": days_ago(3), "ip": "192.0.2.25", "failed_session_count": 60},
                                  {"day": days_ago(2), "ip": "203.0.113.4", "failed_session_count": 7}]
    rows = list(csv.reader(io.StringIO(cli("report", "failures", "shop.example", "--csv", "--policy-type",
                                           "tlsa").output)))
    assert rows == [["result_type", "failed_session_count"], ["tlsa-invalid", "7"]]


def test_failures_keep_to_the_range(cli, stored):
    document = json.loads(cli("report", "failures", "shop.example", "--since", days_ago(2), "--json").output)
    assert [group["result_type"] for group in document["groups"]] == ["tlsa-invalid"]


@pytest.mark.parametrize(("args", "message"), [
    (["--by", "organisation"], "--by"), (["--since", "last week"], "--since"),
    (["--policy-type", "dane"], "--policy-type"), (["--json", "--csv"], "not both"),
])
def test_failures_refuse_wrong_options(cli, shop, args, message):
    result = cli("report", "failures", "shop.example", *args)
    assert result.exit_code == 2 and message in result.output


def test_failures_of_a_domain_not_hosted_fail(cli, shop):
    result = cli("report", "failures", "elsewhere.example")
    assert result.exit_code == 1 and "not hosted" in result.output


def test_prune_deletes_old_reports_and_keeps_the_rollups(cli, session, stored):
    store_report(session, daily_report("old", sts_block("shop.example", 1, 1, failure("dnssec-invalid", 1)),
                                       day=days_ago(100)))
    totals_before = session.scalar(select(func.sum(DailyTotal.failed_session_count)))
    result = cli("report", "prune", "--older-than", "30")
    assert result.exit_code == 0 and result.output.startswith("deleted 1 report(s)")
    assert session.scalar(select(func.count()).select_from(Report)) == 2
    assert session.scalar(select(func.count()).select_from(ReportDomain)) == 2
    assert session.scalar(select(func.count()).select_from(FailureDetail)) == 2
    assert session.scalar(select(func.sum(DailyTotal.failed_session_count))) == totals_before == 68
    assert "dnssec-invalid" in session.scalars(select(DailyFailure.result_type)).all()


def test_prune_defaults_to_the_retention_setting(cli, app, session, stored, monkeypatch):
    configure(monkeypatch, app, TLSRPT_RETENTION_DAYS=2)
    assert cli("report", "prune").output.startswith("deleted 1 report(s)")  # the one that ended 3 days ago


def failures_of(session, day: str) -> dict[tuple[str, str, str, str], int]:
    """The failure rollups of one day: failed sessions by result type, MX, organisation and sending IP."""
    rows = session.execute(
        select(DailyFailure.result_type, DailyFailure.mx_host, DailyFailure.organization_name, DailyFailure.sending_ip,
               func.sum(DailyFailure.failed_session_count))
        .where(DailyFailure.day == date.fromisoformat(day))
        .group_by(DailyFailure.result_type, DailyFailure.mx_host, DailyFailure.organization_name,
                  DailyFailure.sending_ip))
    return {tuple(key): int(count) for *key, count in rows}


def test_prune_folds_the_sending_ips_of_old_failure_rollups_and_keeps_the_other_rollups(cli, session, stored):
    old = days_ago(100)
    for report_id, details in (("old-1", (failure("certificate-expired", 5, "mx2.shop.example", "192.0.2.1"),
                                          failure("certificate-expired", 3, "mx2.shop.example", "192.0.2.2"),
                                          failure("dnssec-invalid", 2))),
                               ("old-2", (failure("certificate-expired", 4, "mx2.shop.example", "192.0.2.1"),)),
                               ("old-3", (failure("certificate-expired", 1, "mx2.shop.example", "192.0.2.9"),))):
        store_report(session, daily_report(report_id, sts_block("shop.example", 10, sum(d["failed-session-count"]
                                                                                       for d in details), *details),
                                           organization="Yahoo" if report_id == "old-3" else "Google Inc.", day=old))
    by_ip = select(func.count()).select_from(DailyFailure).where(DailyFailure.sending_ip != "")
    old_by_ip = session.scalar(by_ip.where(DailyFailure.day == date.fromisoformat(old)))
    recent = {day: failures_of(session, day) for day in (days_ago(3), days_ago(2))}
    totals_before = session.execute(select(func.count(), func.sum(DailyTotal.failed_session_count))).one()
    by_policy_domain = session.execute(select(func.count(), func.sum(DailyRollup.session_count))).one()
    seen = session.execute(select(ResultTypeSeen.result_type, ResultTypeSeen.first_received_at)).all()

    result = cli("report", "prune")
    assert result.exit_code == 0, result.output
    first, second = result.output.splitlines()
    assert first.startswith("deleted 0 report(s)")
    assert second.startswith(f"deleted {old_by_ip} failure rollup row(s) by sending IP of days before {days_ago(90)}")
    assert failures_of(session, old) == {("certificate-expired", "mx2.shop.example", "Google Inc.", ""): 12,
                                         ("dnssec-invalid", "", "Google Inc.", ""): 2,
                                         ("certificate-expired", "mx2.shop.example", "Yahoo", ""): 1}
    assert {day: failures_of(session, day) for day in recent} == recent  # 3 and 2 days ago, with their IPs
    assert session.execute(select(func.count(), func.sum(DailyTotal.failed_session_count))).one() == totals_before
    assert session.execute(select(func.count(), func.sum(DailyRollup.session_count))).one() == by_policy_domain
    assert session.execute(select(ResultTypeSeen.result_type, ResultTypeSeen.first_received_at)).all() == seen
    assert session.scalar(select(func.count()).select_from(Report)) == 5
    assert cli("report", "prune").output.splitlines()[1].startswith("deleted 0 failure rollup row(s)")


def test_prune_keeps_the_sending_ips_for_their_setting(cli, app, session, stored, monkeypatch):
    configure(monkeypatch, app, TLSRPT_IP_ROLLUP_RETENTION_DAYS=2)
    assert cli("report", "prune").output.splitlines()[1].startswith("deleted 1 failure rollup row(s)")
    assert failures_of(session, days_ago(3)) == {("certificate-expired", "mx2.shop.example", "Google Inc.", ""): 60}
    assert failures_of(session, days_ago(2)) == {
        ("tlsa-invalid", "mx1.shop.example", "Microsoft Corporation", "203.0.113.4"): 7}
