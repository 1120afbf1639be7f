"""Domain normalisation and Host header parsing."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stspolicy.policies.names import InvalidName, normalize_domain, policy_domain_from_host, to_unicode


@pytest.mark.parametrize(
    "name, expected",
    [
        ("example.com", "example.com"),
        ("Example.COM", "example.com"),
        ("example.com.", "example.com"),
        ("  example.com ", "example.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("Bücher.Example.", "xn--bcher-kva.example"),
        ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
        ("straße.de", "xn--strae-oqa.de"),
        ("a-b.c-d.example", "a-b.c-d.example"),
        ("1.example", "1.example"),
    ],
)
def test_domains_are_stored_as_lower_case_a_labels(name, expected):
    assert normalize_domain(name) == expected


@pytest.mark.parametrize(
    "name",
    ["", ".", "com", "example..com", "-a.example", "a-.example", "a_b.example", "exa mple.com",
     "xn--zz.example", "192.0.2.1", "a." * 127 + "com", "a" * 64 + ".com", "*.example.com", "ex@mple.com"],
)
def test_invalid_domain_names_are_refused(name):
    with pytest.raises(InvalidName):
        normalize_domain(name)


def test_unicode_form_is_shown_beside_the_a_label():
    assert to_unicode("xn--bcher-kva.example") == "bücher.example"
    assert to_unicode("example.com") == "example.com"


@pytest.mark.parametrize(
    "host, domain",
    [
        ("mta-sts.example.com", "example.com"),
        ("MTA-STS.Example.COM", "example.com"),  # the Host header in any case
        ("mta-sts.example.com.", "example.com"),
        ("mta-sts.example.com:443", "example.com"),
        ("mta-sts.example.com.:8000", "example.com"),
        ("mta-sts.xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("example.com", None),
        ("www.mta-sts.example.com", None),
        ("mta-sts.", None),
        ("mta-sts", None),
        ("[::1]:8000", None),
        ("mta-sts.bücher.example", None),  # Host carries A-labels only
        ("", None),
        (None, None),
    ],
)
def test_policy_domain_from_host_header(host, domain):
    assert policy_domain_from_host(host) == domain


@given(st.text())
def test_host_parsing_never_fails(host):
    result = policy_domain_from_host(host)
    assert result is None or (result.isascii() and result == result.lower())
