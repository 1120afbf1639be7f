"""The finding rules: crafted report sets go in through the intake, `run` stores their findings and raises
incidents, and the notices arrive at a real SMTP server on loopback. One incident per finding, one notice
when it opens and one when it clears, none for a repeat; one MX failing for many domains is one incident,
and each recipient reads only of the domains they see."""

from datetime import timedelta

from sqlalchemy import select

from reports.alerts.models import AlertRule, Incident
from reports.alerts.rules import RULES
from reports.review.finding_store import RECENT, StoredFinding
from stspolicy.policies.service import update_policy
from tests.factories import host, sign_in
from tests.reports.alerts.craft import NOW, block, day, report
from tests.reports.alerts.test_delivery import run, with_smtp

GOOGLE, MICROSOFT = "Google Inc.", "Microsoft Corporation"
SHARED_MX = "mx.shared-provider.example"
EVERYONE = ["admin@provider.example", "editor@customer.example", "viewer@customer.example"]


def failing(session, domain: str, on, result_type: str, mx: str, *organisations: str, policy_mx=None,
            sessions=12) -> None:
    """Each organisation reports `sessions` of `domain` failing with `result_type` on `mx` on UTC day `on`,
    applying the policy that says `policy_mx` (by default the one `tests.factories.host` gives)."""
    patterns = policy_mx or (f"mx1.{domain}", f"*.mx.{domain}")
    for organisation in organisations:
        report(session, organisation, on, [block(domain, 10, sessions, ((result_type, mx, sessions),), mx=patterns)])


def only_finding_rules(session, *domains) -> None:
    """Turn the other rules off for `domains`: the failures crafted here are new result types and spikes too."""
    session.add_all(AlertRule(domain_id=domain.id, rule=rule, enabled=False, parameters={}, updated_by="test")
                    for domain in domains for rule in RULES if not rule.startswith("finding-"))
    session.commit()


def served_by_shared_mx(session, *domains) -> None:
    """A policy version listing SHARED_MX since ten days, over the first, made twenty days ago."""
    for domain in domains:
        domain.versions[-1].created_at = NOW - timedelta(days=20)
        update_policy(session, domain, mx_patterns=[SHARED_MX], actor="test").created_at = NOW - timedelta(days=10)
    session.commit()


def addressed(mailbox) -> list[str]:
    return sorted(address for recipients, _ in mailbox.messages for address in recipients)


def text(message) -> str:
    return message.get_body(("plain",)).get_content()


def test_a_finding_is_one_incident_mailed_once_with_its_evidence_fix_and_link_and_its_resolution_once(
        client, session, people, mailbox, alert_settings):
    settings = with_smtp(alert_settings, mailbox)
    only_finding_rules(session, people.shared)
    failing(session, "shared.example", day(1), "certificate-expired", "mx1.shared.example", GOOGLE, MICROSOFT)
    opened = run(session, NOW, settings)
    assert opened.findings == {"open": 1, "new": 1, "resolved": 0}
    assert (opened.incidents["opened"], opened.sent) == (1, 3) and addressed(mailbox) == EVERYONE
    [message] = mailbox.to("viewer@customer.example")
    assert message["Subject"] == "[stspolicy] Alert: Senders report certificate-expired on MX mx1.shared.example"
    body = text(message).replace("\r\n", "\n")
    assert f"Since: {day(1):%Y-%m-%d} 00:00 UTC" in body
    assert (f"shared.example: 24 sessions reported by Google Inc. 12, Microsoft Corporation 12, from {day(1):%Y-%m-%d} "
            f"00:00 to {day(1):%Y-%m-%d} 23:59 UTC") in body
    assert "two or more organisations report it: likely at our end" in body
    assert "what to do for shared.example: Google Inc. and Microsoft Corporation report certificate-expired" in body
    assert "renew the certificate of mx1.shared.example" in body
    assert "What to do:\n  mx1.shared.example: Renew the MX certificate and reload the mail server." in body
    link = (f"https://admin.provider.example/domains/shared.example/review?since={day(1)}&until={day(1)}"
            "&mx=mx1.shared.example&result_type=certificate-expired")
    assert f"review: {link}\n" in body
    sign_in(client, people.viewer)
    page = client.get(link.removeprefix("https://admin.provider.example"))
    assert page.status_code == 200 and "certificate-expired" in page.get_data(as_text=True)
    assert "DNS and DANE: https://admin.provider.example/domains/shared.example/dns" in body

    failing(session, "shared.example", day(0), "certificate-expired", "mx1.shared.example", GOOGLE)
    again = run(session, NOW + timedelta(hours=1), settings)
    assert again.incidents == {"opened": 0, "updated": 1, "resolved": 0} and (again.queued, again.sent) == (0, 0)

    cleared_at = NOW + RECENT + timedelta(days=2)  # three days without a report showing it
    cleared = run(session, cleared_at, settings)
    assert cleared.findings["resolved"] == 1 and cleared.incidents["resolved"] == 1 and cleared.sent == 3
    [resolution] = [m for m in mailbox.to("editor@customer.example") if m["Subject"].startswith("[stspolicy] Resolved")]
    assert resolution["Subject"] == ("[stspolicy] Resolved: Senders report certificate-expired on MX "
                                     "mx1.shared.example")
    assert f"cleared by {cleared_at:%Y-%m-%d %H:%M} UTC" in text(resolution)
    assert run(session, cleared_at + timedelta(hours=1), settings).sent == 0
    assert len(mailbox.messages) == 6


def test_one_mx_failing_for_two_hundred_domains_of_three_tenants_is_one_incident_each_hears_of_their_own(
        session, people, mailbox, alert_settings):
    settings = with_smtp(alert_settings, mailbox)
    served_by_shared_mx(session, people.shared, people.foreign)
    domains = [people.shared, people.foreign] + [host(session, f"d{n:03}.example", mx=(SHARED_MX,)) for n in range(200)]
    only_finding_rules(session, *domains)
    names = [domain.name for domain in domains]
    for name in names:
        failing(session, name, day(1), "starttls-not-supported", SHARED_MX, GOOGLE, policy_mx=(SHARED_MX,))
    outcome = run(session, NOW, settings)
    assert outcome.findings["new"] == 202 and outcome.incidents["opened"] == 1
    [incident] = session.scalars(select(Incident)).all()
    assert incident.title == f"MX {SHARED_MX} does not offer STARTTLS to senders" and len(incident.domains) == 202
    assert addressed(mailbox) == sorted(EVERYONE + ["outsider@other.example"])  # one mail each
    [admin] = mailbox.to("admin@provider.example")
    assert "Domains (202; the first 50)" in text(admin)
    for address, shown in (("viewer@customer.example", "shared.example"), ("outsider@other.example",
                                                                           "foreign.example")):
        [message] = mailbox.to(address)
        for part in ("plain", "html"):
            content = message.get_body((part,)).get_content()
            others = [name for name in names if name != shown and name in content]
            assert shown in content and others == []
        assert "one organisation alone reports it: perhaps at its end" in text(message)
        assert f"Make {SHARED_MX} offer STARTTLS on port 25 to every sender" in text(message)


def test_a_tenant_whose_domain_no_longer_fails_hears_it_cleared_while_the_other_tenant_does_not(
        session, people, mailbox, alert_settings):
    settings = with_smtp(alert_settings, mailbox)
    served_by_shared_mx(session, people.shared, people.foreign)
    only_finding_rules(session, people.shared, people.foreign)
    failing(session, "shared.example", day(6), "dnssec-invalid", SHARED_MX, GOOGLE, policy_mx=(SHARED_MX,))
    for ago in (6, 1):
        failing(session, "foreign.example", day(ago), "dnssec-invalid", SHARED_MX, GOOGLE, policy_mx=(SHARED_MX,))
    first = run(session, NOW - timedelta(days=5), settings)
    assert first.incidents["opened"] == 1 and addressed(mailbox) == sorted(EVERYONE + ["outsider@other.example"])
    later = run(session, NOW, settings)  # the reports of shared.example have left the window
    assert later.findings == {"open": 1, "new": 0, "resolved": 1} and later.incidents["resolved"] == 0
    resolutions = [(recipients, m) for recipients, m in mailbox.messages if m["Subject"].startswith("[stspolicy] "
                                                                                                   "Resolved")]
    assert sorted(r for recipients, _ in resolutions for r in recipients) == [
        "editor@customer.example", "viewer@customer.example"]
    assert "foreign.example" not in text(resolutions[0][1])


def test_a_rule_turned_off_or_wanting_more_organisations_or_sessions_raises_no_incident(session, people, mailbox,
                                                                                       alert_settings):
    settings = with_smtp(alert_settings, mailbox)
    only_finding_rules(session, people.shared, people.foreign)
    session.add_all([
        AlertRule(domain_id=people.shared.id, rule="finding-certificate-problem", enabled=False, parameters={},
                  updated_by="test"),
        AlertRule(domain_id=people.foreign.id, rule="finding-certificate-problem", enabled=True,
                  parameters={"organisations": 2}, updated_by="test"),
    ])
    session.commit()
    failing(session, "shared.example", day(1), "certificate-expired", "mx1.shared.example", GOOGLE, MICROSOFT)
    failing(session, "foreign.example", day(1), "certificate-not-trusted", "mx1.foreign.example", GOOGLE)
    failing(session, "foreign.example", day(1), "starttls-not-supported", "mx1.foreign.example", GOOGLE, MICROSOFT,
            sessions=4)  # 8 sessions: a sender's noise, under the 10 of the default
    outcome = run(session, NOW, settings)
    assert outcome.findings["open"] == 3 and outcome.incidents["opened"] == 0 and mailbox.messages == []
    failing(session, "foreign.example", day(0), "certificate-not-trusted", "mx1.foreign.example", MICROSOFT)
    failing(session, "foreign.example", day(0), "starttls-not-supported", "mx1.foreign.example", GOOGLE, sessions=2)
    assert run(session, NOW + timedelta(minutes=5), settings).incidents["opened"] == 2
    assert addressed(mailbox) == ["admin@provider.example"] * 2 + ["outsider@other.example"] * 2


def test_a_senders_few_failures_among_a_domains_many_sessions_raise_no_incident_until_they_are_a_share(
        session, people, mailbox, alert_settings):
    settings = with_smtp(alert_settings, mailbox)
    only_finding_rules(session, people.foreign)
    patterns = ("mx1.foreign.example", "*.mx.foreign.example")
    for ago in (2, 1):  # a busy domain: one sender's 15 untrusted sessions a day against 1,500 that went well
        report(session, MICROSOFT, day(ago), [block("foreign.example", 1500, 0, mx=patterns)])
        report(session, GOOGLE, day(ago), [block("foreign.example", 1500, 15, (
            ("certificate-not-trusted", "mx1.foreign.example", 15),), mx=patterns)])
    quiet = run(session, NOW, settings)
    assert quiet.findings["open"] == 1 and quiet.incidents["opened"] == 0 and mailbox.messages == []

    session.add(AlertRule(domain_id=people.foreign.id, rule="finding-certificate-problem", enabled=True,
                          parameters={"share_percent": 0}, updated_by="test"))
    session.commit()
    assert run(session, NOW + timedelta(minutes=5), settings).incidents["opened"] == 1
    assert "certificate-not-trusted" in text(mailbox.to("outsider@other.example")[0])


def test_a_stale_policy_at_senders_is_an_incident_of_that_domain_with_the_findings_fix(session, people, mailbox,
                                                                                       alert_settings):
    settings = with_smtp(alert_settings, mailbox)
    only_finding_rules(session, people.foreign)
    old = people.foreign.versions[-1]
    old.created_at = NOW - timedelta(days=20)
    new = update_policy(session, people.foreign, mx_patterns=["mx1.foreign.example", "mx2.foreign.example"],
                        actor="test")
    new.created_at = NOW - timedelta(days=10)
    session.commit()
    report(session, GOOGLE, day(1), [block("foreign.example", 50, mx=("mx1.foreign.example", "*.mx.foreign.example"))])
    run(session, NOW, settings)
    [message] = mailbox.to("outsider@other.example")
    assert message["Subject"] == (f"[stspolicy] Alert: Senders keep the old MTA-STS policy {old.policy_id} of "
                                  "foreign.example")
    assert "Google Inc. still applies policy id" in text(message) and "which lacks mx2.foreign.example" in text(message)
    assert mailbox.to("viewer@customer.example") == []
    [row] = session.scalars(select(StoredFinding)).all()
    assert (row.kind, row.subject) == ("stale-sts-policy", old.policy_id)
