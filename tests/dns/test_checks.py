"""Findings from DNS answers and probes: each tells the admin what senders will do and what to fix."""

from datetime import UTC, datetime, timedelta

import pytest

from stspolicy.dns.answers import Answer
from stspolicy.dns.dane import certificate_facts, key_record, tlsa_record
from stspolicy.dns.findings import (
    ERROR,
    OK,
    WARNING,
    Expected,
    MxHost,
    check_mx_host,
    check_mx_set,
    check_policy_host,
    check_sts_record,
    check_tlsrpt_record,
    status,
)
from tests.lab.pki import TestCA, new_key

NOW = datetime.now(UTC)
EXPECTED = Expected(domain="example.com", policy_id="2026112800000000", mode="enforce",
                    mx_patterns=("mx1.example.com", "*.mx.example.net"),
                    rua=("mailto:tlsrpt@provider.example",), policy_host_cname="sts.provider.example")


def txt(name, *records, state="secure", rcode="NOERROR", cnames=()):
    return Answer(name, "TXT", state, rcode, tuple(records), tuple(cnames))


def levels(findings):
    return [(f.level, f.code) for f in findings]


def test_current_id_is_ok_and_a_stale_one_says_what_to_publish():
    assert levels(check_sts_record(txt("_mta-sts.example.com", "v=STSv1; id=2026112800000000"), EXPECTED)) == [
        (OK, "sts-id-current")]
    [finding] = check_sts_record(txt("_mta-sts.example.com", "v=STSv1; id=2025"), EXPECTED)
    assert finding.level == ERROR
    assert finding.message == "DNS still says id 2025: publish id 2026112800000000"


@pytest.mark.parametrize(("records", "reason"), [
    ((), "no TXT record begins with 'v=STSv1;'"),
    (("v=STSv1; id=a", "v=STSv1; id=b"), "2 TXT records begin with"),
    (("v=STSv1 ; id=2026112800000000",), "no TXT record begins with"),  # erratum 6285: prefix filter
    (("v=STSv1; id=2016-08-31",), "invalid id"),
])
def test_records_senders_would_ignore_are_errors(records, reason):
    [finding] = check_sts_record(txt("_mta-sts.example.com", *records), EXPECTED)
    assert finding.level == ERROR and reason in finding.message
    assert "publish 'v=STSv1; id=2026112800000000'" in finding.message


def test_an_unreadable_record_is_an_error_naming_the_dnssec_state():
    [finding] = check_sts_record(txt("_mta-sts.example.com", state="bogus", rcode="SERVFAIL"), EXPECTED)
    assert finding.code == "sts-record-unreadable" and "bogus" in finding.message


def test_delegated_domain_must_point_its_record_at_our_zone():
    expected = Expected(**{**EXPECTED.__dict__, "sts_target": "_mta-sts.example.com.sts.provider.example"})
    good = txt("_mta-sts.example.com", "v=STSv1; id=2026112800000000",
               cnames=["_mta-sts.example.com.sts.provider.example"])
    assert levels(check_sts_record(good, expected)) == [(OK, "sts-id-current")]
    direct = txt("_mta-sts.example.com", "v=STSv1; id=2026112800000000")
    assert (ERROR, "delegation-missing") in levels(check_sts_record(direct, expected))


def test_tlsrpt_record_lists_destinations_and_says_whether_they_reach_us():
    ours = check_tlsrpt_record(txt("_smtp._tls.example.com", "v=TLSRPTv1; rua=mailto:tlsrpt@provider.example"),
                               EXPECTED)
    assert levels(ours) == [(OK, "tlsrpt-ok")]
    theirs = check_tlsrpt_record(txt("_smtp._tls.example.com", "v=TLSRPTv1; rua=mailto:a@elsewhere.example,"
                                     "http://x.example/"), EXPECTED)
    assert levels(theirs) == [(WARNING, "tlsrpt-rua-unusable"), (WARNING, "tlsrpt-not-here")]
    assert "mailto:a@elsewhere.example" in theirs[1].message


def test_policy_host_must_lead_to_the_configured_name():
    good = Answer("mta-sts.example.com", "A", "secure", "NOERROR", ("192.0.2.1",), ("sts.provider.example",))
    assert levels(check_policy_host(good, EXPECTED)) == [(OK, "policy-host-ok")]
    other = Answer("mta-sts.example.com", "A", "secure", "NOERROR", ("192.0.2.9",), ("web.example.com",))
    [finding] = check_policy_host(other, EXPECTED)
    assert finding.message == "mta-sts.example.com points to web.example.com, not to sts.provider.example"
    missing = Answer("mta-sts.example.com", "A", "secure", "NXDOMAIN")
    assert levels(check_policy_host(missing, EXPECTED)) == [(ERROR, "policy-host-missing")]


def test_mx_not_in_policy_and_unused_patterns_are_reported():
    mx = Answer("example.com", "MX", "secure", "NOERROR", ("10 mx1.example.com.", "20 backup.example.org."))
    findings = check_mx_set(mx, EXPECTED)
    assert levels(findings) == [(ERROR, "mx-not-in-policy"), (WARNING, "pattern-unused")]
    assert findings[0].subject == "backup.example.org" and findings[1].subject == "*.mx.example.net"
    testing = Expected(**{**EXPECTED.__dict__, "mode": "none"})
    assert check_mx_set(mx, testing)[0].level == WARNING


def secure_mx(test_ca, records, *, leaf=None, days=60, mx_state="secure", tlsa_state="secure"):
    leaf = leaf or test_ca.issue("mx1.example.com", not_after=NOW + timedelta(days=days))[0]
    host = MxHost("mx1.example.com", 10,
                  tlsa=Answer("_25._tcp.mx1.example.com", "TLSA", tlsa_state, "NOERROR", tuple(records)),
                  chain=test_ca.chain(leaf), facts=certificate_facts(leaf, "mx1.example.com", NOW), checked_at=NOW)
    mx_answer = Answer("example.com", "MX", mx_state, "NOERROR", ("10 mx1.example.com.",))
    return host, mx_answer, leaf


def test_tlsa_that_matches_the_served_certificate_is_ok(test_ca):
    leaf, _ = test_ca.issue("mx1.example.com")
    host, mx_answer, _ = secure_mx(test_ca, [str(tlsa_record(leaf, 3))], leaf=leaf)
    assert (OK, "tlsa-match") in levels(check_mx_host(host, mx_answer, EXPECTED))
    assert status(check_mx_host(host, mx_answer, EXPECTED)) == "ok"


def test_tlsa_left_behind_after_a_key_change_is_an_error(test_ca):
    stale = key_record(new_key().public_key())
    host, mx_answer, _ = secure_mx(test_ca, [str(stale)])
    finding = next(f for f in check_mx_host(host, mx_answer, EXPECTED) if f.code == "tlsa-mismatch")
    assert finding.level == ERROR and "tlsa-invalid" in finding.message


def test_pkix_only_tlsa_is_unusable_and_dane_cannot_authenticate(test_ca):
    leaf, _ = test_ca.issue("mx1.example.com")
    host, mx_answer, _ = secure_mx(test_ca, [str(tlsa_record(leaf, 1))], leaf=leaf)
    assert levels(check_mx_host(host, mx_answer, EXPECTED))[:2] == [
        (WARNING, "tlsa-unusable"), (ERROR, "tlsa-all-unusable")]


def test_tlsa_mismatch_is_an_error_only_when_dane_senders_use_the_records(test_ca):
    stale = key_record(new_key().public_key())
    for state in ("insecure", "secure"):
        host, mx_answer, _ = secure_mx(test_ca, [str(stale)], tlsa_state=state)
        mismatch = next(f for f in check_mx_host(host, mx_answer, EXPECTED) if f.code == "tlsa-mismatch")
        assert mismatch.level == (ERROR if state == "secure" else WARNING)
    host, mx_answer, _ = secure_mx(test_ca, [str(stale)], mx_state="insecure")
    assert (WARNING, "tlsa-mismatch") in levels(check_mx_host(host, mx_answer, EXPECTED))


def a_records(name, *cnames, state="secure"):
    return Answer(name, "A", state, "NOERROR", ("192.0.2.25",), tuple(cnames))


def expanded_tlsa(records):
    """TLSA found at the secure CNAME expansion of mx1.example.com: the TLSA base domain is that name."""
    return Answer("_25._tcp.smtp.hosting.example", "TLSA", "secure", "NOERROR", tuple(records))


def test_dane_ta_accepts_the_mx_name_or_the_tlsa_base_domain(test_ca):
    """RFC 7672 section 3.2.2: the reference identifiers are the MX host and the TLSA base domain."""
    issuer = str(tlsa_record(test_ca.intermediate.certificate, 2))
    for names in (("mx1.example.com",), ("*.example.com",), ("smtp.hosting.example",)):
        leaf, _ = test_ca.issue(*names)
        host, mx_answer, _ = secure_mx(test_ca, [issuer], leaf=leaf)
        host.addresses = a_records("mx1.example.com", "smtp.hosting.example")
        host.tlsa = expanded_tlsa([issuer])
        codes = levels(check_mx_host(host, mx_answer, EXPECTED))
        assert (OK, "tlsa-match") in codes and "dane-ta-name" not in {code for _, code in codes}


def test_dane_ta_certificate_naming_neither_the_mx_host_nor_the_base_domain_is_an_error(test_ca):
    issuer = str(tlsa_record(test_ca.intermediate.certificate, 2))
    leaf, _ = test_ca.issue("smtp.hosting.example")
    host, mx_answer, _ = secure_mx(test_ca, [issuer], leaf=leaf)
    host.addresses = a_records("mx1.example.com", "smtp.hosting.example", state="insecure")  # TLSA at the MX name
    [finding] = [f for f in check_mx_host(host, mx_answer, EXPECTED) if f.code == "dane-ta-name"]
    assert finding.level == ERROR and "names none of mx1.example.com:" in finding.message
    assert "tlsa-match" not in {f.code for f in check_mx_host(host, mx_answer, EXPECTED)}
    leaf, _ = test_ca.issue("mail.example.org")
    host, mx_answer, _ = secure_mx(test_ca, [issuer], leaf=leaf)
    host.addresses = a_records("mx1.example.com", "smtp.hosting.example")
    host.tlsa = expanded_tlsa([issuer])
    [finding] = [f for f in check_mx_host(host, mx_answer, EXPECTED) if f.code == "dane-ta-name"]
    assert "names none of mx1.example.com, smtp.hosting.example:" in finding.message


def test_dane_ta_matching_a_certificate_appended_to_a_chain_from_another_ca_is_a_mismatch(test_ca):
    other = TestCA("Other")
    host, mx_answer, _ = secure_mx(test_ca, [str(tlsa_record(other.intermediate.certificate, 2))])
    host.chain = [*host.chain, other.intermediate.certificate]
    found = check_mx_host(host, mx_answer, EXPECTED)
    assert (OK, "tlsa-match") not in levels(found)
    [mismatch] = [f for f in found if f.code == "tlsa-mismatch"]
    assert mismatch.level == ERROR and "but the chain does not verify up to it" in mismatch.message


def test_a_stale_dane_ta_record_beside_a_matching_3_1_1_is_found(test_ca):
    """ROLL-03: the issuer changed (a CA's intermediate rotation) while 3 1 1 keeps DANE working."""
    leaf, _ = test_ca.issue("mx1.example.com")
    stale = tlsa_record(TestCA("Retired").intermediate.certificate, 2)
    host, mx_answer, _ = secure_mx(test_ca, [str(tlsa_record(leaf, 3)), str(stale)], leaf=leaf)
    found = check_mx_host(host, mx_answer, EXPECTED)
    assert (OK, "tlsa-match") in levels(found)
    [finding] = [f for f in found if f.code == "tlsa-issuer-stale"]
    assert finding.level == WARNING and str(stale) in finding.message


def test_tlsa_in_an_unsigned_zone_or_under_an_unsigned_mx_rrset_is_unused(test_ca):
    leaf, _ = test_ca.issue("mx1.example.com")
    host, mx_answer, _ = secure_mx(test_ca, [str(tlsa_record(leaf, 3))], leaf=leaf, tlsa_state="insecure")
    assert (WARNING, "tlsa-insecure") in levels(check_mx_host(host, mx_answer, EXPECTED))
    host, mx_answer, _ = secure_mx(test_ca, [str(tlsa_record(leaf, 3))], leaf=leaf, mx_state="insecure")
    assert (WARNING, "mx-insecure") in levels(check_mx_host(host, mx_answer, EXPECTED))


def test_bogus_tlsa_means_dane_senders_will_not_deliver(test_ca):
    host, mx_answer, _ = secure_mx(test_ca, [], tlsa_state="bogus")
    host.tlsa = Answer("_25._tcp.mx1.example.com", "TLSA", "bogus", "SERVFAIL")
    [finding, *_] = check_mx_host(host, mx_answer, EXPECTED)
    assert finding.code == "dnssec-invalid" and finding.level == ERROR


def test_expiring_certificate_with_a_single_3_1_1_warns_before_the_renewal_breaks_dane(test_ca):
    leaf, _ = test_ca.issue("mx1.example.com", not_after=NOW + timedelta(days=10))
    host, mx_answer, _ = secure_mx(test_ca, [str(tlsa_record(leaf, 3))], leaf=leaf)
    codes = levels(check_mx_host(host, mx_answer, EXPECTED))
    assert (WARNING, "tlsa-no-next-key") in codes and (WARNING, "certificate-expiring") in codes
    next_record = key_record(new_key().public_key())
    host, mx_answer, _ = secure_mx(test_ca, [str(tlsa_record(leaf, 3)), str(next_record)], leaf=leaf)
    assert (WARNING, "tlsa-no-next-key") not in levels(check_mx_host(host, mx_answer, EXPECTED))


def test_certificate_problems_are_named_as_tls_rpt_names_them(test_ca):
    expired, _ = test_ca.issue("mx1.example.com", not_before=NOW - timedelta(days=30),
                               not_after=NOW - timedelta(days=1))
    host = MxHost("mx1.example.com", 10, chain=[expired], facts=certificate_facts(expired, "mx1.example.com", NOW),
                  checked_at=NOW)
    assert levels(check_mx_host(host, None, EXPECTED)) == [(ERROR, "certificate-expired")]
    other, _ = test_ca.issue("mail.example.org")
    host = MxHost("mx1.example.com", 10, chain=[other], facts=certificate_facts(other, "mx1.example.com", NOW),
                  webpki_error="leaf certificate has no matching subjectAltName", checked_at=NOW)
    [finding] = check_mx_host(host, None, EXPECTED)
    assert finding.code == "certificate-host-mismatch"
    assert finding.message == "mx1.example.com: the certificate names mail.example.org, not mx1.example.com"


def test_a_refused_probe_is_a_warning_and_a_failed_one_an_error():
    refused = MxHost("mx1.example.com", 10, probe_error="not probed: 10.0.0.1 is not a public address")
    assert levels(check_mx_host(refused, None, EXPECTED)) == [(WARNING, "starttls-failed")]
    failed = MxHost("mx1.example.com", 10, probe_error="STARTTLS not offered")
    assert levels(check_mx_host(failed, None, EXPECTED)) == [(ERROR, "starttls-failed")]
