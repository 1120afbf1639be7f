"""Domain names as the RFCs want them: A-labels, lower case, no trailing dot."""

import re

import idna

_LDH_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
POLICY_HOST_PREFIX = "mta-sts."


class InvalidName(ValueError):
    """A domain or host name that cannot be used."""


def normalize_domain(name: str) -> str:
    """Return `name` as a lower-case A-label domain without the trailing dot.

    U-labels are converted with IDNA 2008 (UTS #46 mapping), so `Bücher.Example`
    becomes `xn--bcher-kva.example`. At least two labels are required: a single
    label is never a mail domain or an MX host.
    """
    text = name.strip()
    if text.endswith("."):
        text = text[:-1]
    if not text:
        raise InvalidName("empty domain name")
    if text.isascii():
        ascii_name = text.lower()
        if any(label.startswith("xn--") for label in ascii_name.split(".")):
            ascii_name = _idna_encode(text, name)
    else:
        ascii_name = _idna_encode(text, name)
    labels = ascii_name.split(".")
    if len(labels) < 2:
        raise InvalidName(f"invalid domain name {name!r}: needs at least two labels")
    if len(ascii_name) > 253:
        raise InvalidName(f"invalid domain name {name!r}: longer than 253 characters")
    for label in labels:
        if not _LDH_LABEL.match(label):
            raise InvalidName(f"invalid domain name {name!r}: bad label {label!r}")
    if labels[-1].isdigit():
        raise InvalidName(f"invalid domain name {name!r}: the last label is numeric")
    return ascii_name


def _idna_encode(text: str, original: str) -> str:
    try:
        return idna.encode(text, uts46=True, std3_rules=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as error:
        raise InvalidName(f"invalid domain name {original!r}: {error}") from None


def to_unicode(domain: str) -> str:
    """The U-label form of an A-label domain, for display; the input if it cannot be decoded."""
    try:
        return idna.decode(domain)
    except (idna.IDNAError, UnicodeError):
        return domain


def policy_domain_from_host(host: str | None) -> str | None:
    """The policy domain named by an HTTP Host header `mta-sts.<domain>[:port]`, or None.

    RFC 8461 section 3.3: the policy host is `mta-sts.` + the policy domain. The Host is
    compared case-insensitively, with any port and one trailing dot removed.
    """
    if not host or not host.isascii():
        return None
    host = host.lower()
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and "]" not in port:
        host = name
    if host.endswith("."):
        host = host[:-1]
    if not host.startswith(POLICY_HOST_PREFIX):
        return None
    return host[len(POLICY_HOST_PREFIX):] or None


def host_without_port(host: str) -> str:
    """The lower-case host name of an HTTP Host header, without port or trailing dot (`[::1]:80` gives `::1`)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, colon, port = host.rpartition(":")
    if colon and port.isdigit() and ":" not in name:
        host = name
    return host[:-1] if host.endswith(".") else host
