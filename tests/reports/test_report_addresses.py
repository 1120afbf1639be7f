"""Failure-detail addresses are stored in exactly the form the C library's inet_ntop gives them."""

import ipaddress
import socket

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reports.parsing.addresses import is_dotted_quad, normal_address


def inet_ntop_form(value: str) -> str:
    try:
        socket.inet_pton(socket.AF_INET, value)
        return value
    except OSError:
        return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, value))


embedded = st.builds(lambda prefix, v4: prefix + v4, st.sampled_from([bytes(12), bytes(10) + b"\xff\xff"]),
                     st.binary(min_size=4, max_size=4))
sparse = st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0xDB8]), min_size=8, max_size=8).map(
    lambda words: b"".join(word.to_bytes(2, "big") for word in words))


@given(st.one_of(st.binary(min_size=16, max_size=16), embedded, sparse))
def test_an_ipv6_address_is_written_as_inet_ntop_writes_it(packed):
    for text in (ipaddress.IPv6Address(packed).exploded, ipaddress.IPv6Address(packed).compressed.upper()):
        assert normal_address(text) == inet_ntop_form(text)


@given(st.lists(st.integers(0, 300).map(str) | st.sampled_from(["01", "00", "1a", ""]), min_size=3, max_size=5))
def test_a_dotted_quad_is_one_exactly_when_inet_pton_takes_it(parts):
    text = ".".join(parts)
    try:
        socket.inet_pton(socket.AF_INET, text)
        taken = True
    except OSError:
        taken = False
    assert is_dotted_quad(text) == taken


@pytest.mark.parametrize("value", ["fe80::1%eth0", "1.2.3", "::1.02.3.4", "12345::", "mx.example.com", " 1.2.3.4"])
def test_what_inet_pton_refuses_is_no_address(value):
    with pytest.raises(OSError):
        inet_ntop_form(value)
    with pytest.raises(ValueError):
        normal_address(value)
