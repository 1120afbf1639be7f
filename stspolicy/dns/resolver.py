"""DNS look-ups through one trusted validating resolver, with the DNSSEC state of every answer.

The resolver's AD bit is trusted (RFC 7672 section 2.1, RFC 4035 section 4.3): only point
this at a validating resolver you run, over a path you trust (RFC 4035 section 4.9.3). SERVFAIL is told
apart by asking again with CD: data that comes back then failed validation (bogus).
"""

from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdatatype
import dns.resolver

from stspolicy.dns.answers import BOGUS, INDETERMINATE, INSECURE, SECURE, Answer
from stspolicy.dns.records import join_txt_strings


@dataclass
class Resolver:
    """Queries `nameservers` (address or address:port; the system's when empty) with DO and AD set."""

    nameservers: list[str] = field(default_factory=list)
    timeout: float = 5.0

    def __post_init__(self):
        if not self.nameservers:
            self.nameservers = list(dns.resolver.Resolver().nameservers)

    def lookup(self, name: str, rdtype: str) -> Answer:
        name = name.rstrip(".").lower()
        response = self._ask(name, rdtype, checking_disabled=False)
        if response is None:
            return Answer(name, rdtype, INDETERMINATE, "TIMEOUT")
        rcode = dns.rcode.to_text(response.rcode())
        if response.rcode() == dns.rcode.SERVFAIL:
            unchecked = self._ask(name, rdtype, checking_disabled=True)
            if unchecked is not None and unchecked.rcode() in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
                return Answer(name, rdtype, BOGUS, rcode)
            return Answer(name, rdtype, INDETERMINATE, rcode)
        if response.rcode() not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN):
            return Answer(name, rdtype, INDETERMINATE, rcode)
        state = SECURE if response.flags & dns.flags.AD else INSECURE
        try:
            chain = response.resolve_chaining()
        except dns.message.ChainTooLong:  # a CNAME loop, or a chain no resolver would follow
            return Answer(name, rdtype, INDETERMINATE, "CNAME_CHAIN_TOO_LONG")
        cnames = _cname_targets(response, name)
        records = ()
        if chain.answer is not None:
            records = tuple(_presentation(rdata) for rdata in chain.answer)
        return Answer(name, rdtype, state, rcode, records, cnames, chain.minimum_ttl if records else None)

    def _ask(self, name: str, rdtype: str, *, checking_disabled: bool) -> dns.message.Message | None:
        query = dns.message.make_query(name, rdtype, want_dnssec=True)
        query.flags |= dns.flags.AD | (dns.flags.CD if checking_disabled else 0)
        for server in self.nameservers:
            host, port = split_server(server)
            try:
                response, _ = dns.query.udp_with_fallback(query, host, timeout=self.timeout, port=port)
                return response
            except (dns.exception.DNSException, OSError):
                continue
        return None


def _cname_targets(response: dns.message.Message, name: str) -> tuple[str, ...]:
    """The CNAME targets from `name`, in order, as found in the answer section."""
    targets = []
    current = dns.name.from_text(name)
    for _ in range(16):
        rrset = next((r for r in response.answer if r.name == current and r.rdtype == dns.rdatatype.CNAME), None)
        if rrset is None:
            break
        current = rrset[0].target
        targets.append(str(current).rstrip(".").lower())
    return tuple(targets)


def _presentation(rdata) -> str:
    if rdata.rdtype == dns.rdatatype.TXT:
        return join_txt_strings(list(rdata.strings))
    return rdata.to_text()


def split_server(server: str) -> tuple[str, int]:
    """`address`, `address:port` or `[v6]:port`."""
    if server.startswith("["):
        host, _, port = server[1:].partition("]:")
        return host, int(port or 53)
    if server.count(":") == 1:
        host, port = server.split(":")
        return host, int(port)
    return server, 53
