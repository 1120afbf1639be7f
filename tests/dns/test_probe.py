"""STARTTLS probes against Postfix on loopback in the lab: what a sender sees on port 25."""

import socket
from datetime import UTC, datetime

import pytest

from stspolicy.dns.dane import certificate_facts, webpki_error
from stspolicy.dns.probe import MAX_REPLY_BYTES, probe_starttls, refusal
from tests.dns.scripted_smtp import one_connection, starttls_by_sni

LOOPBACK = ["127.0.0.0/8"]


def probe(lab_netns, host, addresses, **options):
    options.setdefault("allowed_networks", LOOPBACK)
    with lab_netns.entered():
        return probe_starttls(host, addresses, timeout=5, ehlo_name="probe.example.test", **options)


def probe_one_connection(lab_netns, address: str, serve, **options):
    """Probe mx.example.test at `address`, where `serve(connection)` plays the SMTP server for one connection."""
    with one_connection(lab_netns, address, serve), lab_netns.entered():
        return probe_starttls("mx.example.test", [address], timeout=5, allowed_networks=LOOPBACK, **options)


def test_probe_shows_tls_version_and_the_whole_chain(lab_netns, mail_servers, test_ca):
    result = probe(lab_netns, "mx.example.test", [mail_servers.good.address])
    assert result.error is None and result.starttls
    assert result.tls_version in ("TLSv1.2", "TLSv1.3")
    assert list(result.chain) == list(mail_servers.good.chain)
    now = datetime.now(UTC)
    assert webpki_error(list(result.chain), "mx.example.test", [test_ca.root.certificate], now) is None
    facts = certificate_facts(result.chain[0], "mx.example.test", now)
    assert facts.covers_host and not facts.expired and 58 <= facts.days_left <= 60


def test_expired_and_mismatched_certificates_are_seen_as_such(lab_netns, mail_servers, test_ca):
    now = datetime.now(UTC)
    expired = probe(lab_netns, "mx.example.test", [mail_servers.expired.address])
    assert certificate_facts(expired.chain[0], "mx.example.test", now).expired
    mismatch = probe(lab_netns, "mx.example.test", [mail_servers.mismatch.address])
    assert not certificate_facts(mismatch.chain[0], "mx.example.test", now).covers_host
    assert webpki_error(list(mismatch.chain), "mx.example.test", [test_ca.root.certificate], now)


def test_a_server_without_starttls_is_reported(lab_netns, mail_servers):
    result = probe(lab_netns, "mx.example.test", [mail_servers.plaintext.address])
    assert result.error == "STARTTLS not offered" and not result.starttls and not result.chain


def test_the_next_address_is_tried_when_one_refuses_connections(lab_netns, mail_servers):
    result = probe(lab_netns, "mx.example.test", ["127.0.0.99", mail_servers.good.address])
    assert result.address == mail_servers.good.address and result.chain
    refused = probe(lab_netns, "mx.example.test", ["127.0.0.99"])
    assert refused.error.startswith("connect to 127.0.0.99 port 25")


def test_a_server_that_never_greets_times_out(lab_netns):
    with lab_netns.entered():
        silent = socket.create_server(("127.0.0.98", 25))
        try:
            result = probe_starttls("mx.example.test", ["127.0.0.98"], timeout=0.5, allowed_networks=LOOPBACK)
        finally:
            silent.close()
    assert result.error == "greeting: timed out"


def test_private_addresses_are_not_probed_unless_allowed(lab_netns, mail_servers):
    result = probe(lab_netns, "mx.example.test", [mail_servers.good.address], allowed_networks=[])
    assert result.error.startswith("not probed: 127.0.0.25 is not a public address") and not result.chain


@pytest.mark.parametrize(("address", "refused"), [
    ("127.0.0.1", True), ("10.1.2.3", True), ("192.168.1.1", True), ("169.254.1.1", True), ("::1", True),
    ("fe80::1", True), ("fc00::1", True), ("192.0.2.1", True), ("0.0.0.0", True), ("224.0.0.1", True),  # noqa: S104
    ("8.8.8.8", False), ("2a00:1450::1", False),
])
def test_only_public_addresses_are_probed_by_default(address, refused):
    assert (refusal(address, []) is not None) is refused


@pytest.mark.parametrize("address", [
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::127.0.0.1", "::10.0.0.1", "::ffff:0:127.0.0.1",
    "64:ff9b::7f00:1", "64:ff9b::a00:1", "64:ff9b::a9fe:a9fe", "64:ff9b:1::808:808", "64:ff9b:1:ff::7f00:1",
    "2002:7f00:1::", "2002:a00:1::1", "2002:c0a8:101::", "2001:0:4136:e378:8000:63bf:80ff:fffe",
])
def test_an_ipv6_address_carrying_a_private_ipv4_address_is_not_probed(address):
    assert refusal(address, []) is not None


def test_a_nat64_address_of_a_public_ipv4_address_is_probed():
    assert refusal("64:ff9b::808:808", []) is None


def test_an_allowed_network_opens_only_itself():
    assert refusal("10.1.2.3", ["10.0.0.0/8"]) is None
    assert refusal("192.168.1.1", ["10.0.0.0/8"]) is not None


def test_an_endless_reply_is_cut_off(lab_netns):
    """A hostile server cannot make the probe buffer without limit."""
    result = probe_one_connection(lab_netns, "127.0.0.97", lambda connection: connection.sendall(b"220-y\r\n" * 10000))
    assert result.error == f"greeting: reply longer than {MAX_REPLY_BYTES} bytes"


def test_the_probe_sends_the_name_it_is_given_as_sni_and_else_the_mx_host(lab_netns, test_ca, tmp_path):
    """RFC 7672 section 8.1: a DANE client sends the TLSA base domain as SNI; `dns check` gives the probe that
    name, the MX host's CNAME expansion when the TLSA records were found there."""
    leaf, key = test_ca.issue("mx.example.test")
    files = test_ca.write_server(tmp_path, "mx", leaf, key)
    server_names = []
    serve = starttls_by_sni({}, files, server_names)
    result = probe_one_connection(lab_netns, "127.0.0.96", serve, server_name="smtp.hosting.example.test")
    assert server_names == ["smtp.hosting.example.test"] and result.chain[0] == leaf
    probe_one_connection(lab_netns, "127.0.0.96", starttls_by_sni({}, files, server_names))
    assert server_names[1:] == ["mx.example.test"]
