"""Notices reach the people responsible, and only them: mail through a real SMTP server on loopback,
webhooks to a local HTTP server that verifies the signature. One notice per incident, one when it
clears, none for a repeat; a member never hears of another tenant's domain."""

import dataclasses
from datetime import timedelta

from sqlalchemy import select

from reports.alerts import lease
from reports.alerts.models import FAILED, PENDING, SENT, Delivery, Incident
from reports.alerts.service import run as run_alerts
from reports.alerts.settings import SmtpSettings
from reports.alerts.subscriptions import add_webhook, set_preference, set_subscription
from tests.factories import host
from tests.lab.alert_receivers import SMTP_PASSWORD, SMTP_USER, webhook_server
from tests.reports.alerts.craft import NOW, block, checked, day, mx_seen, report

SHARED_MX = "mx.shared-provider.example"
SHARED_POLICY_MX = ("mx1.shared.example", "*.mx.shared.example")  # what the policy of shared.example says


def run(session, now, settings, **options):
    """A run without the weekly digest (test_digest.py has it)."""
    return run_alerts(session, now, settings, digest=False, **options)


def with_smtp(settings, box, **changes):
    smtp = SmtpSettings("localhost", box.port, "starttls", SMTP_USER, SMTP_PASSWORD, str(box.cafile), 10,
                        "alerts@provider.example")
    return dataclasses.replace(settings, smtp=dataclasses.replace(smtp, **changes))


def expiring_mx(session, *domains, at=NOW, days=5):
    for domain in domains:
        checked(session, domain, at - timedelta(hours=1), [mx_seen(SHARED_MX, not_after=NOW + timedelta(days=days))])


def test_an_incident_is_mailed_once_to_each_recipient_and_its_resolution_once(session, people, mailbox,
                                                                             alert_settings):
    settings = with_smtp(alert_settings, mailbox)
    expiring_mx(session, people.shared)
    first = run(session, NOW, settings)
    assert (first.incidents["opened"], first.sent, first.unavailable) == (1, 3, [])
    recipients = sorted(address for rcpts, _ in mailbox.messages for address in rcpts)
    assert recipients == ["admin@provider.example", "editor@customer.example", "viewer@customer.example"]
    [message] = mailbox.to("editor@customer.example")
    assert message["Subject"] == f"[stspolicy] Alert: The certificate of MX {SHARED_MX} expires"
    text = message.get_body(("plain",)).get_content()
    assert "shared.example: MX mx.shared-provider.example uses it" in text
    assert "https://admin.provider.example/domains/shared.example/dns" in text
    assert "Renew the certificate of mx.shared-provider.example" in text
    assert message.get_body(("html",)) is not None

    again = run(session, NOW + timedelta(minutes=15), settings)
    assert (again.incidents, again.queued, again.sent) == ({"opened": 0, "updated": 1, "resolved": 0}, 0, 0)

    renewed = NOW + timedelta(minutes=20)
    checked(session, people.shared, renewed, [mx_seen(SHARED_MX, not_after=NOW + timedelta(days=90))])
    held = run(session, renewed + timedelta(minutes=10), settings)  # cleared, but not yet for an hour
    assert held.sent == 0 and held.incidents["resolved"] == 0
    cleared = run(session, renewed + timedelta(minutes=80), settings)
    assert cleared.incidents["resolved"] == 1 and cleared.sent == 3
    [resolution] = [m for m in mailbox.to("viewer@customer.example") if m["Subject"].startswith("[stspolicy] Resolved")]
    assert "cleared by" in resolution.get_body(("plain",)).get_content()
    assert len(mailbox.messages) == 6
    assert run(session, renewed + timedelta(hours=3), settings).sent == 0


def test_a_notice_goes_out_in_the_language_its_recipient_chose(session, people, mailbox, alert_settings):
    """A French user's mail is in French: its headings, dates and links (the incident's title, lines and fix are
    stored as the rules wrote them, in English, and marked so); the others' stays English."""
    settings = with_smtp(alert_settings, mailbox)
    people.viewer.language = "fr"
    session.commit()
    expiring_mx(session, people.shared)
    run(session, NOW, settings)
    [french] = mailbox.to("viewer@customer.example")
    assert french["Subject"] == f"[stspolicy] Alerte : The certificate of MX {SHARED_MX} expires"
    text = french.get_body(("plain",)).get_content()
    assert "Depuis : " in text and "Que faire :" in text and "Ce que vous recevez :" in text
    assert f"{NOW:%Y-%m-%d}" not in text and "UTC (incident n° " in text  # Babel's French date, not ISO
    assert "DNS et DANE : https://admin.provider.example/domains/shared.example/dns" in text
    html = french.get_body(("html",)).get_content()
    assert '<html lang="fr">' in html and "<h3>Que faire</h3>" in html
    [english] = mailbox.to("editor@customer.example")
    assert english["Subject"].startswith("[stspolicy] Alert: ") and "What to do:" in english.get_body(
        ("plain",)).get_content()


def test_one_mx_failing_for_two_tenants_is_one_incident_and_each_hears_only_of_their_domain(
        session, people, mailbox, alert_settings):
    settings = with_smtp(alert_settings, mailbox)
    expiring_mx(session, people.shared, people.foreign)
    outcome = run(session, NOW, settings)
    assert outcome.incidents["opened"] == 1
    [incident] = session.scalars(select(Incident)).all()
    assert [row.domain_name for row in incident.domains] == ["foreign.example", "shared.example"]
    [outsider] = mailbox.to("outsider@other.example")
    [editor] = mailbox.to("editor@customer.example")
    [admin] = mailbox.to("admin@provider.example")
    for message, shown, hidden in ((outsider, "foreign.example", "shared.example"),
                                   (editor, "shared.example", "foreign.example")):
        for part in ("plain", "html"):
            content = message.get_body((part,)).get_content()
            assert shown in content and hidden not in content
    assert "foreign.example" in admin.get_body(("plain",)).get_content()
    assert "shared.example" in admin.get_body(("plain",)).get_content()


def test_two_hundred_domains_behind_one_mx_make_one_incident_and_one_mail_per_recipient(
        session, people, mailbox, alert_settings):
    settings = with_smtp(alert_settings, mailbox)
    domains = [host(session, f"d{n:03}.example", mx=(SHARED_MX,)) for n in range(200)]
    expiring_mx(session, *domains)
    outcome = run(session, NOW, settings)
    assert outcome.incidents["opened"] == 1 and session.scalar(select(Incident)).domains.__len__() == 200
    [message] = mailbox.to("admin@provider.example")
    text = message.get_body(("plain",)).get_content()
    assert "Domains (200; the first 50)" in text
    assert mailbox.to("editor@customer.example") == []  # none of the 200 is theirs


def test_turned_off_alerts_are_not_sent(session, people, mailbox, alert_settings):
    settings = with_smtp(alert_settings, mailbox)
    set_preference(session, people.viewer, alerts=False, digest=True)
    set_subscription(session, people.editor, people.shared, False)
    set_subscription(session, people.admin, people.shared, True)
    expiring_mx(session, people.shared)
    run(session, NOW, settings)
    assert [rcpts for rcpts, _ in mailbox.messages] == [["admin@provider.example"]]


def test_report_text_is_escaped_in_the_html_mail(session, people, mailbox, alert_settings):
    settings = with_smtp(alert_settings, mailbox)
    organisation = '<script>alert("x")</script> Evil\x1b[2J Org'
    for ago in range(3, 18):
        report(session, organisation, day(ago), [block("shared.example", 100, mx=SHARED_POLICY_MX)])
    run(session, NOW, settings)
    [message] = mailbox.to("viewer@customer.example")
    html = message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "\x1b" not in message.get_body(("plain",)).get_content()
    assert "\n" not in message["Subject"] and "\x1b" not in message["Subject"]


def test_an_unavailable_relay_keeps_notices_queued_and_sends_them_once_it_is_back(session, people, mailbox,
                                                                                 alert_settings):
    from tests.support.servers import free_port

    expiring_mx(session, people.shared)
    down = run(session, NOW, with_smtp(alert_settings, mailbox, port=free_port()))
    assert down.sent == 0 and down.unavailable and "SMTP localhost" in down.unavailable[0]
    assert {d.state for d in session.scalars(select(Delivery))} == {PENDING}
    wrong_password = run(session, NOW + timedelta(minutes=5), with_smtp(alert_settings, mailbox, password="wrong"))
    assert wrong_password.unavailable and "login refused" in wrong_password.unavailable[0]
    back = run(session, NOW + timedelta(hours=2), with_smtp(alert_settings, mailbox))
    assert back.sent == 3 and back.unavailable == []
    assert {d.state for d in session.scalars(select(Delivery))} == {SENT}
    assert len(mailbox.messages) == 3


def test_a_webhook_gets_a_signed_notice_and_is_retried_after_a_500(session, people, alert_settings):
    settings = dataclasses.replace(alert_settings, webhooks=dataclasses.replace(
        alert_settings.webhooks, allowed_networks=("127.0.0.0/8",), backoff_seconds=0.01))
    with webhook_server() as hook:
        hook.fail_first = 1
        registered = add_webhook(session, people.outsider, hook.url, "json", actor="test")
        hook.secret = registered.secret
        expiring_mx(session, people.shared, people.foreign)
        outcome = run(session, NOW, settings)
    assert outcome.sent == 1 and outcome.unavailable == []
    assert len(hook.requests) == 2 and hook.bad_signatures == 0  # a 500, then the retry
    [body] = hook.bodies
    assert body["event"] == "opened" and body["incident"]["rule"] == "certificate-expiry"
    assert [d["domain"] for d in body["domains"]] == ["foreign.example"]
    assert body["domains"][0]["links"]["DNS and DANE"] == "https://admin.provider.example/domains/foreign.example/dns"
    headers = hook.requests[1][0]
    assert headers["X-Stspolicy-Delivery"] == str(session.scalar(select(Delivery.id)))


def test_a_webhook_in_slack_format_posts_the_text(session, people, alert_settings):
    settings = dataclasses.replace(alert_settings, webhooks=dataclasses.replace(
        alert_settings.webhooks, allowed_networks=("127.0.0.0/8",)))
    with webhook_server() as hook:
        hook.secret = add_webhook(session, people.editor, hook.url, "slack", actor="test").secret
        expiring_mx(session, people.shared)
        run(session, NOW, settings)
    [body] = hook.bodies
    assert list(body) == ["text"] and f"The certificate of MX {SHARED_MX} expires" in body["text"]


def test_a_webhook_to_a_private_address_is_refused(session, people, alert_settings):
    with webhook_server() as hook:
        add_webhook(session, people.editor, hook.url, "json", actor="test")
        expiring_mx(session, people.shared)
        outcome = run(session, NOW, alert_settings)
    assert hook.requests == [] and outcome.failed == 1
    assert "not a public address" in session.scalar(select(Delivery.last_error))
    assert session.scalar(select(Delivery.state)) == FAILED


def test_a_run_finds_the_lease_taken_by_another_host_and_does_nothing(session, people, alert_settings):
    assert lease.claim(session, "host-a:1", NOW, 600)
    expiring_mx(session, people.shared)
    assert run(session, NOW, alert_settings, holder="host-b:2").ran is False
    assert session.scalars(select(Incident)).all() == []
    assert lease.claim(session, "host-b:2", NOW + timedelta(seconds=601), 600)  # the first holder is gone
