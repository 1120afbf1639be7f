"""The resolver adapter against Knot behind a validating unbound: the DNSSEC state of every answer."""

import pytest

from stspolicy.dns.answers import BOGUS, INDETERMINATE, INSECURE, SECURE
from stspolicy.dns.resolver import Resolver, split_server
from tests.lab.dns import BOGUS as BOGUS_ZONE
from tests.lab.dns import INSECURE as INSECURE_ZONE
from tests.lab.dns import SECURE as SECURE_ZONE


@pytest.fixture(scope="module")
def zones(dns_lab):
    """Records shared by this module's tests, under names of their own."""
    for zone in (SECURE_ZONE, INSECURE_ZONE, BOGUS_ZONE):
        dns_lab.set_records(zone, f"_mta-sts.resolver.{zone}.", "TXT", ['"v=STSv1; " "id=20260101"'], flush=False)
    dns_lab.set_records(SECURE_ZONE, f"alias.resolver.{SECURE_ZONE}.", "CNAME", [f"host.resolver.{SECURE_ZONE}."],
                        flush=False)
    dns_lab.set_records(SECURE_ZONE, f"host.resolver.{SECURE_ZONE}.", "A", ["192.0.2.7"], flush=False)
    dns_lab.set_records(SECURE_ZONE, f"out.resolver.{SECURE_ZONE}.", "CNAME", [f"host.resolver.{INSECURE_ZONE}."],
                        flush=False)
    dns_lab.set_records(INSECURE_ZONE, f"host.resolver.{INSECURE_ZONE}.", "A", ["192.0.2.8"])
    return dns_lab


@pytest.fixture
def lookup(zones, lab_netns):
    resolver = Resolver([zones.resolver], timeout=3)

    def run(name, rdtype):
        with lab_netns.entered():
            return resolver.lookup(name, rdtype)

    return run


@pytest.mark.parametrize(("zone", "state", "rcode"), [
    (SECURE_ZONE, SECURE, "NOERROR"), (INSECURE_ZONE, INSECURE, "NOERROR"), (BOGUS_ZONE, BOGUS, "SERVFAIL"),
])
def test_each_zone_answers_with_its_dnssec_state(lookup, zone, state, rcode):
    answer = lookup(f"_mta-sts.resolver.{zone}", "TXT")
    assert (answer.state, answer.rcode) == (state, rcode)
    assert answer.records == (() if state == BOGUS else ("v=STSv1; id=20260101",))  # strings joined, no space


def test_a_name_that_does_not_exist_in_a_signed_zone_is_a_secure_denial(lookup):
    answer = lookup(f"nothing.resolver.{SECURE_ZONE}", "TXT")
    assert (answer.state, answer.rcode, answer.exists) == (SECURE, "NXDOMAIN", False)


def test_cnames_are_followed_and_the_chain_is_kept(lookup):
    answer = lookup(f"alias.resolver.{SECURE_ZONE}", "A")
    assert answer.records == ("192.0.2.7",) and answer.state == SECURE
    assert answer.cnames == (f"host.resolver.{SECURE_ZONE}",)
    assert answer.canonical_name == f"host.resolver.{SECURE_ZONE}"


def test_a_chain_that_leaves_signed_dns_is_insecure(lookup):
    answer = lookup(f"out.resolver.{SECURE_ZONE}", "A")
    assert answer.records == ("192.0.2.8",) and answer.state == INSECURE


def test_a_resolver_that_does_not_answer_leaves_the_state_indeterminate(lab_netns):
    with lab_netns.entered():
        answer = Resolver(["127.0.0.3"], timeout=0.3).lookup(f"_mta-sts.resolver.{SECURE_ZONE}", "TXT")
    assert (answer.state, answer.rcode, answer.failed) == (INDETERMINATE, "TIMEOUT", True)


@pytest.mark.parametrize(("server", "expected"), [
    ("192.0.2.1", ("192.0.2.1", 53)), ("192.0.2.1:5353", ("192.0.2.1", 5353)),
    ("2001:db8::1", ("2001:db8::1", 53)), ("[2001:db8::1]:5353", ("2001:db8::1", 5353)),
])
def test_server_addresses_take_an_optional_port(server, expected):
    assert split_server(server) == expected
