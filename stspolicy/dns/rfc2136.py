"""RFC 2136 dynamic updates signed with TSIG (RFC 8945), to the primary server of a zone."""

from dataclasses import dataclass

import dns.exception
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.tsig
import dns.update

from stspolicy.dns.records import join_txt_strings
from stspolicy.dns.resolver import split_server


class PublishError(Exception):
    """The server did not take the update; the message says why."""


@dataclass(frozen=True)
class TsigKey:
    name: str
    algorithm: str
    secret: str  # base64


def replace_txt(server: str, zone: str, owner: str, value: str, *, key: TsigKey, ttl: int, timeout: float) -> None:
    """Make `value` the only TXT record at `owner` in `zone` (one atomic update)."""
    host, port = split_server(server)
    try:
        tsig = dns.tsig.Key(key.name, key.secret, key.algorithm)
        update = dns.update.UpdateMessage(zone, keyring=tsig)
        update.replace(dns.name.from_text(owner), ttl, dns.rdatatype.TXT, _quoted(value))
        response = dns.query.tcp(update, host, port=port, timeout=timeout)
    except dns.exception.Timeout:
        raise PublishError(f"no answer from {server} within {timeout:g}s") from None
    except (dns.exception.DNSException, OSError, ValueError) as error:
        raise PublishError(f"update of {owner} at {server} failed: {error}") from None
    if response.rcode() != dns.rcode.NOERROR:
        raise PublishError(f"{server} refused the update of {owner}: {dns.rcode.to_text(response.rcode())}")


def read_txt(server: str, owner: str, *, timeout: float) -> list[str]:
    """The TXT records at `owner` as the primary server itself answers (no resolver cache between)."""
    host, port = split_server(server)
    query = dns.message.make_query(owner, dns.rdatatype.TXT)
    try:
        response = dns.query.tcp(query, host, port=port, timeout=timeout)
    except (dns.exception.DNSException, OSError) as error:
        raise PublishError(f"could not read back {owner} from {server}: {error}") from None
    rrset = response.get_rrset(response.answer, dns.name.from_text(owner), dns.rdataclass.IN, dns.rdatatype.TXT)
    return [join_txt_strings(list(rdata.strings)) for rdata in rrset] if rrset else []


def _quoted(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def replace_rrset(server: str, zone: str, owner: str, rdtype: str, values: list[str], *, key: TsigKey, ttl: int,
                  timeout: float) -> None:
    """Make `values` (presentation form) the whole `rdtype` RRset at `owner`; none deletes it (one update)."""
    host, port = split_server(server)
    try:
        tsig = dns.tsig.Key(key.name, key.secret, key.algorithm)
        update = dns.update.UpdateMessage(zone, keyring=tsig)
        if values:
            update.replace(dns.name.from_text(owner), ttl, rdtype, *values)
        else:
            update.delete(dns.name.from_text(owner), rdtype)
        response = dns.query.tcp(update, host, port=port, timeout=timeout)
    except dns.exception.Timeout:
        raise PublishError(f"no answer from {server} within {timeout:g}s") from None
    except (dns.exception.DNSException, OSError, ValueError) as error:
        raise PublishError(f"update of {owner} at {server} failed: {error}") from None
    if response.rcode() != dns.rcode.NOERROR:
        raise PublishError(f"{server} refused the update of {owner}: {dns.rcode.to_text(response.rcode())}")


def read_rrset(server: str, owner: str, rdtype: str, *, timeout: float) -> list[str]:
    """The `rdtype` records at `owner` in presentation form, as the primary server itself answers."""
    host, port = split_server(server)
    query = dns.message.make_query(owner, rdtype)
    try:
        response = dns.query.tcp(query, host, port=port, timeout=timeout)
    except (dns.exception.DNSException, OSError) as error:
        raise PublishError(f"could not read back {owner} from {server}: {error}") from None
    rrset = response.get_rrset(response.answer, dns.name.from_text(owner), dns.rdataclass.IN,
                               dns.rdatatype.from_text(rdtype))
    return [rdata.to_text() for rdata in rrset] if rrset else []
