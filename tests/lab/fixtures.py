"""pytest fixtures for the lab; imported by tests/conftest.py."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from tests.lab import dns, netns, pki, smtp


@pytest.fixture(scope="session")
def lab_netns():
    reason = netns.available()
    if reason:
        pytest.skip(reason)
    namespace = netns.Netns(nameserver=dns.RESOLVER)
    yield namespace
    namespace.close()


@pytest.fixture(scope="session")
def dns_lab(lab_netns, tmp_path_factory):
    reason = dns.missing()
    if reason:
        pytest.skip(reason)
    lab = dns.DnsLab(lab_netns, tmp_path_factory.mktemp("dns-lab"))
    yield lab
    lab.close()


@pytest.fixture(scope="session")
def test_ca():
    return pki.TestCA()


@dataclass(frozen=True)
class MailServer:
    address: str
    chain: tuple  # certificates it presents, leaf first; empty without STARTTLS


@dataclass(frozen=True)
class MailServers:
    """Postfix listeners on port 25 in the lab namespace, one per kind of certificate problem."""

    good: MailServer  # names *.example.test, *.plain.test, *.bogus.test; valid 60 days
    expired: MailServer  # same names, expired yesterday
    mismatch: MailServer  # names mail.elsewhere.test only
    plaintext: MailServer  # no STARTTLS


@pytest.fixture(scope="session")
def mail_servers(lab_netns, test_ca, tmp_path_factory):
    reason = smtp.missing()
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("mail-servers")
    now = datetime.now(UTC)
    lab_names = ("*.example.test", "*.plain.test", "*.bogus.test")
    leaves = {
        "good": test_ca.issue(*lab_names, not_after=now + timedelta(days=60)),
        "expired": test_ca.issue(*lab_names, not_before=now - timedelta(days=90), not_after=now - timedelta(days=1)),
        "mismatch": test_ca.issue("mail.elsewhere.test"),
    }
    addresses = {"good": "127.0.0.25", "expired": "127.0.0.26", "mismatch": "127.0.0.27", "plaintext": "127.0.0.28"}
    listeners = {addresses[kind]: test_ca.write_server(folder, kind, leaf, key) for kind, (leaf, key) in leaves.items()}
    listeners[addresses["plaintext"]] = None
    postfix = smtp.Postfix(lab_netns, listeners)
    servers = MailServers(**{
        kind: MailServer(address, tuple(test_ca.chain(leaves[kind][0])) if kind in leaves else ())
        for kind, address in addresses.items()
    })
    yield servers
    postfix.close()
