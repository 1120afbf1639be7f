"""`flask dns check` end to end: Knot + unbound + Postfix in the lab, results stored as observations."""

import json

import pytest

from stspolicy.dns.check import check_results
from stspolicy.dns.dane import key_record, tlsa_record
from stspolicy.dns.models import DnsObservation
from stspolicy.dns.queries import latest_check
from stspolicy.policies.queries import get_domain
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from tests.dns.scripted_smtp import one_connection, starttls_by_sni
from tests.lab.dns import BOGUS, INSECURE, SECURE
from tests.lab.fixtures import host_domain
from tests.lab.pki import new_key
from tests.support.config import configure


@pytest.fixture
def check(in_lab):
    return lambda *args: in_lab("dns", "check", *args)


def findings(result):
    return [(f["level"], f["code"]) for summary in json.loads(result.output) for f in summary["findings"]]


def test_a_domain_published_as_we_say_checks_clean_and_is_stored(check, session, dns_lab, mail_servers, test_ca):
    leaf = mail_servers.good.chain[0]
    version = host_domain(session, dns_lab, f"clean.{SECURE}", SECURE, mx={f"mx-clean.{SECURE}": "127.0.0.25"},
                          tlsa={f"mx-clean.{SECURE}": [str(tlsa_record(leaf, 3)),
                                                       str(tlsa_record(test_ca.intermediate.certificate, 2))]})
    result = check(f"clean.{SECURE}")
    assert result.exit_code == 0, result.output
    assert f"clean.{SECURE}: ok (policy id {version.policy_id}" in result.output
    assert f"mx  10 mx-clean.{SECURE} [127.0.0.25] TLSv1." in result.output
    observation = session.query(DnsObservation).one()
    assert observation.status == "ok" and observation.policy_id == version.policy_id
    [mx] = observation.mx_hosts
    assert mx.tlsa_state == "secure" and mx.tlsa_match == str(tlsa_record(leaf, 3))
    assert mx.spki_sha256 == tlsa_record(leaf, 3).data.hex() and mx.covers_host and mx.webpki_error is None
    assert mx.chain_pem.count("BEGIN CERTIFICATE") == 2


def test_a_stale_id_exits_1_and_says_what_to_publish(check, session, dns_lab):
    version = host_domain(session, dns_lab, f"stale.{INSECURE}", INSECURE, mx={f"mx-stale.{INSECURE}": "127.0.0.25"},
                          policy_id="20250101")
    result = check(f"stale.{INSECURE}")
    assert result.exit_code == 1
    assert f"error   DNS still says id 20250101: publish id {version.policy_id}" in result.output
    results = check_results(latest_check(session, version.domain))  # what /metrics exports
    assert results["sts_record"] is False and results["mx_set"] is True


def test_a_tlsa_record_left_behind_after_a_key_change_is_found(check, session, dns_lab):
    stale = key_record(new_key().public_key())
    host_domain(session, dns_lab, f"rolled.{SECURE}", SECURE, mx={f"mx-rolled.{SECURE}": "127.0.0.25"},
                tlsa={f"mx-rolled.{SECURE}": [str(stale)]})
    result = check("--json", f"rolled.{SECURE}")
    assert result.exit_code == 1
    assert ("error", "tlsa-mismatch") in findings(result)
    assert json.loads(result.output)[0]["mx_hosts"][0]["tlsa_match"] is None


def test_expired_and_mismatched_mx_certificates_are_errors(check, session, dns_lab):
    host_domain(session, dns_lab, f"certs.{INSECURE}", INSECURE,
                mx={f"mx-expired.{INSECURE}": "127.0.0.26", f"mx-mismatch.{INSECURE}": "127.0.0.27",
                    f"mx-plain.{INSECURE}": "127.0.0.28"})
    result = check("--json", f"certs.{INSECURE}")
    assert result.exit_code == 1
    found = findings(result)
    for code in ("certificate-expired", "certificate-host-mismatch", "starttls-failed"):
        assert ("error", code) in found


def test_a_bogus_zone_is_reported_as_dnssec_failure(check, session, dns_lab):
    host_domain(session, dns_lab, f"broken.{BOGUS}", BOGUS, mx={f"mx-broken.{BOGUS}": "127.0.0.25"},
                tlsa={f"mx-broken.{BOGUS}": ["3 1 1 " + "00" * 32]})
    result = check("--json", f"broken.{BOGUS}")
    assert result.exit_code == 1
    assert {("error", "sts-record-unreadable"), ("error", "mx-unreadable")} <= set(findings(result))


def test_tlsa_is_looked_up_at_the_secure_cname_expansion_of_the_mx(check, session, dns_lab, mail_servers):
    leaf = mail_servers.good.chain[0]
    host_domain(session, dns_lab, f"alias.{SECURE}", SECURE, mx={f"mx-alias.{SECURE}": "127.0.0.25"})
    dns_lab.remove_records(SECURE, f"mx-alias.{SECURE}.", "A")
    dns_lab.set_records(SECURE, f"mx-alias.{SECURE}.", "CNAME", [f"mx-real.{SECURE}."], flush=False)
    dns_lab.set_records(SECURE, f"mx-real.{SECURE}.", "A", ["127.0.0.25"], flush=False)
    dns_lab.set_records(SECURE, f"_25._tcp.mx-real.{SECURE}.", "TLSA", [str(tlsa_record(leaf, 3))])
    result = check("--json", f"alias.{SECURE}")
    [mx] = json.loads(result.output)[0]["mx_hosts"]
    assert mx["tlsa_name"] == f"_25._tcp.mx-real.{SECURE}" and mx["tlsa_match"] == str(tlsa_record(leaf, 3))
    assert result.exit_code == 0, result.output


def test_the_probe_asks_for_the_certificate_of_the_tlsa_base_domain(check, session, dns_lab, lab_netns, test_ca,
                                                                     tmp_path):
    """RFC 7672 section 8.1: SNI is the TLSA base domain, here the MX host's secure CNAME expansion, so a server
    that chooses its certificate by SNI presents the one the TLSA records were published for."""
    mx, real = f"mx-sni.{SECURE}", f"mx-sni-real.{SECURE}"
    host_domain(session, dns_lab, f"sni.{SECURE}", SECURE, mx={mx: "127.0.0.95"})
    dns_lab.remove_records(SECURE, f"{mx}.", "A")
    dns_lab.set_records(SECURE, f"{mx}.", "CNAME", [f"{real}."], flush=False)
    dns_lab.set_records(SECURE, f"{real}.", "A", ["127.0.0.95"], flush=False)
    for_real, for_others = test_ca.issue(real), test_ca.issue(mx)
    dns_lab.set_records(SECURE, f"_25._tcp.{real}.", "TLSA", [str(tlsa_record(for_real[0], 3))])
    server_names = []
    serve = starttls_by_sni({real: test_ca.write_server(tmp_path, "real", *for_real)},
                            test_ca.write_server(tmp_path, "other", *for_others), server_names)
    with one_connection(lab_netns, "127.0.0.95", serve):
        result = check("--json", f"sni.{SECURE}")
    assert server_names == [real]
    assert ("ok", "tlsa-match") in findings(result)


def test_a_3_1_1_record_still_matches_an_expired_or_misnamed_certificate(check, session, dns_lab, mail_servers):
    """RFC 7672 section 3.1.1: DANE-EE ignores the leaf's names and dates, so DANE senders deliver; MTA-STS
    senders do not, and the check says both."""
    records = {f"mx-old.{SECURE}": [str(tlsa_record(mail_servers.expired.chain[0], 3))],
               f"mx-other.{SECURE}": [str(tlsa_record(mail_servers.mismatch.chain[0], 3))]}
    mx = {f"mx-old.{SECURE}": mail_servers.expired.address, f"mx-other.{SECURE}": mail_servers.mismatch.address}
    host_domain(session, dns_lab, f"ee.{SECURE}", SECURE, tlsa=records, mx=mx)
    summary = json.loads(check("--json", f"ee.{SECURE}").output)[0]
    found = [(f["level"], f["code"], f["subject"]) for f in summary["findings"]]
    for host in records:
        assert ("ok", "tlsa-match", f"_25._tcp.{host}") in found
    assert ("error", "certificate-expired", f"mx-old.{SECURE}") in found
    assert ("error", "certificate-host-mismatch", f"mx-other.{SECURE}") in found


def test_tlsa_records_behind_a_cname_to_a_shared_name_are_followed(check, session, dns_lab, mail_servers, test_ca):
    """RFC 7671 section 7: `_25._tcp.<mx>` may be a CNAME to one TLSA RRset that several MX hosts share."""
    shared = f"_dane.tlsa.{SECURE}"
    mx = {f"mx-a.{SECURE}": mail_servers.good.address, f"mx-b.{SECURE}": mail_servers.good.address}
    host_domain(session, dns_lab, f"shared.{SECURE}", SECURE, mx=mx)
    dns_lab.set_records(SECURE, f"{shared}.", "TLSA", [str(tlsa_record(test_ca.intermediate.certificate, 2))],
                        flush=False)
    for host in mx:
        dns_lab.set_records(SECURE, f"_25._tcp.{host}.", "CNAME", [f"{shared}."], flush=False)
    dns_lab.flush()
    result = check("--json", f"shared.{SECURE}")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)[0]
    assert [mx["tlsa_state"] for mx in summary["mx_hosts"]] == ["secure", "secure"]
    assert all(mx["tlsa_match"] == str(tlsa_record(test_ca.intermediate.certificate, 2)) for mx in summary["mx_hosts"])


def test_no_answer_from_the_resolver_exits_2(check, lab_app, session, dns_lab, monkeypatch):
    add_domain(session, f"unchecked.{SECURE}", make_policy("testing", [f"mx.{SECURE}"], 86400), actor="test")
    configure(monkeypatch, lab_app, DNS_RESOLVERS=["127.0.0.3"], DNS_TIMEOUT=0.2)
    result = check(f"unchecked.{SECURE}")
    assert result.exit_code == 2
    assert f"unchecked.{SECURE}: unchecked" in result.output


def test_history_lists_checks_newest_first(check, cli, session, dns_lab):
    host_domain(session, dns_lab, f"history.{INSECURE}", INSECURE, mx={f"mx-history.{INSECURE}": "127.0.0.25"},
                policy_id="1")
    assert check(f"history.{INSECURE}").exit_code == 1
    domain = get_domain(session, f"history.{INSECURE}")
    dns_lab.set_records(INSECURE, f"_mta-sts.history.{INSECURE}.", "TXT",
                        [f'"v=STSv1; id={domain.versions[-1].policy_id}"'])
    assert check(f"history.{INSECURE}").exit_code == 0
    lines = cli("dns", "history", f"history.{INSECURE}").output.splitlines()
    assert "check   ok" in lines[0]
    assert "check   problems" in lines[1] and "DNS still says id 1" in lines[1]
    assert cli("domain", "remove", "--force", f"history.{INSECURE}").exit_code == 0  # its history goes with it
    assert session.query(DnsObservation).count() == 0
