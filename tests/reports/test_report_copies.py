"""Copies of a report: a forged copy never suppresses the genuine one, conflicts are kept out of the
figures until settled, and the same content again is a duplicate stored once."""

import copy
import json
from datetime import date

import pytest
from sqlalchemy import func, select

from reports.ingest import CopyError, Settings, choose_copy, ingest_report
from reports.models import (
    COUNTED,
    HELD,
    SET_ASIDE,
    DailyFailure,
    DailyTotal,
    FailureDetail,
    Report,
    ReportDomain,
    ReportPolicy,
)
from reports.queries import list_conflicts, rollup_totals
from reports.storage import CONFLICT, DUPLICATE, STORED
from stspolicy.base.audit import AuditEvent
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from tests.support.reportdata import encode, gz, report

DAY = date(2026, 11, 1)
SETTINGS = Settings(dkim="record")
SIGNED = "pass d=google.com"


@pytest.fixture
def hosted(session):
    add_domain(session, "example.com", make_policy("testing", ["mx1.example.com"], 86400), actor="test")


def genuine() -> dict:
    return report(organization_name="Google LLC", report_id="2026-11-01T00:00:00Z_example.com",
                  contact_info="smtp-tls-reporting@google.com")


def forged() -> dict:
    document = genuine()
    document["policies"][0]["summary"]["total-failure-session-count"] = 999_999
    document["policies"][0]["failure-details"][0]["failed-session-count"] = 999_999
    return document


def ingest(session, document, source="https", dkim_result=None, body=None):
    return ingest_report(session, body or gz(document), SETTINGS, source=source, dkim_result=dkim_result)


def failed_sessions(session) -> int:
    return rollup_totals(session, "example.com").get((DAY, "example.com", "sts", "failure", ""), 0)


def standings(session) -> list[tuple[int, str]]:
    return [(row.copy_number, row.standing) for row in session.scalars(select(Report).order_by(Report.copy_number))]


def stored_rows(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def test_the_same_content_again_is_a_duplicate_stored_once_even_in_other_bytes(session, hosted):
    assert ingest(session, genuine()).status == STORED
    assert ingest(session, genuine()).status == DUPLICATE
    reformatted = json.dumps(genuine(), indent=4, sort_keys=True).encode()  # another sender's serialiser
    assert ingest(session, None, source="mail", dkim_result=SIGNED, body=reformatted).status == DUPLICATE
    assert standings(session) == [(1, COUNTED)]
    assert failed_sessions(session) == 2


def test_a_forged_copy_first_does_not_suppress_the_genuine_one_and_neither_counts_until_chosen(session, hosted):
    assert ingest(session, forged()).status == STORED
    assert failed_sessions(session) == 999_999
    assert ingest(session, genuine()).status == CONFLICT  # not "duplicate": it is kept
    assert standings(session) == [(1, HELD), (2, HELD)]
    assert failed_sessions(session) == 0  # the figures drop the forged numbers as soon as they are disputed
    assert stored_rows(session, ReportPolicy) == stored_rows(session, FailureDetail) == 0
    [copies] = list_conflicts(session)
    assert [c.copy_number for c in copies] == [1, 2]
    choose_copy(session, copies[1].id, SETTINGS, "cli:admin")
    assert standings(session) == [(1, SET_ASIDE), (2, COUNTED)]
    assert failed_sessions(session) == 2
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "report.copy_chosen")).one()
    assert (event.actor, event.detail["copy_number"]) == ("cli:admin", 2)


def test_a_dkim_verified_mail_outranks_an_unauthenticated_copy_that_came_first(session, hosted):
    ingest(session, forged())
    assert ingest(session, genuine(), source="mail", dkim_result=SIGNED).status == STORED
    assert standings(session) == [(1, SET_ASIDE), (2, COUNTED)]
    assert failed_sessions(session) == 2


def test_a_signature_vouches_only_for_a_report_of_its_own_organisation(session, hosted):
    """An attacker's valid signature on a copy that gives Google's contact-info ranks as no signature."""
    ingest(session, genuine())
    assert ingest(session, forged(), source="mail", dkim_result="pass d=attacker.example").status == CONFLICT
    assert standings(session) == [(1, HELD), (2, HELD)]


def test_an_unauthenticated_copy_after_a_verified_one_is_set_aside(session, hosted):
    ingest(session, genuine(), source="mail", dkim_result=SIGNED)
    assert ingest(session, forged()).status == CONFLICT
    assert ingest(session, forged(), source="mail", dkim_result="fail").status == DUPLICATE
    assert standings(session) == [(1, COUNTED), (2, SET_ASIDE)]
    assert failed_sessions(session) == 2


def test_two_verified_copies_that_differ_are_both_held(session, hosted):
    ingest(session, genuine(), source="mail", dkim_result=SIGNED)
    ingest(session, forged())
    assert ingest(session, forged() | {"contact-info": "other@google.com"}, source="mail",
                  dkim_result=SIGNED).status == CONFLICT
    assert standings(session) == [(1, HELD), (2, SET_ASIDE), (3, HELD)]
    assert failed_sessions(session) == 0


def test_an_admins_choice_outranks_every_later_copy(session, hosted):
    ingest(session, forged())
    ingest(session, genuine())
    choose_copy(session, session.scalars(select(Report.id).where(Report.copy_number == 2)).one(), SETTINGS, "x")
    variant = copy.deepcopy(genuine())
    variant["policies"][0]["summary"]["total-successful-session-count"] = 11
    assert ingest(session, variant, source="mail", dkim_result=SIGNED).status == CONFLICT
    assert standings(session) == [(1, SET_ASIDE), (2, COUNTED), (3, SET_ASIDE)]
    assert failed_sessions(session) == 2


def test_a_report_id_used_again_for_another_day_is_another_report(session, hosted):
    """Some senders reuse report-ids across date ranges: a report is its id and its range."""
    ingest(session, genuine())
    next_day = genuine() | {"date-range": {"start-datetime": "2026-11-02T00:00:00Z",
                                           "end-datetime": "2026-11-02T23:59:59Z"}}
    assert ingest(session, next_day).status == STORED
    assert standings(session) == [(1, COUNTED), (1, COUNTED)]
    assert list_conflicts(session) == []


def test_only_a_copy_of_a_report_in_several_copies_can_be_chosen(session, hosted):
    row_id = ingest(session, genuine()).row_id
    with pytest.raises(CopyError, match="only copy"):
        choose_copy(session, row_id, SETTINGS, "x")
    with pytest.raises(CopyError, match="no stored report"):
        choose_copy(session, row_id + 1000, SETTINGS, "x")


def test_conflicts_and_choices_from_the_command_line(app, session, hosted):
    ingest(session, forged())
    ingest(session, genuine())
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["report", "conflicts"], catch_exceptions=False)
    lines = listed.output.splitlines()
    assert "Google LLC" in lines[0] and "unresolved" in lines[0]
    assert "held" in lines[1] and "failed   999999" in lines[1] and "unsigned" in lines[1]
    assert "held" in lines[2] and "failed        2" in lines[2]
    assert lines[-1] == "1 report(s) in several copies, 1 unresolved"
    second = session.scalars(select(Report.id).where(Report.copy_number == 2)).one()
    chosen = runner.invoke(args=["report", "choose", str(second)], catch_exceptions=False)
    assert chosen.exit_code == 0 and "counts now" in chosen.output
    assert runner.invoke(args=["report", "conflicts"]).output.splitlines()[-1] == (
        "1 report(s) in several copies, 0 unresolved")
    assert runner.invoke(args=["report", "choose", "99999"]).exit_code == 65


def test_a_conflicting_copy_by_https_is_answered_202_and_kept(client, session, hosted):
    headers = {"Content-Type": "application/tlsrpt+json"}
    assert client.post("/tlsrpt", data=encode(forged()), headers=headers).status_code == 201
    answer = client.post("/tlsrpt", data=encode(genuine()), headers=headers)
    assert answer.status_code == 202 and answer.json["status"] == "conflict"
    assert client.post("/tlsrpt", data=encode(genuine()), headers=headers).status_code == 200
    assert standings(session) == [(1, HELD), (2, HELD)]


def test_the_reviews_rollups_follow_the_copy_that_counts(session, hosted):
    def review_figures():
        return (session.scalar(select(func.sum(DailyTotal.failed_session_count))),
                session.scalar(select(func.sum(DailyFailure.failed_session_count))),
                session.scalar(select(func.count()).select_from(ReportDomain)))

    ingest(session, forged())
    assert review_figures() == (999_999, 999_999, 1)
    assert ingest(session, genuine(), source="mail", dkim_result=SIGNED).status == STORED
    genuine_failures = sum(detail["failed-session-count"] for detail in genuine()["policies"][0]["failure-details"])
    assert review_figures() == (genuine()["policies"][0]["summary"]["total-failure-session-count"],
                                genuine_failures, 1)
