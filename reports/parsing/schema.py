"""TLS-RPT reports (RFC 8460 section 4) from JSON bytes to typed objects.

Strict where the RFC is: the required members, their JSON types, non-negative integer
counts, RFC 3339 dates, I-JSON (UTF-8, no duplicate member names). Tolerant of what
real senders do, each tolerance noted with the sender it comes from; a tolerated
deviation is kept in `ParsedReport.notes`. Every error names its JSON path. Pure.

msgspec decodes the JSON straight into the Structs below and checks, in C, what their
types say (members, JSON types, count ranges, string lengths); the rest (addresses, dates,
domain names, NUL characters, how many blocks and details) is checked after, in Python.
"""

import functools
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import msgspec
from msgspec import Meta, Struct

from reports.parsing.addresses import is_dotted_quad, normal_address
from reports.parsing.body import Limits, ReportError, ReportTooLarge
from stspolicy.policies.names import InvalidName, normalize_domain

# A cap on each session count and on their sum in one report: 2^40 sessions in a day is 12 million
# a second to one policy domain, which no sender reaches; below it every sum the storage makes
# fits a BIGINT (50,000 details of 2^53-1, what I-JSON allows, did not), and the I-JSON limit on
# integers (RFC 7493 section 2.2: 2^53-1) is far off.
MAX_COUNT = 2**40
MAX_ID_LENGTH = 256  # organization-name and report-id form the unique key, which an index must hold
MAX_NAME_LENGTH = 253
EARLIEST = datetime(2015, 1, 1, tzinfo=UTC)  # before the first TLS-RPT drafts
CLOCK_SKEW = timedelta(days=2)
# RFC 3339 section 5.6 `date-time`, where `T` and `Z` may be lower case; fromisoformat checks the ranges.
# Microsoft leaves out the zone at times (`2024-03-26T00:00:00`): read as UTC, and noted.
_RFC3339_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(?P<zone>[Zz]|[+-][0-9]{2}:[0-9]{2})?"
)
# Google and Microsoft end the day at 23:59:59Z, Mail.ru at the next midnight: both are one day.
ONE_DAY = (timedelta(hours=23, minutes=59), timedelta(hours=24))

Count = Annotated[int, Meta(ge=0, le=MAX_COUNT)]


# The Structs never form reference cycles: gc=False keeps the collector away from them
# (a report may hold tens of thousands of failure details).
class ParsedFailureDetail(Struct, rename="kebab", omit_defaults=True, frozen=True, gc=False):
    """One element of a block's `failure-details`, as the sender gave it (addresses normalised)."""

    result_type: str
    failed_session_count: int
    # Microsoft and Mail.ru send sts-policy-fetch-error details without addresses.
    sending_mta_ip: str | None = None
    receiving_ip: str | None = None
    receiving_mx_hostname: str | None = None
    receiving_mx_helo: str | None = None
    additional_information: str | None = None
    failure_reason_code: str | None = None


@functools.cache
def _decoder(max_string: int) -> msgspec.json.Decoder:
    """The decoder of reports whose strings are at most `max_string` characters long (a setting).

    Made per limit: a msgspec constraint is part of the type.
    """
    text = Annotated[str, Meta(max_length=max_string)]
    name = Annotated[str, Meta(max_length=min(MAX_NAME_LENGTH, max_string))]
    identifier = Annotated[str, Meta(max_length=min(MAX_ID_LENGTH, max_string))]

    class WireDetail(ParsedFailureDetail):
        result_type: Annotated[str, Meta(min_length=1, max_length=min(64, max_string))]
        failed_session_count: Count
        sending_mta_ip: text | None = None
        receiving_ip: text | None = None
        receiving_mx_hostname: name | None = None
        receiving_mx_helo: text | None = None
        additional_information: text | None = None
        failure_reason_code: text | None = None

    class WirePolicy(Struct, rename="kebab", omit_defaults=True, gc=False):
        policy_type: Literal["sts", "tlsa", "no-policy-found"]
        # sys4 tlsrpt-reporter leaves policy-domain out of no-policy-found blocks.
        policy_domain: text | None = None
        # Microsoft leaves policy-string out of sts blocks with sts-policy-fetch-error.
        policy_string: list[text] | None = None
        # The RFC's example has one string; Google and tlsrpt-reporter send a list;
        # some senders name the member `mx-host-pattern` after the schema's wording.
        mx_host: name | list[name] | None = None
        mx_host_pattern: name | list[name] | None = None

    class Summary(Struct, rename="kebab", gc=False):
        total_successful_session_count: Count
        total_failure_session_count: Count

    class WireBlock(Struct, rename="kebab", omit_defaults=True, gc=False):
        policy: WirePolicy
        summary: Summary
        # Reports with no failures often leave out failure-details altogether.
        failure_details: list[WireDetail] | None = None

    class DateRange(Struct, rename="kebab", gc=False):
        start_datetime: text
        end_datetime: text

    class Document(Struct, rename="kebab", omit_defaults=True, gc=False):
        organization_name: identifier
        date_range: DateRange
        report_id: identifier
        policies: list[WireBlock]
        # Postfix senders using sys4 tlsrpt-reporter send null or leave it out.
        contact_info: text | None = None

    return msgspec.json.Decoder(Document)


# The deepest nesting the Structs allow: $ > policies > [n] > policy > policy-string.
_KNOWN_DEPTH = 5
_ENCODER = msgspec.json.Encoder()
# Reports about the same few domains arrive all day: each name is normalised once.
_normalize_domain = functools.lru_cache(maxsize=4096)(normalize_domain)


class ParsedPolicyBlock(Struct, frozen=True, gc=False):
    """One element of `policies`: the policy applied, its summary and failure details."""

    policy_type: str
    policy_domain: str | None
    policy_strings: tuple[str, ...]
    mx_hosts: tuple[str, ...]
    successful_session_count: int
    failed_session_count: int
    failure_details: tuple[ParsedFailureDetail, ...]


class ParsedReport(Struct, frozen=True, gc=False):
    organization_name: str
    report_id: str
    contact_info: str | None
    start_datetime: datetime
    end_datetime: datetime
    policies: tuple[ParsedPolicyBlock, ...]
    notes: tuple[str, ...] = ()

    @property
    def day(self):
        """The UTC day the report is about: reports cover one UTC day (section 4.4)."""
        return self.start_datetime.astimezone(UTC).date()


DEFAULT_LIMITS = Limits()


def parse_report(data: bytes, limits: Limits = DEFAULT_LIMITS, now: datetime | None = None) -> ParsedReport:
    """Parse the JSON of one report; raises ReportError naming the JSON path at fault.

    `now` bounds the date range from above (reports are about the past); None skips that check.
    """
    notes = []
    if data.startswith(b"\xef\xbb\xbf"):
        notes.append("UTF-8 byte order mark removed")
        data = data[3:]
    return _Checker(limits, notes).report(_decode(data, limits), now)


def _decode(data: bytes, limits: Limits) -> Struct:
    # Every JSON value but the first follows a `,` or opens with `{` or `[`, each one byte.
    if len(data) > limits.max_json_values and (
        data.count(b",") + data.count(b"{") + data.count(b"[") > limits.max_json_values
    ):
        raise ReportTooLarge(f"more than {limits.max_json_values} JSON values")
    if not data.isascii():
        try:
            data.decode("utf-8")  # msgspec checks only the strings it keeps
        except UnicodeDecodeError as error:
            raise ReportError(f"not UTF-8 (byte {error.start})") from None
    try:
        document = _decoder(limits.max_string).decode(data)
    except msgspec.ValidationError as error:
        raise _refusal(str(error), limits.max_string) from None
    except msgspec.DecodeError as error:
        raise ReportError(f"not JSON: {error}") from None
    except RecursionError:
        raise ReportError("nested too deeply") from None
    escaped = b"\\" in data
    if _dropped_members(data, document, escaped) or limits.max_depth < _KNOWN_DEPTH:
        _check_members(data, limits.max_depth)
    if escaped and b"\\u0000" in data:  # the only way a NUL gets into a JSON string
        _refuse_nul(document, "$")
    return document


def _dropped_members(data: bytes, document: Struct, escaped: bool) -> bool:
    """Whether the document has members the Structs did not keep: repeated, unknown, or null.

    Outside strings a `:` only ends a member name, and the Structs encode back the members
    they kept with the very strings they read, so the counts differ exactly when a member
    was dropped; an escaped `:` (\\u003a) could hide one, so any \\u003X counts as a difference.
    """
    encoded = _ENCODER.encode(document)
    return data.count(b":") != encoded.count(b":") or (escaped and b"\\u003" in data)


class _Object(dict):
    """A JSON object that remembers member names given more than once."""

    duplicates: tuple[str, ...] = ()


def _object_pairs(pairs):
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen = set()
        obj.duplicates = tuple(key for key, _ in pairs if key in seen or seen.add(key))
    return obj


def _check_members(data: bytes, max_depth: int) -> None:
    """Refuse a member name given twice in one object (I-JSON) and nesting deeper than `max_depth`.

    The slow way, for the documents whose members the Structs did not all keep.
    """
    try:
        document = json.loads(data, object_pairs_hook=_object_pairs)
    except RecursionError:
        raise ReportError("nested too deeply") from None
    except ValueError as error:  # Python refuses integers of more than 4300 digits that msgspec skipped
        raise ReportError(f"not JSON: {error}") from None
    pending = [(document, "$", 1)]
    while pending:
        value, path, depth = pending.pop()
        if depth > max_depth:
            raise ReportError(f"nested deeper than {max_depth} levels", path)
        if isinstance(value, dict):
            if value.duplicates:
                raise ReportError(f"member {value.duplicates[0]!r} given more than once (I-JSON)", path)
            children = [(child, f"{path}.{name}") for name, child in value.items()]
        else:
            children = [(child, f"{path}[{n}]") for n, child in enumerate(value)]
        pending.extend((child, where, depth + 1) for child, where in reversed(children)
                       if isinstance(child, dict | list))


_KINDS = {"int": "an integer", "str": "a string", "float": "a number", "bool": "a boolean", "null": "null",
          "array": "an array", "object": "an object"}


def _kinds(names: str) -> str:
    words = [_KINDS.get(name, name) for name in names.split(" | ")]
    return " or ".join([", ".join(words[:-1]), words[-1]] if len(words) > 1 else words)


def _refuse_nul(value, path: str) -> None:
    """Refuse a NUL in any string kept (the database could not store it)."""
    if isinstance(value, str):
        if "\x00" in value:
            raise ReportError("contains a NUL character", path)
    elif isinstance(value, list):
        for n, item in enumerate(value):
            _refuse_nul(item, f"{path}[{n}]")
    elif isinstance(value, Struct):
        for field in msgspec.structs.fields(value):
            _refuse_nul(getattr(value, field.name), f"{path}.{field.encode_name}")


def _refusal(error: str, max_string: int) -> ReportError:
    """msgspec's validation error in the words of the other refusals, with its JSON path."""
    message, _, path = error.partition(" - at `")
    path = path.rstrip("`") or "$"
    if found := re.fullmatch(r"Object missing required field `(.+)`", message):
        return ReportError("missing", f"{path}.{found[1]}")
    if found := re.fullmatch(r"Expected `(.+)`, got `(\w+)`", message):
        return ReportError(f"must be {_kinds(found[1])}, not {_KINDS.get(found[2], found[2])}", path)
    if found := re.fullmatch(r"Expected `str` of length <= (\d+)", message):
        refusal = ReportTooLarge if int(found[1]) == max_string else ReportError
        return refusal(f"longer than {found[1]} characters", path)
    if re.fullmatch(r"Expected `str` of length >= 1", message):
        return ReportError("must not be empty", path)
    if re.fullmatch(r"Expected `int` [<>]= \d+|(Integer value|Number) out of range", message):
        return ReportError(f"must be an integer between 0 and {MAX_COUNT}", path)
    if found := re.fullmatch(r"Invalid enum value (.+)", message):
        return ReportError(f"unknown value {found[1]}", path)
    return ReportError(message, path)


class _Checker:
    """What the Structs cannot say: the limits on counts, and values that need parsing."""

    __slots__ = ("limits", "notes", "failure_details", "session_counts")

    def __init__(self, limits: Limits, notes: list[str]):
        self.limits = limits
        self.notes = notes
        self.failure_details = 0
        self.session_counts = 0

    def report(self, document, now: datetime | None) -> ParsedReport:
        if len(document.policies) > self.limits.max_policies:
            raise ReportTooLarge(f"more than {self.limits.max_policies} policies", "$.policies")
        start, end = self._date_range(document.date_range, now)
        if document.contact_info is None:
            self.notes.append("$.contact-info: missing")
        return ParsedReport(
            organization_name=_identifier(document.organization_name, "$.organization-name"),
            report_id=_identifier(document.report_id, "$.report-id"),
            contact_info=document.contact_info,
            start_datetime=start,
            end_datetime=end,
            policies=tuple([self._policy(item, f"$.policies[{n}]") for n, item in enumerate(document.policies)]),
            notes=tuple(self.notes),
        )

    def _date_range(self, dates, now: datetime | None) -> tuple[datetime, datetime]:
        start, end, span, seconds, zoneless = _dates(dates.start_datetime, dates.end_datetime)
        self.notes.extend(f"{path}: no zone offset, read as UTC" for path in zoneless)
        if seconds > self.limits.max_range_days * 86400:
            raise ReportError(f"covers more than {self.limits.max_range_days} days", "$.date-range")
        if start < EARLIEST:
            raise ReportError(f"starts before {EARLIEST:%Y-%m-%d}", "$.date-range.start-datetime")
        if now is not None and start > now + CLOCK_SKEW:
            raise ReportError("starts in the future", "$.date-range.start-datetime")
        if not ONE_DAY[0] <= span <= ONE_DAY[1]:
            self.notes.append("$.date-range: not one day")
        return start, end

    def _policy(self, item, path: str) -> ParsedPolicyBlock:
        policy = item.policy
        details = item.failure_details or ()
        self.failure_details += len(details)
        if self.failure_details > self.limits.max_failure_details:
            raise ReportTooLarge(f"more than {self.limits.max_failure_details} failure details",
                                 f"{path}.failure-details")
        summary = item.summary
        hostnames, addresses, failed = _scan(details)
        self.session_counts += summary.total_successful_session_count + summary.total_failure_session_count + failed
        if self.session_counts > MAX_COUNT:
            raise ReportError(f"the report's session counts add up to more than {MAX_COUNT}", path)
        mx_hosts = policy.mx_host if policy.mx_host is not None else policy.mx_host_pattern
        if isinstance(mx_hosts, str):
            mx_hosts = [mx_hosts]
        return ParsedPolicyBlock(
            policy_type=policy.policy_type,
            policy_domain=self._policy_domain(policy, path),
            policy_strings=tuple(policy.policy_string or ()),
            mx_hosts=tuple(map(str.lower, mx_hosts or ())),
            successful_session_count=summary.total_successful_session_count,
            failed_session_count=summary.total_failure_session_count,
            failure_details=_failure_details(details, hostnames, addresses, path),
        )

    def _policy_domain(self, policy, path: str) -> str | None:
        """The policy-domain of the block at `path`, normalised."""
        value = policy.policy_domain
        if value is None:
            if policy.policy_type != "no-policy-found":
                raise ReportError("missing", f"{path}.policy.policy-domain")
            return None
        try:
            domain = _normalize_domain(value)
        except InvalidName as error:
            raise ReportError(str(error), f"{path}.policy.policy-domain") from None
        if domain != value:
            self.notes.append(f"{path}.policy.policy-domain: {value!r} read as {domain}")
        return domain


def _identifier(value: str, path: str) -> str:
    if not value.strip():
        raise ReportError("must not be empty", path)
    return value


_START, _END = "$.date-range.start-datetime", "$.date-range.end-datetime"


@functools.lru_cache(maxsize=1024)
def _dates(start_text: str, end_text: str) -> tuple[datetime, datetime, timedelta, float, tuple[str, ...]]:
    """The date range's two ends in UTC, in order, its span (also in seconds) and the paths of the
    ends without a zone offset; kept, as a day's reports repeat their range."""
    start, start_zoneless = _datetime(start_text, _START)
    end, end_zoneless = _datetime(end_text, _END)
    if start > end:
        raise ReportError("start-datetime is after end-datetime", "$.date-range")
    span = end - start
    zoneless = tuple(path for path, missing in ((_START, start_zoneless), (_END, end_zoneless)) if missing)
    return start, end, span, span.total_seconds(), zoneless


def _datetime(text: str, path: str) -> tuple[datetime, bool]:
    """An RFC 3339 `date-time` (RFC 8460 section 4.4) in UTC, and whether it lacked its zone offset
    (then it is read as UTC).

    The grammar is checked first: fromisoformat alone also takes ISO 8601 forms no sender uses
    (basic `20260101T000000Z`, week dates); it checks the ranges of the fields.
    """
    found = _RFC3339_DATE_TIME.fullmatch(text)
    if not found:
        raise ReportError(f"not an RFC 3339 date-time: {text!r}", path)
    zoneless = found["zone"] is None
    try:
        parsed = datetime.fromisoformat(text.upper())
        return (parsed.replace(tzinfo=UTC) if zoneless else parsed.astimezone(UTC)), zoneless
    except ValueError:
        raise ReportError(f"not an RFC 3339 date-time: {text!r}", path) from None
    except OverflowError:  # a valid date-time whose UTC is outside years 1 to 9999
        raise ReportError(f"out of range: {text!r}", path) from None


def _scan(details: list[ParsedFailureDetail]) -> tuple[set[str | None], set[str | None], int]:
    """The distinct MX host names and addresses of a block's details, and the sum of their session counts.

    The hot loop of big reports, in one pass: details repeat a handful of host names, and the
    same sending and receiving addresses come back report after report.
    """
    hostnames, addresses, failed = set(), set(), 0
    for detail in details:
        hostnames.add(detail.receiving_mx_hostname)
        addresses.add(detail.sending_mta_ip)
        addresses.add(detail.receiving_ip)
        failed += detail.failed_session_count
    return hostnames, addresses, failed


def _failure_details(details: list[ParsedFailureDetail], hostnames: set[str | None], addresses: set[str | None],
                     path: str) -> tuple[ParsedFailureDetail, ...]:
    """When every address is IPv4 and every MX host name lower case (nearly always), the details
    are kept as decoded; else each is normalised, or refused.

    Set operations in C, each distinct name (from _scan) looked at once; `path` is the block's.
    """
    hostnames.discard(None)
    addresses.discard(None)
    if all(map(str.islower, hostnames)) and (addresses <= _IPV4_SEEN or _all_ipv4(addresses)):
        return tuple(details)
    return tuple([_normalised(detail, f"{path}.failure-details[{n}]") for n, detail in enumerate(details)])


_IPV4_SEEN: set[str] = set()  # addresses found to be IPv4 dotted-quads, at most _MAX_SEEN
_MAX_SEEN = 65_536


def _all_ipv4(addresses: set[str]) -> bool:
    """Whether each address is an IPv4 dotted-quad without leading zeros (section 4.4); those are kept."""
    new = addresses - _IPV4_SEEN
    if not all(map(is_dotted_quad, new)):
        return False
    if len(_IPV4_SEEN) > _MAX_SEEN:
        _IPV4_SEEN.clear()
    _IPV4_SEEN.update(new)
    return True


def _normalised(detail: ParsedFailureDetail, path: str) -> ParsedFailureDetail:
    hostname = detail.receiving_mx_hostname
    if hostname is not None:
        hostname = hostname.lower()
        if len(hostname) > MAX_NAME_LENGTH:  # some letters grow in lower case: "İ" becomes two characters
            raise ReportError(f"longer than {MAX_NAME_LENGTH} characters in lower case",
                              f"{path}.receiving-mx-hostname")
    return msgspec.structs.replace(
        detail,
        sending_mta_ip=_ip(detail.sending_mta_ip, f"{path}.sending-mta-ip"),
        receiving_ip=_ip(detail.receiving_ip, f"{path}.receiving-ip"),
        receiving_mx_hostname=hostname,
    )


def _ip(value: str | None, path: str) -> str | None:
    """The address in RFC 5952 form; IPv4 dotted-quad without leading zeros (section 4.4)."""
    if value is None:
        return None
    try:
        return normal_address(value)
    except ValueError:
        raise ReportError(f"not an IP address: {value!r}", path) from None
