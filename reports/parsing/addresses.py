"""IP addresses of failure details in the one text form they are stored in (pure: no sockets).

IPv4 as a dotted quad without leading zeros (RFC 8460 section 4.4), IPv6 in RFC 5952 form,
with an embedded IPv4 address (`::ffff:a.b.c.d`, `::a.b.c.d`) written as inet_ntop writes it.
"""

import ipaddress
import re

_OCTET = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # no leading zero
DOTTED_QUAD = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def is_dotted_quad(address: str) -> bool:
    """An IPv4 address as RFC 8460 writes it, kept as it is."""
    return DOTTED_QUAD.fullmatch(address) is not None


def normal_address(value: str) -> str:
    """`value` in its stored form; ValueError if it is no IP address (an IPv6 zone is none either)."""
    if is_dotted_quad(value):
        return value
    address = ipaddress.IPv6Address(value)
    if address.scope_id is not None:
        raise ValueError(f"{value!r} names a zone")
    packed = address.packed
    mapped = packed[:12] == bytes(10) + b"\xff\xff"
    compatible = packed[:12] == bytes(12) and packed[12:14] != bytes(2)  # not ::1, nor ::
    if mapped or compatible:
        return ("::ffff:" if mapped else "::") + str(ipaddress.IPv4Address(packed[12:]))
    return address.compressed
