"""DKIM on report mail (RFC 8460 sections 3 and 5.3): the adapter over dkimpy and DNS.

Reports by mail "MUST contain a valid DKIM signature by the reporting domain. Reports
lacking such a signature MUST be ignored by the recipient" (RFC 8460 section 3). A signature
counts when it verifies, covers the whole body (one with `l=` is refused: "MUST NOT use the
l= attribute"; dkimpy's TLS-RPT mode would only ignore it), its key serves TLS-RPT, and its
signing domain belongs to the organisation the TLS-Report-Submitter header names.
TLSRPT_DKIM=require (the default) refuses mail without one; `record` only marks it, for a
trial period. A key lookup that DNS does not answer is no verdict: the mail is delivered
again later.
"""

from collections.abc import Callable

import dkim
import dkim.util
import dns.exception
import dns.resolver

from reports.parsing.organizations import same_organization

PASS = "pass"  # noqa: S105 (a DKIM result, not a password)
TEMPERROR = "temperror"


def txt_lookup(nameserver: str = "", timeout: float = 5) -> Callable:
    """A dkimpy `dnsfunc` asking `nameserver` (`address` or `address:port`), else the system resolver."""
    resolver = dns.resolver.Resolver(configure=not nameserver)
    if nameserver:
        address, _, port = nameserver.rpartition(":") if nameserver.count(":") == 1 else (nameserver, "", "")
        resolver.nameservers = [address]
        if port:
            resolver.port = int(port)

    def lookup(name: bytes, **_) -> bytes | None:
        try:
            answer = resolver.resolve(name.decode("ascii"), "TXT", lifetime=timeout, raise_on_no_answer=False)
        except dns.resolver.NXDOMAIN:
            return None
        except (dns.exception.Timeout, dns.resolver.NoNameservers) as error:  # no server answered, or none could
            raise dkim.DnsTimeoutError(str(error)) from None
        for rrset in answer.response.answer:
            if rrset.rdtype == dns.rdatatype.TXT:
                return b"".join(next(iter(rrset)).strings)
        return None

    return lookup


def verify(raw: bytes, submitter: str | None, dnsfunc: Callable) -> str:
    """`pass d=<domain>` for a valid signature of the submitter's organisation, else `fail`, `none`
    (unsigned) or `temperror` (DNS did not answer, or only with a failure)."""
    checker = dkim.DKIM(raw, tlsrpt=True)
    signatures = [value for name, value in checker.headers if name.lower() == b"dkim-signature"]
    if not signatures:
        return "none"
    unanswered = []

    def tracking(name, **options):  # dkimpy logs a DNS failure as a failed check; we tell them apart
        try:
            return _serving_tlsrpt(dnsfunc(name, **options))
        except dkim.DnsTimeoutError:
            unanswered.append(name)
            raise

    for index, value in enumerate(signatures):
        try:
            tags = dkim.util.parse_tag_value(value)
        except dkim.util.InvalidTagValueList:
            continue
        domain = tags.get(b"d", b"").decode("ascii", "replace").lower().rstrip(".")
        if b"l" in tags or not submitter or not same_organization(domain, submitter):
            continue  # checked before the key is looked up: no DNS query for a signature that cannot count
        try:
            valid = checker.verify(idx=index, dnsfunc=tracking)
        except dkim.DKIMException:
            continue
        if valid:
            return f"{PASS} d={domain}"
    return TEMPERROR if unanswered else "fail"


def _serving_tlsrpt(record: bytes | None) -> bytes | None:
    """The key record if it may sign reports, else None (no key): RFC 8460 section 3 asks for a
    key with `s=tlsrpt`, where RFC 6376 section 3.6.1 makes `s=` a list (`email:tlsrpt`) and `*`,
    its default, every service. A key without `s=` is taken: the big senders sign their reports
    with their one key for all mail (Google's sample: d=google.com, selector 20230601).

    dkimpy reads `s=` as one value, so the record it gets has no `s=` once the list is checked here.
    """
    if record is None:
        return None
    try:
        tags = dkim.util.parse_tag_value(record)
    except dkim.util.InvalidTagValueList:
        return record  # dkimpy refuses it too
    if b"s" not in tags:
        return record
    services = {service.strip().lower() for service in tags[b"s"].split(b":")}
    if not services & {b"*", b"tlsrpt"}:
        return None
    return b"; ".join(name + b"=" + tag for name, tag in tags.items() if name != b"s")
