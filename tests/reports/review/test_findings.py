"""Each finding kind comes from a crafted report set, stored through the intake, and not from its control set.

Reports are shaped as Google, Microsoft and Mail.ru send them, and the real samples go in as received.
"""

import json
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import update

from reports.ingest import ingest_report
from reports.review.finding_queries import load_findings
from stspolicy.dns.dane import certificate_facts, tlsa_record
from stspolicy.dns.models import MxObservation
from stspolicy.policies.models import PolicyVersion
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain, update_policy
from tests.factories import host
from tests.lab.pki import TestCA, pem
from tests.reports.alerts.craft import INTAKE, NOW, block, certificate, checked, day, finding, mx_seen, report
from tests.support.reportdata import SAMPLES

GOOGLE, MICROSOFT, MAILRU = "Google Inc.", "Microsoft Corporation", "Mail.ru"
DOMAIN = "example.com"
MX = ("mx1.example.com", "mx2.example.com")
RENEWED_AT = datetime.combine(day(3), time(6), UTC)  # new certificate first seen: one day at any hour of a run


def findings(session, *names, days=60):
    return load_findings(session, names or [DOMAIN], since=NOW - timedelta(days=days), until=NOW + timedelta(days=1))


def of_kind(session, kind, *names, days=60):
    return [f for f in findings(session, *names, days=days) if f.kind == kind]


def failures(*details, mx=MX, ip="192.0.2.25"):
    """An sts block of example.com; `details` are (result type, receiving MX, failed sessions)."""
    document = block(DOMAIN, 100, sum(d[2] for d in details), details, mx=mx)
    for detail in document["failure-details"]:
        detail["receiving-ip"] = ip
    return document


@pytest.fixture
def domain(session):
    return host(session, DOMAIN, mx=MX)


def backdate(session, version: PolicyVersion, days_ago: int):
    session.execute(update(PolicyVersion).where(PolicyVersion.id == version.id)
                    .values(created_at=NOW - timedelta(days=days_ago)))
    session.commit()
    session.expire_all()


# certificate-problem, with the sentence the product must give


def test_google_alone_reporting_an_expired_certificate_is_a_sender_side_certificate_problem(session, domain):
    checked(session, domain, NOW - timedelta(days=2), [mx_seen("mx2.example.com", not_after=NOW - timedelta(days=4))])
    for ago in (3, 2):
        report(session, GOOGLE, day(ago), [failures(("certificate-expired", "mx2.example.com", 30))])
    [found] = of_kind(session, "certificate-problem")
    assert (found.domain, found.side) == (DOMAIN, "sender")
    assert found.fix.startswith(f"Google Inc. reports certificate-expired on mx2.example.com (192.0.2.25), 60 sessions "
                                f"since {day(3):%Y-%m-%d}: renew the certificate of mx2.example.com")
    assert f"valid until {(NOW - timedelta(days=4)):%Y-%m-%d}" in found.fix
    assert found.evidence["organisations"] == {GOOGLE: 60} and found.evidence["mx_host"] == "mx2.example.com"
    assert found.since.date() == day(3) and found.until.date() == day(2)
    json.dumps(found.as_dict())


def test_two_organisations_reporting_the_same_result_type_on_one_mx_make_it_the_receivers(session, domain):
    report(session, GOOGLE, day(1), [failures(("certificate-host-mismatch", "mx1.example.com", 5))])
    report(session, MICROSOFT, day(1), [failures(("certificate-host-mismatch", "mx1.example.com", 7))])
    [found] = of_kind(session, "certificate-problem")
    assert found.side == "receiver" and found.evidence["organisations"] == {MICROSOFT: 7, GOOGLE: 5}
    assert found.fix.startswith("Microsoft Corporation and Google Inc. report certificate-host-mismatch")


def test_two_organisations_with_different_result_types_on_one_mx_are_each_the_senders(session, domain):
    report(session, GOOGLE, day(1), [failures(("certificate-expired", "mx1.example.com", 5))])
    report(session, MICROSOFT, day(1), [failures(("certificate-not-trusted", "mx1.example.com", 7))])
    assert sorted((f.evidence["result_type"], f.side) for f in of_kind(session, "certificate-problem")) == [
        ("certificate-expired", "sender"), ("certificate-not-trusted", "sender")]


def test_the_google_json_sample_is_a_validation_failure_on_its_mx(session):
    host(session, DOMAIN, mx=(DOMAIN,))
    ingest_report(session, (SAMPLES / "smtp_tls.json").read_bytes(), INTAKE, source="file")
    unknown, problem = load_findings(session, [DOMAIN], since=NOW - timedelta(days=5000), until=NOW)
    assert (problem.kind, problem.side, problem.evidence["mx_host"], problem.evidence["failed_sessions"]) == (
        "certificate-problem", "sender", DOMAIN, 3)
    assert problem.evidence["receiving_ips"] == ["173.212.201.41"]
    # Its policy says max_age 86400; ours 604800.
    assert unknown.kind == "unknown-sts-policy" and "max_age 86400" in unknown.fix


# Control: sessions that all succeed, and the Google sample of a domain without a policy


def test_reports_without_failures_give_no_finding(session, domain):
    for organisation in (GOOGLE, MICROSOFT, MAILRU):
        report(session, organisation, day(1), [block(DOMAIN, 500, mx=MX)])
    checked(session, domain, NOW - timedelta(hours=3), [mx_seen(mx) for mx in MX])
    assert findings(session) == []


def test_the_google_mail_sample_without_a_policy_gives_no_finding(session):
    from reports.channels.mail import ingest_message

    host(session, "cardinalhealth.ca", mx=("mx1.{}",))
    ingest_message(session, (SAMPLES / "google.com_smtp_tls_report.eml").read_bytes(), INTAKE, source="file")
    assert load_findings(session, ["cardinalhealth.ca"], since=NOW - timedelta(days=5000), until=NOW) == []


# starttls-not-supported and dnssec-invalid, against what our checks saw


def test_an_mx_without_starttls_to_two_senders_is_the_receivers(session, domain):
    checked(session, domain, NOW - timedelta(days=1), [mx_seen("mx1.example.com", starttls=False,
                                                               probe_error="no STARTTLS offered")])
    for organisation in (GOOGLE, MICROSOFT):
        report(session, organisation, day(1), [failures(("starttls-not-supported", "mx1.example.com", 3))])
    [found] = of_kind(session, "starttls-not-supported")
    assert found.side == "receiver" and "did not offer STARTTLS" in found.fix
    assert found.evidence["observed"][0]["starttls"] is False
    assert of_kind(session, "dnssec-invalid") == []


def test_dnssec_invalid_says_whether_our_checks_saw_the_tlsa_look_up_fail(session, domain):
    checked(session, domain, NOW - timedelta(days=2), [mx_seen("mx1.example.com", tlsa_state="bogus")])
    checked(session, domain, NOW - timedelta(days=1), [mx_seen("mx2.example.com", tlsa_state="secure")])
    for organisation in (GOOGLE, MICROSOFT):
        report(session, organisation, day(2), [failures(("dnssec-invalid", "mx1.example.com", 4))])
    report(session, MAILRU, day(1), [failures(("dnssec-invalid", "mx2.example.com", 1))])
    bogus, secure = of_kind(session, "dnssec-invalid")
    assert (bogus.evidence["mx_host"], bogus.side) == ("mx1.example.com", "receiver")
    assert "saw the TLSA look-up of mx1.example.com bogus" in bogus.fix
    assert (secure.evidence["mx_host"], secure.side) == ("mx2.example.com", "sender")
    assert "secure meanwhile: a sender's resolver" in secure.fix
    assert of_kind(session, "tlsa-mismatch") == []


# policy-fetch-failure: the Mail.ru sample, a Microsoft block without a policy-string


def test_policy_fetch_errors_of_mail_ru_and_microsoft_compared_with_our_certificate(session):
    domain = host(session, DOMAIN, mx=MX)
    ingest_report(session, (SAMPLES / "mail.ru.json").read_bytes(), INTAKE, source="file")
    sample_day = "2024-02-22"
    microsoft = {"policy": {"policy-type": "sts", "policy-domain": DOMAIN},
                 "summary": {"total-successful-session-count": 0, "total-failure-session-count": 2},
                 "failure-details": [{"result-type": "sts-policy-fetch-error", "failed-session-count": 2}]}
    ingest_report(session, json.dumps({
        "organization-name": MICROSOFT, "report-id": "133535354203065975+example.com",
        "date-range": {"start-datetime": f"{sample_day}T00:00:00Z", "end-datetime": f"{sample_day}T23:59:59Z"},
        "contact-info": "tlsrpt-noreply@microsoft.com", "policies": [microsoft]}).encode(), INTAKE, source="file")
    certificate(session, "mta-sts.example.com", not_after=NOW.replace(year=2024, month=2, day=1))
    assert domain.name == DOMAIN
    [found] = load_findings(session, [DOMAIN], since=NOW.replace(year=2024, month=2, day=20),
                            until=NOW.replace(year=2024, month=2, day=25))
    assert (found.kind, found.side, found.evidence["result_type"]) == (
        "policy-fetch-failure", "receiver", "sts-policy-fetch-error")
    assert found.evidence["organisations"] == {MICROSOFT: 2, MAILRU: 2}
    assert found.evidence["failure_reason_codes"] == ["bad https response code: 404"]
    assert found.evidence["policy_host_certificate"]["state_then"] == "expired"
    assert "https://mta-sts.example.com/.well-known/mta-sts.txt" in found.fix
    assert "the certificate of mta-sts.example.com was expired then" in found.fix


def test_a_policy_fetch_error_while_our_checks_saw_the_policy_host_elsewhere_says_so(session, domain):
    checked(session, domain, NOW - timedelta(days=1), [mx_seen(mx) for mx in MX], findings=[finding(
        "policy-host-elsewhere", "mta-sts.example.com", "mta-sts.example.com resolves to 203.0.113.9, not to this "
        "service", check="policy_host")])
    report(session, GOOGLE, day(1), [failures(("sts-policy-fetch-error", "", 9))])
    [found] = of_kind(session, "policy-fetch-failure")
    assert found.side == "sender" and "resolves to 203.0.113.9" in found.fix
    assert "no certificate of mta-sts.example.com is stored here" in found.fix
    assert found.evidence["dns_checks"][0]["code"] == "policy-host-elsewhere"


# mx-not-in-policy


def test_a_receiving_mx_that_no_pattern_of_the_version_in_force_matches(session, domain):
    report(session, GOOGLE, day(1), [failures(("validation-failure", "mx3.example.com", 4),
                                              ("validation-failure", "mx1.example.com", 2))])
    [found] = of_kind(session, "mx-not-in-policy")
    assert found.evidence["mx_host"] == "mx3.example.com" and found.side == "sender"
    assert "Add `mx: mx3.example.com` to the policy of example.com" in found.fix
    assert "mx1.example.com, mx2.example.com" in found.fix


def test_an_mx_added_to_the_policy_before_the_reports_is_in_it(session, domain):
    update_policy(session, domain, mx_patterns=[*MX, "mx3.example.com"], actor="test")
    backdate(session, domain.versions[-1], 3)
    report(session, GOOGLE, day(1), [failures(("validation-failure", "mx3.example.com", 4),
                                              mx=(*MX, "mx3.example.com"))])
    assert of_kind(session, "mx-not-in-policy") == []


# stale-sts-policy and unknown-sts-policy


def superseded(session, domain):
    """example.com's first version (mx1, mx2) made 40 days ago, superseded 20 days ago by one adding mx3."""
    backdate(session, domain.versions[0], 40)
    update_policy(session, domain, mx_patterns=[*MX, "mx3.example.com"], actor="test")
    backdate(session, domain.versions[-1], 20)
    return domain.versions[0], domain.versions[-1]


def test_senders_applying_a_superseded_version_is_a_stale_policy(session, domain):
    old, new = superseded(session, domain)
    for organisation in (GOOGLE, MICROSOFT):
        for ago in range(25, 0, -1):
            report(session, organisation, day(ago), [block(DOMAIN, 10, mx=MX)])
    [found] = of_kind(session, "stale-sts-policy")
    assert found.side == "receiver" and found.since.date() == day(19)
    assert found.evidence["version"]["policy_id"] == old.policy_id
    assert found.evidence["lacks"] == ["mx3.example.com"] and found.evidence["sessions"] == 2 * 19 * 10
    assert found.fix.startswith(f"Google Inc. and Microsoft Corporation still apply policy id {old.policy_id}, "
                                f"superseded on {new.created_at:%Y-%m-%d}, which lacks mx3.example.com.")
    assert f"_mta-sts.example.com says id={new.policy_id}" in found.fix


def test_the_stale_finding_names_our_dns_check_that_saw_the_old_id(session, domain):
    old, new = superseded(session, domain)
    checked(session, domain, NOW - timedelta(days=4), [mx_seen(mx) for mx in MX], findings=[finding(
        "sts-id-stale", "_mta-sts.example.com", f"DNS still says id {old.policy_id}: publish id {new.policy_id}",
        check="sts_record")])
    report(session, GOOGLE, day(4), [block(DOMAIN, 10, mx=MX)])
    [found] = of_kind(session, "stale-sts-policy")
    assert found.side == "sender" and f"publish v=STSv1; id={new.policy_id}" in found.fix


def test_a_superseded_version_applied_before_or_on_the_day_of_the_change_is_not_stale(session, domain):
    superseded(session, domain)
    for ago in range(30, 19, -1):
        report(session, GOOGLE, day(ago), [block(DOMAIN, 10, mx=MX)])
    for ago in range(19, 0, -1):
        report(session, GOOGLE, day(ago), [block(DOMAIN, 10, mx=(*MX, "mx3.example.com"))])
    assert findings(session) == []


def test_a_policy_none_of_our_versions_has_is_an_unknown_policy(session, domain):
    report(session, GOOGLE, day(2), [block(DOMAIN, 10, mx=("mail.elsewhere.example",))])
    report(session, GOOGLE, day(1), [block(DOMAIN, 10, mx=MX)])
    [found] = findings(session)
    assert (found.kind, found.side) == ("unknown-sts-policy", "sender")
    assert "mx mail.elsewhere.example" in found.fix and "Another server may answer for mta-sts.example.com" in found.fix
    assert found.evidence["policy_string"][2] == "mx: mail.elsewhere.example"


# tlsa-mismatch: failures, and the records senders saw against the certificate our probes saw


@pytest.fixture(scope="module")
def renewed():
    """The certificate of mx1.example.com before and after a renewal with a new key, and their chain's CA."""
    ca = TestCA(not_before=NOW - timedelta(days=90))
    return (ca, ca.issue("mx1.example.com", not_before=NOW - timedelta(days=80))[0],
            ca.issue("mx1.example.com", not_before=NOW - timedelta(days=5))[0])


def presented(ca, leaf, **changes) -> MxObservation:
    facts = certificate_facts(leaf, "mx1.example.com", NOW)
    seen = mx_seen("mx1.example.com", certificate=facts.certificate_sha256, spki=facts.spki_sha256,
                   tlsa_state="secure", **changes)
    seen.chain_pem = pem(*ca.chain(leaf)).decode()
    return seen


def microsoft_tlsa(on, *records, policy_domain=DOMAIN, failed=0):
    """A Microsoft tlsa block: the records as one string holding a JSON array, hex in upper case."""
    document = block(policy_domain, 50, failed, (("tlsa-invalid", "mx1.example.com", failed),) if failed else (),
                     policy_type="tlsa")
    document["policy"]["policy-string"] = [json.dumps([str(record).upper() for record in records])]
    document["policy"]["mx-host"] = ["mx1.example.com"]
    return document


def test_records_senders_saw_that_match_the_old_certificate_after_a_renewal(session, domain, renewed):
    ca, old, new = renewed
    checked(session, domain, NOW - timedelta(days=6), [presented(ca, old)])
    checked(session, domain, RENEWED_AT, [presented(ca, new)])
    for ago in range(6, 0, -1):
        report(session, MICROSOFT, day(ago), [microsoft_tlsa(day(ago), tlsa_record(old, 3))])
    [found] = findings(session)
    assert (found.kind, found.side, found.evidence["mx_host"]) == ("tlsa-mismatch", "sender", "mx1.example.com")
    assert found.since.date() == day(3)
    # The sessions of every report that gave those records, from the first.
    assert found.evidence["records"] == {MICROSOFT: {"records": [str(tlsa_record(old, 3))], "sessions": 300,
                                                     "first": f"{day(6)}T00:00:00+00:00"}}
    assert f"_25._tcp.mx1.example.com. IN TLSA 3 1 1 {tlsa_record(new, 3).data.hex()}" in found.fix


def test_records_that_match_the_certificate_presented_then_are_no_mismatch(session, domain, renewed):
    ca, old, new = renewed
    checked(session, domain, NOW - timedelta(days=6), [presented(ca, old)])
    checked(session, domain, RENEWED_AT, [presented(ca, new)])
    for ago in range(6, 3, -1):
        report(session, MICROSOFT, day(ago), [microsoft_tlsa(day(ago), tlsa_record(old, 3))])
    for ago in range(3, 0, -1):
        report(session, MICROSOFT, day(ago), [microsoft_tlsa(day(ago), tlsa_record(old, 3), tlsa_record(new, 3))])
    for ago in range(6, 0, -1):  # the issuer's record matches either
        report(session, GOOGLE, day(ago), [microsoft_tlsa(day(ago), tlsa_record(ca.intermediate.certificate, 2))])
    assert findings(session) == []


def test_tlsa_invalid_from_two_senders_under_the_mx_host_name_is_one_receiver_finding(session, renewed):
    ca, old, new = renewed
    domains = [host(session, name, mx=("mx1.example.com",)) for name in ("example.com", "example.org")]
    for each in domains:
        checked(session, each, NOW - timedelta(days=3), [presented(ca, new)])
    for organisation in (GOOGLE, MICROSOFT):
        report(session, organisation, day(1), [microsoft_tlsa(day(1), tlsa_record(old, 3), failed=20,
                                                              policy_domain="mx1.example.com")])
    found = findings(session, "example.com", "example.org")
    assert [(f.kind, f.domain, f.side) for f in found] == [("tlsa-mismatch", "example.com", "receiver"),
                                                           ("tlsa-mismatch", "example.org", "receiver")]
    assert found[0].evidence["result_types"] == {"tlsa-invalid": {GOOGLE: 20, MICROSOFT: 20}}
    assert sorted(found[0].evidence["records"]) == [GOOGLE, MICROSOFT]
    assert found[0].fix.startswith("Google Inc. and Microsoft Corporation report tlsa-invalid on mx1.example.com")


def test_the_sys4_sample_is_a_validation_failure_and_a_host_mismatch(session):
    add_domain(session, "example.test", make_policy("enforce", ["mx1.example.test", "mx2.example.test"], 86400),
               actor="test")
    ingest_report(session, (SAMPLES / "tlsrpt-reporter-sys4.json").read_bytes(), INTAKE, source="file")
    found = load_findings(session, ["example.test"], since=NOW - timedelta(days=5000), until=NOW + timedelta(days=1))
    assert sorted((f.kind, f.evidence["result_type"], f.evidence["mx_host"]) for f in found) == [
        ("certificate-problem", "certificate-host-mismatch", "mx2.example.test"),
        ("certificate-problem", "validation-failure", "mx1.example.test")]


def test_findings_are_only_about_the_domains_asked_for(session, domain):
    host(session, "example.org", mx=("mx1.example.org",))
    report(session, GOOGLE, day(1), [block("example.org", 1, 1, (("starttls-not-supported", "mx1.example.org", 1),),
                                           mx=("mx1.example.org",))])
    assert findings(session) == [] and len(findings(session, "example.org")) == 1


def test_more_domains_than_one_batch_are_all_looked_at(session):
    names = [f"d{i:03}.example" for i in range(101)]
    for name in names:
        host(session, name, mx=("mx1.{}",))
    report(session, GOOGLE, day(1), [block(names[-1], 1, 1, (("starttls-not-supported", f"mx1.{names[-1]}", 1),),
                                           mx=(f"mx1.{names[-1]}",))])
    assert [f.domain for f in findings(session, *names)] == [names[-1]]


def test_an_mx_outside_the_policy_in_a_block_without_a_policy_is_no_policy_matter(session, domain):
    document = block(DOMAIN, 1, 2, (("starttls-not-supported", "mx9.example.com", 2),), policy_type="no-policy-found")
    report(session, GOOGLE, day(1), [document])
    assert [f.kind for f in findings(session)] == ["starttls-not-supported"]
