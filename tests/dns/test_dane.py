"""TLSA records: computed as RFC 6698 says and as independent tools compute them; parsed, matched, rolled over."""

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from stspolicy.dns.dane import (
    TlsaError,
    TlsaRecord,
    certificate_facts,
    dane_check,
    key_record,
    parse_tlsa,
    plan_rollover,
    recommended_records,
    stale_issuer_records,
    tlsa_name,
    tlsa_record,
    unusable_reason,
    webpki_error,
)
from tests.lab.pki import TestCA, new_key, pem

DATA = Path(__file__).resolve().parent.parent / "data"
VECTOR = x509.load_pem_x509_certificate((DATA / "mx1.example.net.pem").read_bytes())
NOW = datetime(2027, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("usage", "selector", "matching_type", "expected"), [
    (3, 1, 1, "e16796e45b529776e306cbc014adb8a28e66a0f5025819b8d944303295d64d0a"),
    (3, 0, 1, "5507f79b0808d8356ea4aa77885514b55c5bede04754c4eccf0d50699e35640e"),
    (3, 1, 2, "4b3ff3f15d08970709ee1a08659b5d39a83e79090884bf2df3a0989713318b9b"
              "7d598fedb4e1721e3c3a077d035e0aa4edf217cd54e734e05f319c5f0f508ab3"),
])
def test_records_of_a_known_certificate_match_values_computed_with_openssl(usage, selector, matching_type, expected):
    assert str(tlsa_record(VECTOR, usage, selector, matching_type)) == f"{usage} {selector} {matching_type} {expected}"


def test_full_matching_type_is_the_der_itself():
    from cryptography.hazmat.primitives.serialization import Encoding

    assert tlsa_record(VECTOR, 3, 0, 0).data == VECTOR.public_bytes(Encoding.DER)


def test_recommended_records_are_3_1_1_for_the_key_and_2_1_1_for_the_issuer(test_ca):
    leaf, _ = test_ca.issue("mx.example.net")
    records = recommended_records(leaf, test_ca.intermediate.certificate)
    assert [(r.usage, r.selector, r.matching_type) for r in records] == [(3, 1, 1), (2, 1, 1)]
    assert records[1].data == tlsa_record(test_ca.intermediate.certificate, 2).data


@pytest.mark.slow  # hash-slinger's `tlsa`, in a process of its own for each case
@pytest.mark.skipif(shutil.which("tlsa") is None, reason="needs the Debian package hash-slinger")
@pytest.mark.parametrize(("usage", "selector", "matching_type", "issuer"), [
    (3, 1, 1, False), (3, 0, 1, False), (3, 1, 2, False), (3, 1, 0, False), (2, 1, 1, True),
])
def test_our_records_equal_hash_slingers(tmp_path, test_ca, usage, selector, matching_type, issuer):
    leaf, _ = test_ca.issue("mx.example.net")
    certificate = test_ca.intermediate.certificate if issuer else leaf
    (tmp_path / "cert.pem").write_bytes(pem(certificate))
    output = subprocess.run(
        ["tlsa", "--create", "--certificate", str(tmp_path / "cert.pem"), "--usage", str(usage),
         "--selector", str(selector), "--mtype", str(matching_type), "--output", "rfc", "--port", "25",
         "mx.example.net"], capture_output=True, text=True, check=True, timeout=60,
    ).stdout
    line = next(line for line in output.splitlines() if " TLSA " in line)
    owner, _, rdata = line.partition(" IN TLSA ")
    assert owner == tlsa_name("mx.example.net") + "."
    assert parse_tlsa(rdata) == tlsa_record(certificate, usage, selector, matching_type)


def test_tlsa_name_is_port_25_tcp_of_the_lower_case_host():
    assert tlsa_name("MX1.Example.NET.") == "_25._tcp.mx1.example.net"


@pytest.mark.parametrize("text", [
    "3 1 1 E16796E45B529776E306CBC014ADB8A28E66A0F5025819B8D944303295D64D0A",
    "3 1 1 e167 96e4 5b52 9776 e306 cbc0 14ad b8a2 8e66 a0f5 0258 19b8 d944 3032 95d6 4d0a",
    "  3   1 1\te16796e45b529776e306cbc014adb8a28e66a0f5025819b8d944303295d64d0a ",
])
def test_hex_compares_without_case_or_whitespace(text):
    assert parse_tlsa(text) == tlsa_record(VECTOR, 3)


@pytest.mark.parametrize(("text", "reason"), [
    ("3 1 1 e16", "even number of hex digits"),
    ("3 1 1 zz", "even number of hex digits"),
    ("3 1 1 " + "00" * 31, "SHA2-256 data is 32 bytes, not 31"),
    ("3 1 2 " + "00" * 32, "SHA2-512 data is 64 bytes, not 32"),
    ("3 1 1", "needs usage, selector, matching type and data"),
    ("3 x 1 00", "are numbers"),
    ("256 1 1 00", "0..255"),
])
def test_malformed_records_are_refused_with_the_reason(text, reason):
    with pytest.raises(TlsaError, match=reason):
        parse_tlsa(text)


@pytest.mark.parametrize(("record", "reason"), [
    (TlsaRecord(0, 1, 1, b"\0" * 32), "PKIX-TA"),
    (TlsaRecord(1, 1, 1, b"\0" * 32), "PKIX-EE"),
    (TlsaRecord(4, 1, 1, b"\0" * 32), "unknown usage 4"),
    (TlsaRecord(3, 2, 1, b"\0" * 32), "unknown selector 2"),
    (TlsaRecord(3, 1, 3, b"\0" * 32), "unknown matching type 3"),
    (TlsaRecord(3, 1, 1, b"\0" * 32), None),
    (TlsaRecord(2, 0, 2, b"\0" * 64), None),
])
def test_pkix_usages_and_unknown_parameters_are_unusable_for_smtp(record, reason):
    found = unusable_reason(record)
    assert (found is None) if reason is None else (reason in found)


def matching_record(records, chain, names=("mx.example.net",), now=None):
    return dane_check(records, chain, reference_identifiers=names, now=now or datetime.now(UTC)).record


def test_dane_ee_matches_the_leaf_and_dane_ta_the_issuer_only(test_ca):
    leaf, _ = test_ca.issue("mx.example.net")
    chain = test_ca.chain(leaf)
    ee, ta = recommended_records(leaf, chain[1])
    assert matching_record([ee], chain) == ee
    assert matching_record([ta], chain) == ta
    assert matching_record([TlsaRecord(2, 1, 1, ee.data)], chain) is None  # the leaf is no trust anchor
    assert matching_record([TlsaRecord(3, 1, 1, ta.data)], chain) is None
    assert matching_record([TlsaRecord(1, 1, 1, ee.data)], chain) is None  # unusable, even if it matches


def test_dane_ta_matching_a_certificate_merely_appended_to_the_chain_authenticates_nothing(test_ca):
    """RFC 7671 section 5.2: the chain must verify from the leaf up to the trust anchor the record names."""
    other = TestCA("Other")
    leaf, _ = test_ca.issue("mx.example.net")
    appended = [*test_ca.chain(leaf), other.intermediate.certificate]
    record = tlsa_record(other.intermediate.certificate, 2)
    check = dane_check([record], appended, reference_identifiers=("mx.example.net",), now=datetime.now(UTC))
    assert check.record is None and not check.misnamed
    assert check.failures[0].startswith(f"{record} matches CN=Other Intermediate CA, but the chain does not verify")


def test_dane_ta_2_0_0_authenticates_a_leaf_chaining_to_it_when_the_anchor_is_not_sent(test_ca):
    """RFC 7671 section 5.2: with `2 0 0` records the server need not send the trust anchor."""
    leaf, _ = test_ca.issue("mx.example.net")
    full = tlsa_record(test_ca.intermediate.certificate, 2, 0, 0)
    assert matching_record([full], [leaf]) == full
    assert matching_record([tlsa_record(test_ca.root.certificate, 2, 0, 0)], test_ca.chain(leaf)) is not None
    assert matching_record([tlsa_record(TestCA("Other").intermediate.certificate, 2, 0, 0)], [leaf]) is None
    assert matching_record([tlsa_record(test_ca.intermediate.certificate, 2)], [leaf]) is None  # 2 1 1: must be sent


def test_dane_ta_checks_names_against_the_reference_identifiers_and_dates(test_ca):
    leaf, _ = test_ca.issue("mx.example.net")
    chain, ta = test_ca.chain(leaf), tlsa_record(test_ca.intermediate.certificate, 2)
    assert matching_record([ta], chain, names=("mx.example.org", "mx.example.net")) == ta
    misnamed = dane_check([ta], chain, reference_identifiers=("mx.example.org",), now=datetime.now(UTC))
    assert misnamed.record is None and misnamed.misnamed
    assert matching_record([ta], chain, now=datetime.now(UTC) + timedelta(days=91)) is None  # the leaf expired


def test_dane_ee_ignores_names_and_dates_of_the_leaf(test_ca):
    """RFC 7672 section 3.1.1: a `3 1 1` still matches an expired or misnamed leaf."""
    expired, _ = test_ca.issue("mx.example.net", not_before=NOW - timedelta(days=90), not_after=NOW - timedelta(days=1))
    misnamed, _ = test_ca.issue("mail.elsewhere.example")
    for leaf in (expired, misnamed):
        record = tlsa_record(leaf, 3)
        assert matching_record([record], [leaf], now=NOW) == record


def test_dane_ta_records_are_checked_against_the_issuers_of_the_served_chain(test_ca):
    leaf, _ = test_ca.issue("mx.example.net")
    chain = test_ca.chain(leaf)
    current, rotated = tlsa_record(chain[1], 2), tlsa_record(TestCA("Next").intermediate.certificate, 2)
    assert stale_issuer_records([current, rotated, tlsa_record(leaf, 3)], chain) == [rotated]
    assert stale_issuer_records([tlsa_record(chain[1], 2, 0, 0)], [leaf]) == []  # 2 0 0: need not be sent


def test_certificate_facts_for_what_mta_sts_checks(test_ca):
    leaf, _ = test_ca.issue("mx.example.net", "*.mx.example.org",
                            not_before=NOW - timedelta(days=10), not_after=NOW + timedelta(days=20))
    facts = certificate_facts(leaf, "mx.example.net", NOW)
    assert facts.names == ("mx.example.net", "*.mx.example.org")
    assert facts.covers_host and not facts.expired and facts.days_left == 20
    assert facts.spki_sha256 == tlsa_record(leaf, 3).data.hex()
    assert certificate_facts(leaf, "a.mx.example.org", NOW).covers_host
    assert not certificate_facts(leaf, "a.b.mx.example.org", NOW).covers_host
    assert certificate_facts(leaf, "mx.example.net", NOW + timedelta(days=21)).expired


def test_webpki_validation_names_expiry_and_trust(test_ca):
    leaf, _ = test_ca.issue("mx.example.net", not_before=NOW - timedelta(days=1), not_after=NOW + timedelta(days=9))
    chain, roots = test_ca.chain(leaf), [test_ca.root.certificate]
    assert webpki_error(chain, "mx.example.net", roots, NOW) is None
    assert webpki_error(chain, "other.example.net", roots, NOW) is not None
    assert webpki_error(chain, "mx.example.net", roots, NOW + timedelta(days=10)) is not None
    assert webpki_error(chain, "mx.example.net", [TestCA("Other").root.certificate], NOW) is not None
    assert webpki_error(chain[:1], "mx.example.net", roots, NOW) is not None  # intermediate not sent


def test_renewal_that_keeps_the_key_needs_no_dns_change(test_ca):
    key = new_key()
    current, _ = test_ca.issue("mx.example.net", key=key)
    renewed, _ = test_ca.issue("mx.example.net", key=key)
    plan = plan_rollover(tlsa_record(current, 3), key_record(renewed.public_key()), ttl=3600, now=NOW)
    assert not plan.changes and plan.publish == (tlsa_record(current, 3),) and not plan.remove


def test_new_key_publishes_current_and_next_then_waits_twice_the_ttl(test_ca):
    current, _ = test_ca.issue("mx.example.net")
    next_key = new_key()
    plan = plan_rollover(tlsa_record(current, 3), key_record(next_key.public_key()), ttl=3600, now=NOW)
    assert plan.changes
    assert plan.publish == (tlsa_record(current, 3), key_record(next_key.public_key()))
    assert plan.deploy_not_before == NOW + timedelta(hours=2)
    assert plan.remove == (tlsa_record(current, 3),)


def test_rollover_counts_from_when_the_next_record_appeared_and_warns_when_it_is_missing(test_ca):
    leaf, _ = test_ca.issue("mx.example.net")
    current, next_key = published = [tlsa_record(leaf, 3), key_record(new_key().public_key())]
    since = NOW - timedelta(hours=5)
    ready = plan_rollover(current, next_key, ttl=3600, now=NOW, published=published, next_published_since=since)
    assert ready.deploy_not_before == since + timedelta(hours=2) and not ready.warnings
    missing = plan_rollover(current, next_key, ttl=3600, now=NOW, published=published[:1], next_published_since=since)
    assert missing.deploy_not_before == NOW + timedelta(hours=2)
    assert "is not in DNS yet" in missing.warnings[0]


def test_an_issuer_rollover_publishes_the_next_intermediates_2_1_1_before_the_chain_changes(test_ca):
    """ROLL-03: a CA's intermediate rotation under a 2 1 1 record is a rollover of that record."""
    current = tlsa_record(test_ca.intermediate.certificate, 2)
    upcoming = tlsa_record(TestCA("Next").intermediate.certificate, 2)
    plan = plan_rollover(current, upcoming, ttl=600, now=NOW)
    assert plan.publish == (current, upcoming) and plan.remove == (current,)
    assert plan.deploy_not_before == NOW + timedelta(minutes=20)


def test_the_current_record_goes_once_the_next_certificate_serves_and_caches_hold_the_next_record(test_ca):
    current, _ = test_ca.issue("mx.example.net")
    next_key = new_key().public_key()
    published_at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    now = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)

    def removal(deployed_at):
        return plan_rollover(tlsa_record(current, 3), key_record(next_key), ttl=3600, now=now,
                             next_published_since=published_at,
                             deployed_at=deployed_at).remove_not_before

    assert removal(None) is None  # not before the next certificate serves
    assert removal(datetime(2026, 12, 2, 8, 0, tzinfo=UTC)) == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    # Deployed too early: the record still stays until caches have the next one.
    assert removal(datetime(2026, 12, 1, 10, 0, tzinfo=UTC)) == datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
