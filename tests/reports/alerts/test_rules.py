"""Each rule fires on a crafted report set, DNS state or certificate state, and not on its control."""

from datetime import timedelta

from reports.alerts.facts import gather
from reports.alerts.rules import evaluate, merge
from stspolicy.policies.queries import list_domains
from tests.factories import host
from tests.reports.alerts.craft import NOW, block, certificate, checked, day, finding, mx_seen, report


def signals(session, now=NOW, rule=None):
    found = merge([s for facts in gather(session, list_domains(session), now)
                   for s in evaluate(facts, now, "https://admin.example")])
    return [s for s in found if rule is None or s.rule == rule]


def steady_baseline(session, domain, days=range(3, 31), ok=1000, failed=1, organisation="Google Inc."):
    for ago in days:
        report(session, organisation, day(ago), [block(domain, ok, failed, (("validation-failure", "mx1." + domain,
                                                                             failed),) if failed else ())])


def test_a_failure_spike_on_one_mx_above_the_baseline_is_one_signal_about_that_mx(session):
    host(session, "example.com")
    steady_baseline(session, "example.com")
    for ago in (0, 1):
        report(session, "Google Inc.", day(ago), [block("example.com", 700, 300, (
            ("certificate-expired", "mx1.example.com", 290), ("validation-failure", "mx2.example.com", 10)))])
        report(session, "Microsoft Corporation", day(ago), [block("example.com", 70, 30, (
            ("certificate-expired", "mx1.example.com", 30),))])
    [signal] = signals(session, rule="failure-rate")
    assert signal.subject == "mx1.example.com" and signal.variant == "sts"
    assert signal.title == "MTA-STS sessions to MX mx1.example.com fail"
    [part] = signal.parts
    assert part.evidence["failed_sessions"] == 660 and part.evidence["total_sessions"] == 2200
    assert part.evidence["result_types"]["certificate-expired"] == 640
    assert part.evidence["organisations"] == {"Google Inc.": 600, "Microsoft Corporation": 60}
    assert "30.0 %" in part.lines[0] and "0.1 %" in part.lines[0]
    assert signal.fix.startswith("Renew the MX certificate")
    assert signal.since.date() == day(1)


def test_a_rate_the_domain_always_had_is_no_spike(session):
    host(session, "example.com")
    steady_baseline(session, "example.com", ok=700, failed=300)
    for ago in (0, 1):
        report(session, "Google Inc.", day(ago), [block("example.com", 700, 300, (
            ("validation-failure", "mx1.example.com", 300),))])
    assert signals(session, rule="failure-rate") == []


def test_few_failed_sessions_are_no_spike(session):
    host(session, "example.com")
    steady_baseline(session, "example.com", failed=0)
    report(session, "Google Inc.", day(0), [block("example.com", 10, 5, (("certificate-expired", "mx1.example.com",
                                                                           5),))])
    assert signals(session, rule="failure-rate") == []


def test_dane_blocks_reported_under_the_mx_host_name_count_for_every_domain_using_that_mx(session):
    domains = [host(session, name, mx=("mx.shared-provider.example",)) for name in ("a.example", "b.example")]
    for domain in domains:
        checked(session, domain, NOW - timedelta(hours=1), [mx_seen("mx.shared-provider.example")])
    for ago in range(0, 2):
        report(session, "Microsoft Corporation", day(ago), [block(
            "mx.shared-provider.example", 40, 60, (("tlsa-invalid", "mx.shared-provider.example", 60),),
            policy_type="tlsa")])
    [signal] = signals(session, rule="failure-rate")
    assert (signal.subject, signal.variant) == ("mx.shared-provider.example", "tlsa")
    assert [part.domain for part in signal.parts] == ["a.example", "b.example"]
    assert all(part.evidence["failed_sessions"] == 120 for part in signal.parts)


def test_a_result_type_never_seen_before_is_new_and_one_seen_before_is_not(session):
    host(session, "example.com")
    for ago in range(3, 40):
        report(session, "Google Inc.", day(ago), [block("example.com", 100, 1, (
            ("certificate-expired", "mx1.example.com", 1),))])
    report(session, "Google Inc.", day(0), [block("example.com", 100, 3, (
        ("certificate-expired", "mx1.example.com", 1), ("starttls-not-supported", "mx2.example.com", 2)))])
    [signal] = signals(session, rule="new-result-type")
    assert signal.variant == "starttls-not-supported" and signal.subject == "mx2.example.com"
    assert signal.parts[0].evidence["organisations"] == {"Google Inc.": 2}
    assert signal.fix == "Make the MX offer STARTTLS on port 25 to every sender."


def test_a_stale_mta_sts_id_is_drift_once_the_grace_period_has_passed(session):
    domain = host(session, "example.com")
    policy_id = domain.versions[-1].policy_id
    checked(session, domain, NOW + timedelta(hours=1), [mx_seen("mx1.example.com")], [
        finding("sts-id-stale", "_mta-sts.example.com", f"DNS still says id 20200101: publish id {policy_id}",
                check="sts_record"),
        finding("tlsrpt-ok", "_smtp._tls.example.com", level="ok")])
    assert signals(session, NOW + timedelta(hours=2), rule="dns-drift") == []  # within the 6 hours of grace
    [signal] = signals(session, NOW + timedelta(hours=7), rule="dns-drift")
    assert signal.subject == "_mta-sts.example.com"
    assert f"id={policy_id}" in signal.fix and "DNS still says id 20200101" in signal.parts[0].lines[0]


def test_smtp_tls_that_pointed_here_and_no_longer_does_is_drift(session):
    domain = host(session, "example.com")
    ok = finding("tlsrpt-ok", "_smtp._tls.example.com", level="ok")
    elsewhere = finding("tlsrpt-not-here", "_smtp._tls.example.com", "sends reports to mailto:x@elsewhere.example",
                        level="warning")
    checked(session, domain, NOW - timedelta(hours=30), [mx_seen("mx1.example.com")], [ok])
    checked(session, domain, NOW - timedelta(hours=20), [mx_seen("mx1.example.com")], [elsewhere])
    checked(session, domain, NOW - timedelta(hours=1), [mx_seen("mx1.example.com")], [elsewhere])
    [signal] = signals(session, rule="dns-drift")
    assert signal.title == "_smtp._tls.example.com no longer sends TLS reports here"
    assert signal.since == NOW - timedelta(hours=20)


def test_one_mx_certificate_expiring_for_200_domains_is_one_signal(session):
    for n in range(200):
        domain = host(session, f"d{n:03}.example", mx=("mx.shared-provider.example",))
        checked(session, domain, NOW - timedelta(hours=1),
                [mx_seen("mx.shared-provider.example", not_after=NOW + timedelta(days=5))])
    [signal] = signals(session, rule="certificate-expiry")
    assert signal.subject == "mx.shared-provider.example" and len(signal.parts) == 200
    assert "(4 days left)" in signal.lines[0] or "(5 days left)" in signal.lines[0]


def test_certificates_valid_for_longer_than_the_threshold_are_no_signal(session):
    domain = host(session, "example.com")
    checked(session, domain, NOW - timedelta(hours=1), [mx_seen("mx1.example.com", not_after=NOW + timedelta(days=30))])
    certificate(session, "mta-sts.example.com", NOW + timedelta(days=40))
    assert signals(session, rule="certificate-expiry") == []


def test_policy_host_certificates_that_do_not_renew_are_one_signal(session):
    for name in ("a.example", "b.example"):
        host(session, name)
        certificate(session, f"mta-sts.{name}", NOW + timedelta(days=6), failures=4,
                    last_error="urn:ietf:params:acme:error:connection")
    [signal] = signals(session, rule="certificate-expiry")
    assert signal.subject == "mta-sts" and [p.domain for p in signal.parts] == ["a.example", "b.example"]
    assert "4 renewal attempts failed" in signal.parts[0].lines[0]


def test_a_renewed_mx_certificate_that_no_tlsa_record_matches_is_the_dane_outage(session):
    domain = host(session, "example.com")
    records = ("3 1 1 " + "aa" * 32,)
    checked(session, domain, NOW - timedelta(hours=3), [mx_seen(
        "mx1.example.com", certificate="c1", spki="aa", tlsa_records=records, tlsa_state="secure",
        tlsa_match=records[0])])
    checked(session, domain, NOW - timedelta(hours=1), [mx_seen(
        "mx1.example.com", certificate="c2", spki="bb", tlsa_records=records, tlsa_state="secure")],
        [finding("tlsa-mismatch", "_25._tcp.mx1.example.com")])
    [signal] = signals(session, rule="tlsa-certificate-mismatch")
    assert signal.subject == "mx1.example.com" and signal.evidence["renewed"] is True
    assert f"_25._tcp.mx1.example.com. IN TLSA 3 1 1 {'bb' * 32}" in signal.fix
    assert any("matched 3 1 1" in line for line in signal.lines)


def test_an_unsigned_tlsa_mismatch_is_no_outage(session):
    domain = host(session, "example.com")
    checked(session, domain, NOW - timedelta(hours=1), [mx_seen(
        "mx1.example.com", tlsa_records=("3 1 1 " + "aa" * 32,), tlsa_state="insecure")],
        [finding("tlsa-mismatch", "_25._tcp.mx1.example.com", level="warning")])
    assert signals(session, rule="tlsa-certificate-mismatch") == []


def ready_domain(session, organisations=("Google Inc.", "Microsoft Corporation", "Mail.ru"), failed=0):
    domain = host(session, "example.com", mx=("mx1.example.com",))
    for ago in range(0, 15):
        for organisation in organisations:
            report(session, organisation, day(ago), [block("example.com", 100, failed, (
                ("certificate-expired", "mx1.example.com", failed),) if failed else (), mx=("mx1.example.com",))])
    for ago in range(16, -1, -1):
        checked(session, domain, NOW - timedelta(days=ago, hours=1), [mx_seen("mx1.example.com")],
                [finding("sts-id-current", "_mta-sts.example.com", level="ok", check="sts_record")])
    return domain


def test_a_testing_domain_that_met_the_readiness_rule_is_proposed_for_enforce(session):
    domain = ready_domain(session)
    [signal] = signals(session, rule="enforce-ready")
    assert signal.variant == domain.versions[-1].policy_id
    assert "https://admin.example/domains/example.com#edit" in signal.fix
    assert "3 organisations" in signal.parts[0].lines[0]


def test_two_organisations_are_not_enough_to_propose_enforce(session):
    ready_domain(session, organisations=("Google Inc.", "Microsoft Corporation"))
    assert signals(session, rule="enforce-ready") == []


def test_an_mta_sts_failure_keeps_the_domain_in_testing(session):
    ready_domain(session, failed=1)
    assert signals(session, rule="enforce-ready") == []


def test_an_organisation_that_reported_daily_and_stopped_went_silent(session):
    host(session, "example.com")
    for ago in range(3, 18):
        report(session, "Google Inc.", day(ago), [block("example.com", 100)])
    for ago in range(0, 18, 5):  # reports now and then: never regular
        report(session, "Occasional Sender", day(ago), [block("example.com", 100)])
    [signal] = signals(session, rule="reporting-silent")
    assert signal.subject == "Google Inc." and signal.since.date() == day(2)


def test_a_rule_turned_off_for_a_domain_says_nothing(session):
    from reports.alerts.models import AlertRule

    domain = host(session, "example.com")
    for ago in range(3, 18):
        report(session, "Google Inc.", day(ago), [block("example.com", 100)])
    session.add(AlertRule(domain_id=domain.id, rule="reporting-silent", enabled=False, parameters={},
                          updated_by="test"))
    session.commit()
    assert signals(session, rule="reporting-silent") == []
