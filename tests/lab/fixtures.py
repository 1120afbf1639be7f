"""pytest fixtures for the lab; imported by tests/conftest.py."""

import pytest

from . import dns, netns, pki


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
