"""MTA-STS policies (RFC 8461 section 3.2): validation, rendering, parsing, MX matching, ids.

Pure functions over plain values; no I/O.
"""

import difflib
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from stspolicy.policies.names import InvalidName, normalize_domain

MODES = ("enforce", "testing", "none")
MAX_AGE_LIMIT = 31557600  # RFC 8461 section 3.2: "maximum value of 31557600"
POLICY_ID = re.compile(r"^[A-Za-z0-9]{1,32}$")
NONE_MODE_MAX_AGE = 86400  # RFC 8461 section 8.3 suggests "a small max_age (e.g., one day)"
SHORTEST_ADVISED_MAX_AGE = 86400  # below a day, a sender's cached policy hardly outlasts a blocked refresh
MAX_MX_PATTERNS = 100  # our limit, far above any real MX set; keeps a policy file small

# sts-policy-field: name ":" *WSP value, then optional trailing WSP (section 3.2 ABNF).
_FIELD_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,31}):[ \t]*(.*?)[ \t]*$")
# sts-policy-ext-value: visible characters (UTF-8 allowed), inner spaces, no controls.
_FIELD_VALUE = re.compile(r"^[^\x00-\x20\x7f](?:[^\x00-\x1f\x7f]*[^\x00-\x20\x7f])?$")
_MAX_AGE_VALUE = re.compile(r"^[0-9]{1,10}$")


class PolicyError(ValueError):
    """A policy that RFC 8461 does not allow; `field` names the offending field."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Policy:
    mode: str
    mx_patterns: tuple[str, ...]
    max_age: int


def normalize_mx_pattern(pattern: str, *, strict: bool = False) -> str:
    """Return an mx pattern in A-label, lower-case form or raise PolicyError.

    A pattern is a host name, or `*.` and a host name: the wildcard may only be the whole
    leftmost label (RFC 8461 section 3.2, matching per RFC 6125 section 6.4.3). Operator
    input may use U-labels and a trailing dot; `strict` (a served policy) allows neither.
    """
    text = pattern.strip()
    if text.endswith("."):
        if strict:
            raise PolicyError("mx", f"invalid mx pattern {pattern!r}: no trailing dot allowed")
        text = text[:-1]
    wildcard = text.startswith("*.")
    rest = text[2:] if wildcard else text
    if "*" in rest:
        raise PolicyError(
            "mx", f"invalid mx pattern {pattern!r}: a wildcard may only be the whole leftmost label"
        )
    if strict and not rest.isascii():
        raise PolicyError("mx", f"invalid mx pattern {pattern!r}: U-labels are not allowed, use A-labels")
    try:
        host = normalize_domain(rest)
    except InvalidName as error:
        raise PolicyError("mx", f"invalid mx pattern {pattern!r}: {_reason(error)}") from None
    return "*." + host if wildcard else host


def _reason(error: InvalidName) -> str:
    return str(error).split(": ", 1)[-1]


def make_policy(mode: str, mx_patterns: list[str] | tuple[str, ...], max_age: int | str) -> Policy:
    """Validate operator input into a Policy: patterns normalised, duplicates collapsed."""
    if mode not in MODES:
        raise PolicyError("mode", f"invalid mode {mode!r}: must be one of {', '.join(MODES)}")
    max_age = _parse_max_age(max_age)
    patterns = []
    for pattern in mx_patterns:
        normal = normalize_mx_pattern(pattern)
        if normal not in patterns:
            patterns.append(normal)
    if not patterns and mode != "none":
        raise PolicyError("mx", f"mode {mode} needs at least one mx pattern")
    if len(patterns) > MAX_MX_PATTERNS:
        raise PolicyError("mx", f"{len(patterns)} mx patterns: at most {MAX_MX_PATTERNS} are allowed")
    return Policy(mode=mode, mx_patterns=tuple(patterns), max_age=max_age)


def _parse_max_age(value: int | str) -> int:
    if isinstance(value, bool):
        raise PolicyError("max_age", f"invalid max_age {value!r}: not an integer")
    if isinstance(value, str):
        text = value.strip()
        if not _MAX_AGE_VALUE.match(text):
            raise PolicyError("max_age", f"invalid max_age {value!r}: not a non-negative integer")
        value = int(text)
    if not isinstance(value, int):
        raise PolicyError("max_age", f"invalid max_age {value!r}: not an integer")
    if not 0 <= value <= MAX_AGE_LIMIT:
        raise PolicyError("max_age", f"invalid max_age {value}: must be between 0 and {MAX_AGE_LIMIT}")
    return value


@dataclass(frozen=True)
class PolicyWarning:
    """Something RFC 8461 allows but advises against: the policy is published, the admin is told."""

    field: str
    message: str

    def as_dict(self) -> dict:
        return {"field": self.field, "message": self.message}


def policy_warnings(domain: str, policy: Policy) -> list[PolicyWarning]:
    """The warnings about `domain`'s `policy`: a max_age below one day, an mx pattern for every host."""
    warnings = []
    if policy.mode != "none" and policy.max_age < SHORTEST_ADVISED_MAX_AGE:
        warnings.append(PolicyWarning("max_age", (
            f"max_age {policy.max_age} is below one day: RFC 8461 section 3.2 advises weeks or more, so that "
            "senders keep the policy across an attacker's blocking of its refresh")))
    everything = f"*.{domain}"
    if everything in policy.mx_patterns:
        warnings.append(PolicyWarning("mx", (
            f"mx pattern {everything} matches every host of {domain}: any of them with a certificate becomes "
            "a valid MX (RFC 8461 section 10.4); list the MX hosts instead")))
    return warnings


@dataclass(frozen=True)
class MxRemoval:
    """MX patterns an edit takes out of a policy, and until when senders may still apply the policy
    that lists them: its max_age from the last time it was served, plus the `_mta-sts` TXT TTL
    (RFC 8461 section 8.1: "ensure that old policies continue to work")."""

    removed: tuple[str, ...]
    old_policy_id: str
    old_policy_until: datetime
    old_max_age: int
    txt_ttl: int
    safe_policy: Policy  # the edit with the removed patterns still in: serve this now, remove them later

    def message(self) -> str:
        return (f"{', '.join(self.removed)} leave{'s' if len(self.removed) == 1 else ''} the policy, but senders that "
                f"cached policy id {self.old_policy_id} may apply it until {self.old_policy_until:%Y-%m-%d %H:%M} UTC "
                f"(its max_age {self.old_max_age} s plus the _mta-sts TXT TTL {self.txt_ttl} s): until then they "
                "accept no MX host it does not list. Safe sequence: add the new MX hosts first, keep the old ones "
                "in the policy and reachable, and remove them after that date (schedule the removal)")

    def as_dict(self) -> dict:
        return {"removed": list(self.removed), "old_policy_id": self.old_policy_id,
                "old_policy_until": self.old_policy_until.isoformat(), "message": self.message()}


def mx_removal(old: Policy, old_policy_id: str, new: Policy, served_until: datetime, txt_ttl: int) -> MxRemoval | None:
    """What an edit from `old` (served until `served_until`) to `new` takes out of the MX list, if
    senders applying `old` could be hurt by it; None when nothing is removed or either side is `none`."""
    removed = tuple(pattern for pattern in old.mx_patterns if pattern not in new.mx_patterns)
    if not removed or "none" in (old.mode, new.mode):
        return None
    return MxRemoval(
        removed=removed, old_policy_id=old_policy_id,
        old_policy_until=served_until + timedelta(seconds=old.max_age + txt_ttl),
        old_max_age=old.max_age, txt_ttl=txt_ttl,
        safe_policy=Policy(new.mode, (*new.mx_patterns, *removed), new.max_age),
    )


def render_policy(policy: Policy) -> str:
    """The policy file body: ASCII, one field per line, CRLF after every line (RFC 8461 section 3.2)."""
    lines = ["version: STSv1", f"mode: {policy.mode}"]
    lines += [f"mx: {pattern}" for pattern in policy.mx_patterns]
    lines.append(f"max_age: {policy.max_age}")
    return "".join(line + "\r\n" for line in lines)


def parse_policy(text: str) -> Policy:
    """Parse a policy file strictly by the RFC 8461 grammar, as a sender does.

    LF and CRLF both end a line (erratum 6253); a bare CR, a blank line or a line that is
    not `name: value` makes the policy invalid. Unknown fields are ignored, and for
    version, mode and max_age the first occurrence wins (section 3.2).
    """
    body = text[:-1] if text.endswith("\n") else text
    if not body:
        raise PolicyError("policy", "empty policy")
    fields: dict[str, str] = {}
    mx_patterns: list[str] = []
    for number, line in enumerate(body.split("\n"), start=1):
        if line.endswith("\r"):
            line = line[:-1]
        match = _FIELD_LINE.match(line)
        if not match or not _FIELD_VALUE.match(match.group(2)):
            raise PolicyError("policy", f"line {number} is not a valid policy field: {line!r}")
        name, value = match.groups()
        if name == "mx":
            mx_patterns.append(normalize_mx_pattern(value, strict=True))
        else:
            fields.setdefault(name, value)
    for required in ("version", "mode", "max_age"):
        if required not in fields:
            raise PolicyError(required, f"policy has no {required} field")
    if fields["version"] != "STSv1":
        raise PolicyError("version", f"invalid version {fields['version']!r}: must be STSv1")
    if fields["mode"] not in MODES:
        raise PolicyError("mode", f"invalid mode {fields['mode']!r}: must be one of {', '.join(MODES)}")
    max_age = _parse_max_age(fields["max_age"])
    if not mx_patterns and fields["mode"] != "none":
        raise PolicyError("mx", f"mode {fields['mode']} needs at least one mx pattern")
    return Policy(mode=fields["mode"], mx_patterns=tuple(mx_patterns), max_age=max_age)


def diff_policies(old_text: str, new_text: str) -> list[tuple[str, str]]:
    """Line diff of two policy files as (mark, line): "-" removed, "+" added, " " kept."""
    lines = difflib.ndiff(old_text.splitlines(), new_text.splitlines())
    return [(line[0], line[2:]) for line in lines if line[0] != "?"]


def mx_pattern_matches(pattern: str, mx_host: str) -> bool:
    """Whether an MX host name matches a policy mx pattern (RFC 8461 section 4.1).

    `*.example.com` matches exactly one extra leftmost label; comparison ignores case
    and a trailing dot on the MX host.
    """
    host = mx_host.lower().rstrip(".")
    pattern = pattern.lower()
    if pattern.startswith("*."):
        label, dot, parent = host.partition(".")
        return bool(label) and bool(dot) and parent == pattern[2:]
    return host == pattern


def next_policy_id(previous: str | None, now: datetime) -> str:
    """A policy id greater than `previous`: the UTC time as YYYYMMDDhhmmss plus a 2-digit counter.

    Sixteen digits, so ids compare the same as strings and as numbers; more than 100
    changes in a second, or a clock that steps back, continue from the previous id.
    """
    stamp = int(now.astimezone(UTC).strftime("%Y%m%d%H%M%S")) * 100
    if previous and previous.isdigit() and len(previous) == 16:
        stamp = max(stamp, int(previous) + 1)
    return str(stamp)
