"""`flask tlsa generate` and `flask tlsa rollover`: the records to publish for a certificate, and when."""

from datetime import timedelta

from stspolicy.dns.dane import key_record, tlsa_name, tlsa_record
from stspolicy.dns.models import DnsObservation, MxObservation
from stspolicy.extensions import utcnow
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from tests.lab.dns import SECURE
from tests.lab.pki import TestCA, key_pem, new_key, pem


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def test_generate_gives_3_1_1_and_2_1_1_as_zone_lines(cli, test_ca, tmp_path):
    leaf, key = test_ca.issue("mx.example.net")
    cert = write(tmp_path, "cert.pem", pem(leaf))
    chain = write(tmp_path, "chain.pem", pem(test_ca.intermediate.certificate))
    result = cli("tlsa", "generate", "--cert", cert, "--chain", chain, "--mx", "mx.example.net")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].startswith(f"_25._tcp.mx.example.net. IN TLSA {tlsa_record(leaf, 3)}  ; DANE-EE")
    assert lines[1].startswith(f"_25._tcp.mx.example.net. IN TLSA {tlsa_record(test_ca.intermediate.certificate, 2)}")


def test_generate_names_an_idn_mx_host_by_its_a_labels_as_hash_slinger_does(cli, test_ca, tmp_path):
    """RFC 6698 section 3: the owner is `_25._tcp.` + the host in A-label form (TLSA-09)."""
    leaf, _ = test_ca.issue("mx.xn--bcher-kva.example")
    result = cli("tlsa", "generate", "--cert", write(tmp_path, "cert.pem", pem(leaf)), "--mx", "MX.Bücher.example.")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"_25._tcp.mx.xn--bcher-kva.example. IN TLSA {tlsa_record(leaf, 3)}")
    refused = cli("tlsa", "generate", "--cert", write(tmp_path, "c.pem", pem(leaf)), "--mx", "mx..example")
    assert refused.exit_code == 2 and "Invalid value for '--mx'" in refused.output


def test_generate_reads_the_chain_from_a_fullchain_file_and_lists_a_next_key(cli, test_ca, tmp_path):
    leaf, key = test_ca.issue("mx.example.net")
    fullchain = write(tmp_path, "fullchain.pem", pem(*test_ca.chain(leaf)))
    next_key = new_key()
    own = write(tmp_path, "own.key", key_pem(key))
    nxt = write(tmp_path, "next.key", key_pem(next_key))
    records = [line.split("  ;")[0] for line in cli("tlsa", "generate", "--cert", fullchain, "--key", nxt).output
               .splitlines()]
    assert records == [str(tlsa_record(leaf, 3)), str(tlsa_record(test_ca.intermediate.certificate, 2)),
                       str(key_record(next_key.public_key()))]
    assert "the certificate's own key" in cli("tlsa", "generate", "--cert", fullchain, "--key", own).output


def test_generate_refuses_files_that_are_not_pem(cli, tmp_path):
    result = cli("tlsa", "generate", "--cert", write(tmp_path, "x.pem", b"not a certificate"))
    assert result.exit_code == 2 and "holds no PEM certificate" in result.output
    big = write(tmp_path, "big.pem", b"A" * ((1 << 20) + 1))
    result = cli("tlsa", "generate", "--cert", big)
    assert result.exit_code == 2 and "larger than" in result.output


def test_rollover_with_the_same_key_needs_no_change(cli, test_ca, tmp_path):
    key = new_key()
    current = write(tmp_path, "current.pem", pem(test_ca.issue("mx.example.net", key=key)[0]))
    renewed = write(tmp_path, "renewed.pem", pem(test_ca.issue("mx.example.net", key=key)[0]))
    result = cli("tlsa", "rollover", "--cert", current, "--next-cert", renewed)
    assert result.exit_code == 0 and "no DNS change needed" in result.output


def test_rollover_without_dns_says_to_publish_both_and_wait(cli, test_ca, tmp_path):
    leaf, _ = test_ca.issue("mx.example.net")
    next_key = new_key()
    result = cli("tlsa", "rollover", "--cert", write(tmp_path, "c.pem", pem(leaf)),
                 "--next-key", write(tmp_path, "n.key", key_pem(next_key)), "--ttl", "600")
    assert result.exit_code == 1
    assert f"    {tlsa_record(leaf, 3)}\n    {key_record(next_key.public_key())}\n" in result.output
    assert result.output.endswith("not yet\n")


def test_an_issuer_rollover_publishes_the_next_intermediate_beside_the_current_one(cli, test_ca, tmp_path):
    """ROLL-03: when the CA rotates its intermediate, 2 1 1 of the next one goes into DNS before the chain changes."""
    leaf, _ = test_ca.issue("mx.example.net")
    upcoming = TestCA("Next").intermediate.certificate
    fullchain = write(tmp_path, "fullchain.pem", pem(*test_ca.chain(leaf)))
    result = cli("tlsa", "rollover", "--cert", fullchain, "--next-issuer", write(tmp_path, "next.pem", pem(upcoming)),
                 "--ttl", "600", "--published", "2026-11-01")
    assert result.exit_code == 0, result.output
    current = tlsa_record(test_ca.intermediate.certificate, 2)
    assert f"publish now (current + next):\n    {current}\n    {tlsa_record(upcoming, 2)}\n" in result.output
    assert "deploy a chain from the next issuer not before 2026-11-01 00:20 UTC" in result.output
    same = cli("tlsa", "rollover", "--cert", fullchain,
               "--next-issuer", write(tmp_path, "same.pem", pem(test_ca.intermediate.certificate)))
    assert same.exit_code == 0 and "2 1 1 stays the same, no DNS change needed" in same.output
    alone = cli("tlsa", "rollover", "--cert", write(tmp_path, "leaf.pem", pem(leaf)),
                "--next-issuer", write(tmp_path, "n.pem", pem(upcoming)))
    assert alone.exit_code == 2 and "--next-issuer needs the chain served now in --cert" in alone.output


def test_rollover_prints_the_removal_day_from_the_given_publication_deployment_and_ttl(cli, test_ca, tmp_path):
    leaf, _ = test_ca.issue("mx.example.net")
    args = ("tlsa", "rollover", "--cert", write(tmp_path, "c.pem", pem(leaf)),
            "--next-key", write(tmp_path, "n.key", key_pem(new_key())), "--ttl", "86400", "--published", "2026-11-01")
    result = cli(*args, "--deployed", "2026-11-02 06:00")
    assert "the next record was published 2026-11-01 00:00 UTC (given); TLSA TTL 86400 s" in result.output
    assert "deploy the next certificate not before 2026-11-03 00:00 UTC" in result.output
    assert (f"remove {tlsa_record(leaf, 3)} not before 2026-11-03 00:00 UTC "
            "(the later of the deployment and publication + twice the TTL)") in result.output
    later = cli(*args, "--deployed", "2026-11-05 06:00")
    assert f"remove {tlsa_record(leaf, 3)} not before 2026-11-05 06:00 UTC" in later.output
    undeployed = cli(*args)
    assert (f"remove {tlsa_record(leaf, 3)} once the next certificate is in service, not before "
            "2026-11-03 00:00 UTC (give --deployed for the date)") in undeployed.output


def test_rollover_counts_twice_the_ttl_from_when_checks_first_saw_the_next_record(
        in_lab, session, dns_lab, test_ca, tmp_path):
    host = f"mx-roll.{SECURE}"
    leaf, _ = test_ca.issue(host)
    next_key = new_key()
    current, upcoming = str(tlsa_record(leaf, 3)), str(key_record(next_key.public_key()))
    dns_lab.set_records(SECURE, f"{tlsa_name(host)}.", "TLSA", [current, upcoming], ttl=600)
    args = ("tlsa", "rollover", "--cert", write(tmp_path, "c.pem", pem(leaf)),
            "--next-key", write(tmp_path, "n.key", key_pem(next_key)), "--mx", host, "--ttl")

    assert in_lab(*args, "600").output.endswith("not yet\n")  # never seen by a check: counts from now

    domain = add_domain(session, f"roll.{SECURE}", make_policy("testing", [host], 86400), actor="test").domain
    for minutes_ago, records in ((60, [current]), (30, [current, upcoming]), (5, [current, upcoming])):
        session.add(DnsObservation(
            domain=domain, kind="check", status="ok", policy_id="1", findings=[],
            observed_at=utcnow() - timedelta(minutes=minutes_ago),
            mx_hosts=[MxObservation(host=host, preference=10, tlsa_name=tlsa_name(host), tlsa_state="secure",
                                    tlsa_records=records, starttls=True)]))
    session.commit()
    result = in_lab(*args, "600")
    assert result.exit_code == 0, result.output  # seen for 30 minutes > 2 x 600 s
    assert result.output.endswith("ready: the next certificate may be deployed now\n")
    assert in_lab(*args, "1200").exit_code == 1  # 30 minutes < 2 x 1200 s


def test_rollover_warns_when_dns_lacks_the_next_record(in_lab, dns_lab, test_ca, tmp_path):
    host = f"mx-lacking.{SECURE}"
    leaf, _ = test_ca.issue(host)
    dns_lab.set_records(SECURE, f"{tlsa_name(host)}.", "TLSA", [str(tlsa_record(leaf, 3))])
    result = in_lab("tlsa", "rollover", "--cert", write(tmp_path, "c.pem", pem(leaf)),
                    "--next-key", write(tmp_path, "n.key", key_pem(new_key())), "--mx", host)
    assert result.exit_code == 1
    assert "is not in DNS yet: publish it before the change" in result.output


def test_stage_refuses_a_key_that_is_not_the_certificates(cli, test_ca, tmp_path):
    leaf, key = test_ca.issue("mx.example.net")
    result = cli("tlsa", "stage", "--mx", "mx.example.net", "--cert", write(tmp_path, "new.pem", pem(leaf)),
                 "--key", write(tmp_path, "other.key", key_pem(new_key())),
                 "--installed", write(tmp_path, "old.pem", pem(leaf)), "--staging-dir", str(tmp_path / "staging"))
    assert result.exit_code == 1 and "other.key is not the key of the certificate in" in result.output
    assert not (tmp_path / "staging").exists()
