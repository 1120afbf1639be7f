"""`flask tlsa publish`: "current + next" TLSA records written by RFC 2136 to Knot, read back, pruned."""

import time

from stspolicy.dns.dane import tlsa_record
from stspolicy.dns.models import TlsaPublication
from tests.lab.dns import INSECURE, SECURE
from tests.lab.fixtures import host_domain
from tests.lab.pki import pem


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def authoritative_tlsa(dns_lab, host):
    answer = dns_lab.dig(f"_25._tcp.{host}", "TLSA", "+short", "+norec", server=dns_lab.authoritative)
    return sorted(" ".join(line.split()[:3] + ["".join(line.split()[3:]).lower()]) for line in answer.splitlines())


def rfc2136_zone(in_lab, session, dns_lab, name):
    host_domain(session, dns_lab, name, SECURE, mx={f"mx-{name}": "127.0.0.25"})
    result = in_lab("dns", "mode", name, "rfc2136", "--server", "127.0.0.10", "--zone", SECURE,
                    "--key", "stspolicy-test")
    assert result.exit_code == 0, result.output


def test_current_and_next_are_written_read_back_secure_and_the_old_one_pruned_after_twice_the_ttl(
        in_lab, session, dns_lab, test_ca, tmp_path):
    rfc2136_zone(in_lab, session, dns_lab, f"tp.{SECURE}")
    host = f"mx-tp.{SECURE}"
    current, upcoming = test_ca.issue(host)[0], test_ca.issue(host)[0]
    cert, next_cert = write(tmp_path, "c.pem", pem(current)), write(tmp_path, "n.pem", pem(upcoming))
    first = in_lab("tlsa", "publish", "--mx", host, "--cert", cert, "--ttl", "1")
    assert first.exit_code == 0, first.output
    assert f"_25._tcp.{host}: written to 127.0.0.10 (+{tlsa_record(current, 3)})" in first.output
    assert "answers _25._tcp.mx-tp.example.test DNSSEC-secure with all 1 records" in first.output
    both = in_lab("tlsa", "publish", "--mx", host, "--cert", cert, "--next-cert", next_cert)
    assert both.exit_code == 0, both.output
    assert authoritative_tlsa(dns_lab, host) == sorted([str(tlsa_record(current, 3)), str(tlsa_record(upcoming, 3))])
    assert f"_25._tcp.{host}. 1 IN TLSA {tlsa_record(upcoming, 3)}" in both.output

    swapped = in_lab("tlsa", "publish", "--mx", host, "--cert", next_cert, "--prune")  # the old one presented just now
    assert "(no change)" in swapped.output and len(authoritative_tlsa(dns_lab, host)) == 2
    time.sleep(2.1)
    pruned = in_lab("tlsa", "publish", "--mx", host, "--cert", next_cert, "--prune")
    assert f"(-{tlsa_record(current, 3)})" in pruned.output
    assert authoritative_tlsa(dns_lab, host) == [str(tlsa_record(upcoming, 3))]
    rows = {row.record: row for row in session.query(TlsaPublication).filter_by(host=host)}
    assert rows[str(tlsa_record(current, 3))].removed_at is not None
    assert rows[str(tlsa_record(upcoming, 3))].secure_at is not None


def test_without_update_rights_the_exact_records_are_printed_and_looked_for(in_lab, dns_lab, test_ca, tmp_path):
    host = f"mx-byhand.{INSECURE}"
    leaf = test_ca.issue(host)[0]
    args = ("tlsa", "publish", "--mx", host, "--cert", write(tmp_path, "c.pem", pem(*test_ca.chain(leaf))),
            "--pin", "both", "--ttl", "600")
    missing = in_lab(*args)
    assert missing.exit_code == 1
    assert f"no zone this service may update holds _25._tcp.{host}: publish exactly these records:" in missing.output
    assert f"    _25._tcp.{host}. 600 IN TLSA {tlsa_record(test_ca.intermediate.certificate, 2)}" in missing.output
    dns_lab.set_records(INSECURE, f"_25._tcp.{host}.", "TLSA",
                        [str(tlsa_record(leaf, 3)), str(tlsa_record(test_ca.intermediate.certificate, 2))])
    found = in_lab(*args)
    assert found.exit_code == 0, found.output
    assert "insecure: the zone is not DNSSEC-signed" in found.output


def test_a_dns_check_that_sees_the_record_presented_keeps_it_from_being_pruned(
        in_lab, session, dns_lab, mail_servers, tmp_path):
    """Presented means presented: what the probe of a check matched counts, not only what `publish` was told."""
    name, host = f"seen.{SECURE}", f"mx-seen.{SECURE}"
    rfc2136_zone(in_lab, session, dns_lab, name)
    dns_lab.set_records(SECURE, f"{host}.", "A", [mail_servers.good.address], flush=False)
    dns_lab.set_records(SECURE, f"{name}.", "MX", [f"10 {host}."])
    served = write(tmp_path, "served.pem", pem(*mail_servers.good.chain))
    assert in_lab("tlsa", "publish", "--mx", host, "--cert", served, "--ttl", "1").exit_code == 0
    row = session.query(TlsaPublication).filter_by(host=host).one()
    before = row.last_presented_at
    time.sleep(0.1)
    in_lab("dns", "check", name)
    session.refresh(row)
    assert row.last_presented_at > before
