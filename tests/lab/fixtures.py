"""pytest fixtures for the lab, and for the app pointed at it; a plugin loaded by tests/conftest.py."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from tests.lab import dns, netns, pki, smtp
from tests.lab.dns import SECURE
from tests.support.config import configure
from tests.support.servers import starting

RUA = "mailto:tlsrpt@reports.provider.example"


@pytest.fixture(scope="session")
def lab_netns():
    starting("the lab")
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


@pytest.fixture
def lab_app(app, dns_lab, mail_servers, test_ca, monkeypatch, tmp_path):
    """The app pointed at the lab's resolver, probing loopback, trusting the test CA, holding the lab's TSIG key."""
    tsig = dns_lab.tsig
    configure(
        monkeypatch, app, DNS_RESOLVERS=[dns_lab.resolver], DNS_TIMEOUT=3.0, PROBE_TIMEOUT=5.0,
        PROBE_ALLOWED_NETWORKS=["127.0.0.0/8"], PROBE_CA_FILE=str(test_ca.write_root(tmp_path / "root.pem")),
        POLICY_HOST_CNAME=f"sts.{SECURE}", DNS_TSIG_KEYS={tsig.name.rstrip("."): (tsig.algorithm, tsig.secret)},
    )
    dns_lab.set_records(SECURE, f"sts.{SECURE}.", "A", ["127.0.0.20"], flush=False)
    return app


@pytest.fixture
def in_lab(lab_app, lab_netns, cli):
    """Run `flask ARGS` with the calling thread in the lab namespace."""
    def run(*args):
        with lab_netns.entered():
            return cli(*args)
    return run


def host_domain(session, dns_lab, name, zone, *, mx, policy_id=None, tlsa=None, mode="enforce", sts=True):
    """Host `name` and publish its records in the lab: MX hosts as {host: address}, TLSA as {host: [rdata]}."""
    version = add_domain(session, name, make_policy(mode, list(mx), 86400), actor="test")
    publish_in_lab(dns_lab, name, zone, mx=mx, policy_id=(policy_id or version.policy_id) if sts else None, tlsa=tlsa)
    return version


def publish_in_lab(dns_lab, name, zone, *, mx, policy_id=None, tlsa=None):
    """What the owner of `name` publishes as this service says (no `_mta-sts` without `policy_id`)."""
    if policy_id:
        dns_lab.set_records(zone, f"_mta-sts.{name}.", "TXT", [f'"v=STSv1; id={policy_id}"'], flush=False)
    dns_lab.set_records(zone, f"_smtp._tls.{name}.", "TXT", [f'"v=TLSRPTv1; rua={RUA}"'], flush=False)
    dns_lab.set_records(zone, f"mta-sts.{name}.", "CNAME", [f"sts.{SECURE}."], flush=False)
    dns_lab.set_records(zone, f"{name}.", "MX", [f"{10 * n} {host}." for n, host in enumerate(mx, 1)], flush=False)
    for host, address in mx.items():
        dns_lab.set_records(zone, f"{host}.", "A", [address], flush=False)
    for host, records in (tlsa or {}).items():
        dns_lab.set_records(zone, f"_25._tcp.{host}.", "TLSA", records, flush=False)
    dns_lab.flush()
