"""The weekly digest: per domain, sessions and success rate by policy type, the top failure causes, the
changes made and the open incidents; once per week and user, only the user's domains."""

import dataclasses
from datetime import timedelta

from sqlalchemy import select

from reports.alerts.digest import queue_digests, week_end
from reports.alerts.models import Delivery
from reports.alerts.service import run
from stspolicy.base.audit import AuditEvent
from stspolicy.policies.service import update_policy
from tests.lab.alert_receivers import smtp_server
from tests.reports.alerts.craft import NOW, block, checked, mx_seen, report
from tests.reports.alerts.test_delivery import with_smtp


def test_the_digest_sums_the_week_per_domain_and_tells_each_user_only_of_theirs(session, people, alert_settings,
                                                                                tmp_path, test_ca):
    settings = dataclasses.replace(alert_settings, digest_weekday=NOW.weekday(), digest_hour=0)
    end = week_end(NOW, settings)
    for ago in range(1, 8):
        report(session, "Google Inc.", end.date() - timedelta(days=ago), [
            block("shared.example", 900, 100, (("certificate-expired", "mx1.shared.example", 100),)),
            block("foreign.example", 50, mx=("mx1.foreign.example", "*.mx.foreign.example"))])
    update_policy(session, people.shared, mode="enforce", mx_patterns=None, max_age=None, actor="web:editor@x",
                  enforce_confirmed=True)
    change = session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc())).first()
    change.created_at = end - timedelta(hours=5)  # during the week
    session.commit()
    checked(session, people.shared, NOW - timedelta(hours=1),
            [mx_seen("mx1.shared.example", not_after=NOW + timedelta(days=2))])
    people.viewer.language = "fr"
    session.commit()
    with smtp_server(tmp_path, test_ca) as box:
        settings = with_smtp(settings, box)
        run(session, NOW, settings, digest=False)  # an open incident for the digest to list
        assert queue_digests(session, NOW, settings) == 4
        assert queue_digests(session, NOW + timedelta(hours=1), settings) == 0  # once a week
        run(session, NOW, settings)
        [digest] = [m for m in box.to("editor@customer.example") if "Weekly digest" in m["Subject"]]
    text = digest.get_body(("plain",)).get_content()
    assert "shared.example (enforce)" in text
    assert "MTA-STS: 7,000 sessions, 90.0 % successful" in text
    assert "certificate-expired at mx1.shared.example: 700 sessions" in text
    assert "web:editor@x changed mode from testing to enforce" in text
    assert "The certificate of MX mx1.shared.example expires" in text
    assert "foreign.example" not in text and "foreign.example" not in digest.get_body(("html",)).get_content()
    assert "<td>sts</td>" in digest.get_body(("html",)).get_content()
    [french] = [m for m in box.to("viewer@customer.example") if "Récapitulatif" in m["Subject"]]
    for part in ("plain", "html"):  # its fixed lines, the changes and the open incidents in French too
        content = french.get_body((part,)).get_content()
        assert "web:editor@x a modifié mode de testing à enforce (id de politique " in content
        assert "Le certificat du MX mx1.shared.example expire" in content
        assert "changed" not in content and "The certificate" not in content
    assert "MTA-STS : 7000 sessions, 90.0 % réussies" in french.get_body(("plain",)).get_content()
    [outsider] = [m for m in box.to("outsider@other.example") if "Weekly digest" in m["Subject"]]
    assert "Nothing to report" in outsider.get_body(("plain",)).get_content()


def test_the_week_ends_at_the_configured_weekday_and_hour(alert_settings):
    settings = dataclasses.replace(alert_settings, digest_weekday=0, digest_hour=7)
    end = week_end(NOW, settings)
    assert end.weekday() == 0 and end.hour == 7 and timedelta(0) <= NOW - end < timedelta(days=7)


def test_a_user_who_turned_the_digest_off_gets_none(session, people, alert_settings, tmp_path, test_ca):
    from reports.alerts.subscriptions import set_preference

    for user in (people.admin, people.editor, people.viewer):
        set_preference(session, user, alerts=True, digest=False)
    with smtp_server(tmp_path, test_ca) as box:
        assert queue_digests(session, NOW, with_smtp(alert_settings, box)) == 1
    assert session.query(Delivery).one().recipient == "outsider@other.example"
