"""What a review page, API call or command is asked to show: a date range and filters that combine.

Parsed at the edge from query parameters or options (strings); the first problem names its field (in English
Words, which the pages translate).
"""

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta

from stspolicy.base.words import words

POLICY_TYPES = ("sts", "tlsa", "no-policy-found")
# What failures group by; `organization` and `ip` name the reporting organisation and the sending MTA's address.
DIMENSIONS = ("day", "policy_type", "result_type", "mx", "org", "ip")
DEFAULT_DAYS = 30
MAX_DAYS = 3660  # ten years: more than any retention keeps
MAX_TEXT = 256  # an organisation name's column; MX names, result types and addresses are shorter


class FilterError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


@dataclass(frozen=True)
class Filters:
    """UTC days `since` to `until` (both included); each other field, when set, keeps only what matches it."""

    since: date
    until: date
    policy_type: str | None = None
    result_type: str | None = None
    mx: str | None = None
    org: str | None = None
    ip: str | None = None

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1

    @property
    def failures_only(self) -> bool:
        """Whether only failure details can answer (successful sessions have no result type, MX or address)."""
        return any((self.result_type, self.mx, self.ip))

    def narrowed(self, **values) -> "Filters":
        return replace(self, **values)

    def as_args(self) -> dict[str, str]:
        """The query parameters that give these filters back (parse_filters)."""
        args = {"since": self.since.isoformat(), "until": self.until.isoformat()}
        for name in FILTER_FIELDS:
            if value := getattr(self, name):
                args[name] = value
        return args


FILTER_FIELDS = ("policy_type", "result_type", "mx", "org", "ip")
PARAMETERS = ("since", "until", *FILTER_FIELDS)


def parse_filters(args: Mapping[str, str], today: date, default_days: int = DEFAULT_DAYS) -> Filters:
    """Filters from query parameters or options; without a range, the last `default_days` days up to `today`."""
    until = _day(args, "until") or today
    since = _day(args, "since") or until - timedelta(days=default_days - 1)
    if since > until:
        raise FilterError("since", words("must not be after until"))
    if (until - since).days >= MAX_DAYS:
        raise FilterError("since", words("a range of at most {days} days", days=MAX_DAYS))
    values = {}
    for name in FILTER_FIELDS:
        value = (args.get(name) or "").strip()
        if len(value) > MAX_TEXT or "\x00" in value:
            raise FilterError(name, words("at most {count} characters, no NUL", count=MAX_TEXT))
        values[name] = value or None
    if values["policy_type"] not in (None, *POLICY_TYPES):
        raise FilterError("policy_type", words("one of {names}", names=", ".join(POLICY_TYPES)))
    if values["mx"]:
        values["mx"] = values["mx"].lower().rstrip(".")
    return Filters(since, until, **values)


def parse_dimensions(text: str, allowed: tuple[str, ...] = DIMENSIONS) -> tuple[str, ...]:
    """`day,result_type`: the dimensions to group by, each once, in the order given."""
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in allowed]
    if not names or unknown or len(set(names)) != len(names):
        raise FilterError("by", words("a comma-separated list of distinct names from {names}",
                                      names=", ".join(allowed)))
    return names


def _day(args: Mapping[str, str], name: str) -> date | None:
    text = (args.get(name) or "").strip()
    if not text:
        return None
    try:
        if len(text) != 10:
            raise ValueError
        return date.fromisoformat(text)
    except ValueError:
        raise FilterError(name, words("a date as YYYY-MM-DD")) from None
