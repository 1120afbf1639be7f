"""TLS-RPT reports (RFC 8460 section 4) from JSON bytes to typed objects.

Strict where the RFC is: the required members, their JSON types, non-negative integer
counts, RFC 3339 dates, I-JSON (UTF-8, no duplicate member names). Tolerant of what
real senders do, each tolerance noted with the sender it comes from; a tolerated
deviation is kept in `Report.notes`. Every error names its JSON path. Pure.
"""

import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stspolicy.names import InvalidName, normalize_domain

from .payload import Limits, ReportError, ReportTooLarge

POLICY_TYPES = ("sts", "tlsa", "no-policy-found")
MAX_COUNT = 2**53 - 1  # I-JSON (RFC 7493 section 2.2): integers beyond this lose precision
MAX_ID_LENGTH = 256  # organization-name and report-id form the unique key, which an index must hold
MAX_NAME_LENGTH = 253
_DETAIL_TEXTS = ("receiving-mx-helo", "additional-information", "failure-reason-code")
EARLIEST = datetime(2015, 1, 1, tzinfo=UTC)  # before the first TLS-RPT drafts
CLOCK_SKEW = timedelta(days=2)


@dataclass(frozen=True, slots=True)
class FailureDetail:
    result_type: str
    failed_session_count: int
    sending_mta_ip: str | None = None
    receiving_ip: str | None = None
    receiving_mx_hostname: str | None = None
    receiving_mx_helo: str | None = None
    additional_information: str | None = None
    failure_reason_code: str | None = None


@dataclass(frozen=True, slots=True)
class PolicyResult:
    """One element of `policies`: the policy applied, its summary and failure details."""

    policy_type: str
    policy_domain: str | None
    policy_strings: tuple[str, ...]
    mx_hosts: tuple[str, ...]
    successful_session_count: int
    failed_session_count: int
    failure_details: tuple[FailureDetail, ...]


@dataclass(frozen=True)
class Report:
    organization_name: str
    report_id: str
    contact_info: str | None
    start_datetime: datetime
    end_datetime: datetime
    policies: tuple[PolicyResult, ...]
    notes: tuple[str, ...] = ()

    @property
    def day(self):
        """The UTC day the report is about: reports cover one UTC day (section 4.4)."""
        return self.start_datetime.astimezone(UTC).date()


class _Object(dict):
    """A JSON object that remembers member names given more than once."""

    duplicates: tuple[str, ...] = ()


def _object_pairs(pairs):
    obj = _Object(pairs)
    if len(obj) != len(pairs):
        seen = set()
        obj.duplicates = tuple(key for key, _ in pairs if key in seen or seen.add(key))
    return obj


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def load_json(data: bytes, limits: Limits) -> tuple[dict, list[str]]:
    """Decode I-JSON bytes into Python values, within the value-count and depth limits.

    Duplicate member names are found without a Python hook per object (which costs more
    than the parse): outside strings a `:` only separates a member name from its value,
    so a document without duplicates has exactly as many as its objects have members.
    Only when the counts differ is it parsed again to find where.
    """
    notes = []
    if data.startswith(b"\xef\xbb\xbf"):
        notes.append("UTF-8 byte order mark removed")
        data = data[3:]
    values = data.count(b",") + data.count(b"{") + data.count(b"[")
    if values > limits.max_json_values:
        raise ReportTooLarge(f"more than {limits.max_json_values} JSON values")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ReportError(f"not UTF-8 (byte {error.start})") from None
    document = _loads(text, None)
    if not isinstance(document, dict):
        raise ReportError("a report must be a JSON object")
    members = _walk(document, limits.max_depth)
    if "\\u" in text or text.count(":") != members:
        document = _loads(text, _object_pairs)  # escapes can hide a `:`; or there is a duplicate
    return document, notes


def _loads(text: str, object_pairs_hook):
    try:
        return json.loads(text, object_pairs_hook=object_pairs_hook, parse_constant=_no_constant)
    except RecursionError:
        raise ReportError("nested too deeply") from None
    except ValueError as error:
        raise ReportError(f"not JSON: {error}") from None


def _walk(document: dict, max_depth: int) -> int:
    """Check the nesting depth; return the members of all objects plus the `:` inside names and strings."""
    level, depth, count = [document], 1, 0
    while level:
        if depth > max_depth:
            raise ReportError(f"nested deeper than {max_depth} levels")
        below = []
        for value in level:
            if type(value) is dict:
                count += len(value)
                for name, child in value.items():
                    count += name.count(":")
                    if type(child) is str:
                        count += child.count(":")
                    elif type(child) is dict or type(child) is list:
                        below.append(child)
            else:
                for child in value:
                    if type(child) is str:
                        count += child.count(":")
                    elif type(child) is dict or type(child) is list:
                        below.append(child)
        level, depth = below, depth + 1
    return count


DEFAULT_LIMITS = Limits()


def parse_report(data: bytes, limits: Limits = DEFAULT_LIMITS, now: datetime | None = None) -> Report:
    """Parse the JSON of one report; raises ReportError naming the JSON path at fault.

    `now` bounds the date range from above (reports are about the past); None skips that check.
    """
    document, notes = load_json(data, limits)
    return _Reader(limits, notes).report(document, now)


class _Reader:
    def __init__(self, limits: Limits, notes: list[str]):
        self.limits = limits
        self.notes = notes
        self.failure_details = 0

    def report(self, obj: dict, now: datetime | None) -> Report:
        self._no_duplicates(obj, "$")
        start, end = self._date_range(self._member(obj, "$", "date-range", dict), now)
        policies = self._member(obj, "$", "policies", list)
        if len(policies) > self.limits.max_policies:
            raise ReportTooLarge(f"more than {self.limits.max_policies} policies", "$.policies")
        return Report(
            organization_name=self._identifier(obj, "organization-name"),
            report_id=self._identifier(obj, "report-id"),
            contact_info=self._contact_info(obj),
            start_datetime=start,
            end_datetime=end,
            policies=tuple(self._policy(item, f"$.policies[{n}]") for n, item in enumerate(policies)),
            notes=tuple(self.notes),
        )

    def _identifier(self, obj: dict, name: str) -> str:
        value = self._string(obj, "$", name)
        if not value.strip():
            raise ReportError("must not be empty", f"$.{name}")
        if len(value) > MAX_ID_LENGTH:
            raise ReportError(f"longer than {MAX_ID_LENGTH} characters", f"$.{name}")
        return value

    def _contact_info(self, obj: dict) -> str | None:
        # Postfix senders using sys4 tlsrpt-reporter send null or leave it out.
        value = self._string(obj, "$", "contact-info", required=False)
        if value is None:
            self.notes.append("$.contact-info: missing")
        return value

    def _date_range(self, obj: dict, now: datetime | None) -> tuple[datetime, datetime]:
        self._no_duplicates(obj, "$.date-range")
        start = self._datetime(obj, "$.date-range", "start-datetime")
        end = self._datetime(obj, "$.date-range", "end-datetime")
        if start > end:
            raise ReportError("start-datetime is after end-datetime", "$.date-range")
        if end - start > timedelta(days=self.limits.max_range_days):
            raise ReportError(f"covers more than {self.limits.max_range_days} days", "$.date-range")
        if start < EARLIEST:
            raise ReportError(f"starts before {EARLIEST:%Y-%m-%d}", "$.date-range.start-datetime")
        if now is not None and start > now + CLOCK_SKEW:
            raise ReportError("starts in the future", "$.date-range.start-datetime")
        # Google and Microsoft end the day at 23:59:59Z, Mail.ru at the next midnight: both are one day.
        if not timedelta(hours=23, minutes=59) <= end - start <= timedelta(hours=24):
            self.notes.append("$.date-range: not one day")
        return start, end

    def _datetime(self, obj: dict, path: str, name: str) -> datetime:
        text = self._string(obj, path, name)
        try:
            # RFC 3339 allows a lower-case t and z.
            value = datetime.fromisoformat(text.upper())
        except ValueError:
            raise ReportError(f"not an RFC 3339 date-time: {text!r}", f"{path}.{name}") from None
        if value.tzinfo is None:
            raise ReportError("date-time without a time zone", f"{path}.{name}")
        return value.astimezone(UTC)

    def _policy(self, item, path: str) -> PolicyResult:
        if not isinstance(item, dict):
            raise ReportError("must be an object", path)
        self._no_duplicates(item, path)
        policy = self._member(item, path, "policy", dict)
        ppath = f"{path}.policy"
        self._no_duplicates(policy, ppath)
        policy_type = self._string(policy, ppath, "policy-type")
        if policy_type not in POLICY_TYPES:
            raise ReportError(f"unknown policy-type {policy_type!r}", f"{ppath}.policy-type")
        summary = self._member(item, path, "summary", dict)
        spath = f"{path}.summary"
        self._no_duplicates(summary, spath)
        # Reports with no failures often leave out failure-details altogether.
        details = self._member(item, path, "failure-details", list, required=False) or []
        self.failure_details += len(details)
        if self.failure_details > self.limits.max_failure_details:
            raise ReportTooLarge(f"more than {self.limits.max_failure_details} failure details",
                                 f"{path}.failure-details")
        return PolicyResult(
            policy_type=policy_type,
            policy_domain=self._policy_domain(policy, ppath, policy_type),
            policy_strings=self._policy_strings(policy, ppath),
            mx_hosts=self._mx_hosts(policy, ppath),
            successful_session_count=self._count(summary, spath, "total-successful-session-count"),
            failed_session_count=self._count(summary, spath, "total-failure-session-count"),
            failure_details=tuple(
                self._failure_detail(detail, f"{path}.failure-details[{n}]") for n, detail in enumerate(details)
            ),
        )

    def _policy_domain(self, policy: dict, path: str, policy_type: str) -> str | None:
        # sys4 tlsrpt-reporter leaves policy-domain out of no-policy-found blocks.
        value = self._string(policy, path, "policy-domain", required=policy_type != "no-policy-found")
        if value is None:
            return None
        try:
            domain = normalize_domain(value)
        except InvalidName as error:
            raise ReportError(str(error), f"{path}.policy-domain") from None
        if domain != value:
            self.notes.append(f"{path}.policy-domain: {value!r} read as {domain}")
        return domain

    def _policy_strings(self, policy: dict, path: str) -> tuple[str, ...]:
        # Microsoft leaves policy-string out of sts blocks with sts-policy-fetch-error.
        values = self._member(policy, path, "policy-string", list, required=False) or []
        return tuple(self._text(value, f"{path}.policy-string[{n}]") for n, value in enumerate(values))

    def _mx_hosts(self, policy: dict, path: str) -> tuple[str, ...]:
        # The RFC's example has one string; Google and tlsrpt-reporter send a list;
        # some senders name the member `mx-host-pattern` after the schema's wording.
        name = "mx-host" if "mx-host" in policy else "mx-host-pattern"
        value = policy.get(name)
        if value is None:
            return ()
        values = value if isinstance(value, list) else [value]
        return tuple(self._name(item, f"{path}.{name}") for item in values)

    def _failure_detail(self, detail, path: str) -> FailureDetail:
        # The hot loop of big reports: plain checks first, the path-naming ones only on a problem.
        if not isinstance(detail, dict):
            raise ReportError("must be an object", path)
        self._no_duplicates(detail, path)
        get = detail.get
        result_type, count = get("result-type"), get("failed-session-count")
        if type(result_type) is not str or not 0 < len(result_type) <= 64 or "\x00" in result_type:
            self._string(detail, path, "result-type")
            raise ReportError("must be 1 to 64 characters", f"{path}.result-type")
        if type(count) is not int or not 0 <= count <= MAX_COUNT:
            self._count(detail, path, "failed-session-count")
        texts = [get(name) for name in _DETAIL_TEXTS]
        for name, value in zip(_DETAIL_TEXTS, texts, strict=True):
            if value is not None and (type(value) is not str or len(value) > self.limits.max_string
                                      or "\x00" in value):
                self._string(detail, path, name)
        hostname = get("receiving-mx-hostname")
        return FailureDetail(
            result_type=result_type,
            failed_session_count=count,
            # Microsoft and Mail.ru send sts-policy-fetch-error details without addresses.
            sending_mta_ip=self._ip(get("sending-mta-ip"), path, "sending-mta-ip"),
            receiving_ip=self._ip(get("receiving-ip"), path, "receiving-ip"),
            receiving_mx_hostname=None if hostname is None else self._name(hostname, f"{path}.receiving-mx-hostname"),
            receiving_mx_helo=texts[0],
            additional_information=texts[1],
            failure_reason_code=texts[2],
        )

    def _ip(self, value, path: str, name: str) -> str | None:
        """The address in RFC 5952 form; IPv4 dotted-quad without leading zeros (section 4.4)."""
        if value is None:
            return None
        try:
            socket.inet_pton(socket.AF_INET, value)  # refuses leading zeros, as the section 4.4 ABNF does
            return value
        except (OSError, TypeError, ValueError):
            pass
        try:
            return socket.inet_ntop(socket.AF_INET6, socket.inet_pton(socket.AF_INET6, value))
        except (OSError, TypeError, ValueError):
            text = self._text(value, f"{path}.{name}")
            raise ReportError(f"not an IP address: {text!r}", f"{path}.{name}") from None

    def _optional_name(self, obj: dict, path: str, name: str) -> str | None:
        value = obj.get(name)
        return None if value is None else self._name(value, f"{path}.{name}")

    def _name(self, value, path: str) -> str:
        text = self._text(value, path)
        if len(text) > MAX_NAME_LENGTH:
            raise ReportError(f"longer than {MAX_NAME_LENGTH} characters", path)
        return text.lower()

    def _member(self, obj: dict, path: str, name: str, kind: type, required: bool = True):
        value = obj.get(name)
        if value is None:
            if required:
                raise ReportError("missing", f"{path}.{name}")
            return None
        if not isinstance(value, kind):
            raise ReportError(f"must be {_KIND_NAMES[kind]}, not {_json_type(value)}", f"{path}.{name}")
        return value

    def _string(self, obj: dict, path: str, name: str, required: bool = True) -> str | None:
        value = self._member(obj, path, name, str, required)
        return None if value is None else self._text(value, f"{path}.{name}")

    def _text(self, value, path: str) -> str:
        if not isinstance(value, str):
            raise ReportError(f"must be a string, not {_json_type(value)}", path)
        if len(value) > self.limits.max_string:
            raise ReportTooLarge(f"string longer than {self.limits.max_string} characters", path)
        if "\x00" in value:
            raise ReportError("contains a NUL character", path)
        return value

    def _count(self, obj: dict, path: str, name: str) -> int:
        value = self._member(obj, path, name, object)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ReportError(f"must be an integer, not {_json_type(value)}", f"{path}.{name}")
        if not 0 <= value <= MAX_COUNT:
            raise ReportError(f"must be between 0 and {MAX_COUNT}", f"{path}.{name}")
        return value

    @staticmethod
    def _no_duplicates(obj: dict, path: str) -> None:
        if getattr(obj, "duplicates", ()):
            raise ReportError(f"member {obj.duplicates[0]!r} given more than once (I-JSON)", path)


_KIND_NAMES = {dict: "an object", list: "an array", str: "a string", object: "present"}


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
