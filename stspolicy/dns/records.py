"""DNS TXT records of MTA-STS (RFC 8461 section 3.1) and TLS-RPT (RFC 8460 section 3).

Rendering for what we publish, strict parsing for what a sender would read. Pure.
"""

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from stspolicy.policies.rules import POLICY_ID

STS_PREFIX = "v=STSv1;"
TLSRPT_PREFIX = "v=TLSRPTv1;"
RUA_SCHEMES = ("mailto", "https")

_EXT_NAME = r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}"
_EXT_VALUE = re.compile(r"^[\x21-\x3a\x3c\x3e-\x7e]+$")
_FIELD = re.compile(rf"^({_EXT_NAME})=(.*)$", re.S)
_RUA_SPLIT = re.compile(r"[ \t]*,[ \t]*")
# RFC 3986 characters, less the `,` `!` `;` that RFC 8460 section 3 says MUST be encoded.
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[A-Za-z0-9\-._~:/?#\[\]@$&'()*+=%]+$")


class RecordError(ValueError):
    """A TXT record that does not follow its grammar."""


# TTLs of the records a hosted domain publishes. `_mta-sts` gets a short one from the settings:
# senders keep applying an old policy until the TXT record's TTL has passed (RFC 8461 section 8.1).
TLSRPT_TTL = 86400  # RFC 8460 section 7: a large TTL narrows the window to suppress the record
POLICY_HOST_TTL = 3600  # mta-sts.<domain> and the delegation CNAME: set once, rarely changed


@dataclass(frozen=True)
class DnsRecord:
    """A record to publish: owner name (no trailing dot), type, presentation value and TTL in seconds."""

    name: str
    type: str
    value: str
    ttl: int

    def zone_line(self) -> str:
        value = f'"{self.value}"' if self.type == "TXT" else self.value
        return f"{self.name}. {self.ttl} IN {self.type} {value}"

    def as_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "value": self.value, "ttl": self.ttl}


@dataclass(frozen=True)
class StsRecord:
    policy_id: str


@dataclass(frozen=True)
class TlsrptRecord:
    rua: tuple[str, ...]
    unusable_rua: tuple[str, ...] = ()


def render_sts_record(policy_id: str) -> str:
    if not POLICY_ID.match(policy_id):
        raise RecordError(f"invalid policy id {policy_id!r}: 1 to 32 letters and digits")
    return f"v=STSv1; id={policy_id}"


def encode_rua_uri(uri: str) -> str:
    """Percent-encode the characters RFC 8460 section 3 reserves in a rua URI: `,` `!` `;`."""
    return uri.replace(",", "%2C").replace("!", "%21").replace(";", "%3B")


def check_rua_uri(uri: str) -> str:
    """Return `uri` if it is a usable rua destination (mailto: or https:), else raise RecordError."""
    scheme = uri.partition(":")[0].lower()
    if scheme not in RUA_SCHEMES:
        raise RecordError(f"invalid rua {uri!r}: only mailto: and https: are supported")
    if not _URI.match(uri):
        raise RecordError(f"invalid rua {uri!r}: not a URI (`,` `!` `;` must be percent-encoded)")
    if scheme == "https" and not urlsplit(uri).hostname:
        raise RecordError(f"invalid rua {uri!r}: no host")
    if scheme == "mailto" and "@" not in uri:
        raise RecordError(f"invalid rua {uri!r}: no mail address")
    return uri


def render_tlsrpt_record(rua: list[str] | tuple[str, ...]) -> str:
    if not rua:
        raise RecordError("a TLS-RPT record needs at least one rua destination")
    return "v=TLSRPTv1; rua=" + ",".join(check_rua_uri(encode_rua_uri(uri)) for uri in rua)


def join_txt_strings(strings: list[bytes] | list[str]) -> str:
    """One TXT RR's character-strings joined without spaces (RFC 8461 section 3.1)."""
    return "".join(s.decode("ascii", "replace") if isinstance(s, bytes) else s for s in strings)


def select_record(txt_records: list[str], prefix: str) -> str:
    """The single TXT record that begins with `prefix`, as senders pick it.

    Records not beginning with the prefix are discarded; if not exactly one is left
    the domain has no record (RFC 8461 section 3.1, RFC 8460 section 3).
    """
    candidates = [record for record in txt_records if record.startswith(prefix)]
    if not candidates:
        raise RecordError(f"no TXT record begins with {prefix!r}")
    if len(candidates) > 1:
        raise RecordError(f"{len(candidates)} TXT records begin with {prefix!r}: senders need exactly one")
    return candidates[0]


def _fields(record: str, version: str) -> list[tuple[str, str]]:
    """Split `version 1*(delim field) [delim]`, delim = *WSP ";" *WSP, into (name, value) pairs."""
    if not record.isascii():
        raise RecordError("the record is not US-ASCII")
    parts = [part.strip(" \t") for part in record.split(";")]
    if parts[0] != version:
        raise RecordError(f"the record does not begin with {version!r}")
    if parts and parts[-1] == "":
        parts.pop()
    if len(parts) < 2:
        raise RecordError("the record has no fields after the version")
    fields = []
    for part in parts[1:]:
        match = _FIELD.match(part)
        if not match:
            raise RecordError(f"invalid field {part!r}")
        fields.append((match.group(1), match.group(2)))
    return fields


def parse_sts_record(record: str) -> StsRecord:
    """Parse a `_mta-sts` TXT record; unknown fields are ignored, the first `id` wins."""
    policy_id = None
    for name, value in _fields(record, "v=STSv1"):
        if name == "id" and policy_id is None:
            if not POLICY_ID.match(value):
                raise RecordError(f"invalid id {value!r}: 1 to 32 letters and digits")
            policy_id = value
        elif not _EXT_VALUE.match(value):
            # A later `id` is ignored (RFC 8461 section 3.1: "all entries except for the first
            # SHALL be ignored"), but it must still be a field of the grammar, as an extension.
            raise RecordError(f"invalid value of field {name!r}: {value!r}")
    if policy_id is None:
        raise RecordError("the record has no id field")
    return StsRecord(policy_id=policy_id)


def parse_tlsrpt_record(record: str) -> TlsrptRecord:
    """Parse a `_smtp._tls` TXT record into its rua URIs (all rua fields, in order).

    Entries that are not URIs, or use a scheme other than mailto: or https:, are kept
    apart as unusable (RFC 8460 section 3: "Two URI schemes are supported").
    """
    usable: list[str] = []
    unusable: list[str] = []
    seen_rua = False
    for name, value in _fields(record, "v=TLSRPTv1"):
        if name == "rua":
            seen_rua = True
            for uri in _RUA_SPLIT.split(value):
                try:
                    usable.append(check_rua_uri(uri))
                except RecordError:
                    unusable.append(uri)
        elif not _EXT_VALUE.match(value):
            raise RecordError(f"invalid value of field {name!r}: {value!r}")
    if not seen_rua:
        raise RecordError("the record has no rua field")
    return TlsrptRecord(rua=tuple(usable), unusable_rua=tuple(unusable))


def records_to_publish(
    domain: str,
    policy_id: str,
    *,
    rua: list[str] | tuple[str, ...] = (),
    policy_host_cname: str = "",
    policy_host_addresses: list[str] | tuple[str, ...] = (),
    sts_target: str = "",
    sts_ttl: int = 300,
) -> list[DnsRecord]:
    """The records a hosted domain publishes: `_mta-sts` TXT, `_smtp._tls` TXT, `mta-sts` host.

    The TLS-RPT record and the policy host record come from the deployment's settings
    and are left out when those are not configured. A delegated domain (RFC 8461 section
    8.2) publishes, once, a CNAME to `sts_target`, where we keep the TXT record current
    with `sts_ttl`.
    """
    if sts_target:
        records = [DnsRecord(f"_mta-sts.{domain}", "CNAME", sts_target + ".", POLICY_HOST_TTL)]
    else:
        records = [DnsRecord(f"_mta-sts.{domain}", "TXT", render_sts_record(policy_id), sts_ttl)]
    if rua:
        records.append(DnsRecord(f"_smtp._tls.{domain}", "TXT", render_tlsrpt_record(rua), TLSRPT_TTL))
    if policy_host_cname:
        records.append(DnsRecord(f"mta-sts.{domain}", "CNAME", policy_host_cname + ".", POLICY_HOST_TTL))
    for address in policy_host_addresses:
        kind = "AAAA" if ":" in address else "A"
        records.append(DnsRecord(f"mta-sts.{domain}", kind, address, POLICY_HOST_TTL))
    return records
