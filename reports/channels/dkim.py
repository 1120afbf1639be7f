"""DKIM on report mail (RFC 8460 section 5.3): the adapter over dkimpy and DNS.

Reports by mail "MUST contain a valid DKIM signature by the reporting domain. Reports
lacking such a signature MUST be ignored by the recipient" (RFC 8460 section 3); the check
runs with dkimpy's TLS-RPT rules (no `l=` body length). TLSRPT_DKIM=require (the default)
refuses such mail; `record` only marks it, for a trial period. A key lookup that DNS does
not answer is no verdict: the mail is delivered again later.
"""

from collections.abc import Callable

import dkim
import dns.exception
import dns.resolver

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
    """`pass d=<domain>` for a valid signature by the submitter's domain (or a parent or child
    of it), else `fail`, `none` (unsigned) or `temperror` (DNS did not answer, or only with a failure)."""
    checker = dkim.DKIM(raw, tlsrpt=True)
    signatures = [value for name, value in checker.headers if name.lower() == b"dkim-signature"]
    if not signatures:
        return "none"
    unanswered = []

    def tracking(name, **options):  # dkimpy logs a DNS failure as a failed check; we tell them apart
        try:
            return dnsfunc(name, **options)
        except dkim.DnsTimeoutError:
            unanswered.append(name)
            raise

    for index in range(len(signatures)):
        try:
            valid = checker.verify(idx=index, dnsfunc=tracking)
        except dkim.DKIMException:
            continue
        domain = checker.domain.decode("ascii", "replace").lower()
        if valid and _aligned(domain, submitter):
            return f"{PASS} d={domain}"
    return TEMPERROR if unanswered else "fail"


def _aligned(domain: str, submitter: str | None) -> bool:
    if not submitter:
        return False
    submitter = submitter.lower().rstrip(".")
    return submitter == domain or submitter.endswith("." + domain) or domain.endswith("." + submitter)
