"""STARTTLS probes against Postfix on loopback in the lab: what a sender sees on port 25."""

import contextlib
import socket
import ssl
import threading
from datetime import UTC, datetime

import pytest

from stspolicy.dns.dane import certificate_facts, webpki_error
from stspolicy.dns.probe import MAX_REPLY_BYTES, probe_starttls, refusal

LOOPBACK = ["127.0.0.0/8"]


def probe(lab_netns, host, addresses, **options):
    options.setdefault("allowed_networks", LOOPBACK)
    with lab_netns.entered():
        return probe_starttls(host, addresses, timeout=5, ehlo_name="probe.example.test", **options)


def probe_one_connection(lab_netns, address: str, serve):
    """Probe mx.example.test at `address`, where `serve(connection)` plays the SMTP server for one connection."""
    with lab_netns.entered():
        server = socket.create_server((address, 25))

    def accept():
        connection, _ = server.accept()
        with connection, contextlib.suppress(OSError):
            serve(connection)
    thread = threading.Thread(target=accept)
    thread.start()
    try:
        with lab_netns.entered():
            return probe_starttls("mx.example.test", [address], timeout=5, allowed_networks=LOOPBACK)
    finally:
        thread.join(timeout=10)
        server.close()


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


def test_the_probe_sends_the_mx_host_name_as_sni(lab_netns, test_ca, tmp_path):
    """RFC 7672 section 3.2.2: the client sends the MX host name as SNI, not the CNAME-expanded name."""
    leaf, key = test_ca.issue("mx.example.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*test_ca.write_server(tmp_path, "mx", leaf, key))
    server_names = []
    context.sni_callback = lambda _connection, name, _context: server_names.append(name)

    def starttls_server(connection):
        connection.sendall(b"220 mx ESMTP\r\n")
        connection.recv(1024)
        connection.sendall(b"250-mx\r\n250 STARTTLS\r\n")
        connection.recv(1024)
        connection.sendall(b"220 go ahead\r\n")
        context.wrap_socket(connection, server_side=True).close()
    result = probe_one_connection(lab_netns, "127.0.0.96", starttls_server)
    assert server_names == ["mx.example.test"] and result.chain[0] == leaf
