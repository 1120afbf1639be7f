"""Which organisation a domain belongs to: its registrable domain by the Public Suffix List, as
DMARC's relaxed alignment reads it (RFC 7489 section 3.2). Pure: the list ships with the package.
"""

import re

from publicsuffixlist import PublicSuffixList

_LIST = PublicSuffixList()
_DOMAIN_AFTER_AT = re.compile(r"[^\s/>]+")
_URL_HOST = re.compile(r"[a-z][a-z0-9+.-]*://([^/:?#\s@]+)", re.IGNORECASE)


def organizational_domain(name: str) -> str | None:
    """`mail.google.com` -> `google.com`; None for a public suffix (`com`, `co.uk`) or a lone label."""
    name = name.strip().rstrip(".").lower()
    return _LIST.privatesuffix(name) if name else None


def same_organization(one: str, other: str) -> bool:
    """Whether both domains belong to one organisation; never through a public suffix."""
    organization = organizational_domain(one)
    return organization is not None and organization == organizational_domain(other)


def contact_domain(contact_info: str | None) -> str | None:
    """The domain of the e-mail address or URL that a report's contact-info gives, if it gives one."""
    text = (contact_info or "").strip()
    if "@" in text:
        found = _DOMAIN_AFTER_AT.match(text.rpartition("@")[2])
        domain = found[0] if found else None
    else:
        found = _URL_HOST.match(text)
        domain = found[1] if found else None
    return (domain.rstrip(".").lower() or None) if domain else None
