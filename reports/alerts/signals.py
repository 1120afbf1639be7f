"""What every rule is made of: its spec and parameters, and the signals it gives. Pure.

A `Signal` is one cause a rule found (a domain, one of its DNS names, an MX host, a reporting
organisation), with a `Part` for each domain it touches: signals with the same key become one
incident however many domains they touch.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

MAX_KEY_LENGTH = 300  # alert_incident.key


@dataclass(frozen=True)
class Parameter:
    name: str
    default: int
    minimum: int
    maximum: int
    label: str


@dataclass(frozen=True)
class RuleSpec:
    name: str
    title: str
    description: str
    parameters: tuple[Parameter, ...] = ()
    resolution_notice: bool = True  # good news and one-off events clear without a notice


@dataclass(frozen=True)
class Part:
    """What a signal says about one domain."""

    domain: str
    since: datetime
    lines: tuple[str, ...]
    evidence: dict


@dataclass(frozen=True)
class Signal:
    rule: str
    subject: str
    title: str
    since: datetime
    fix: str
    parts: tuple[Part, ...] = ()
    lines: tuple[str, ...] = ()  # about the cause itself, for every recipient
    evidence: dict = field(default_factory=dict)
    variant: str = ""  # what makes a new incident of the same subject (enforce-ready: the policy id)

    @property
    def key(self) -> str:
        key = ":".join(part for part in (self.rule, self.subject, self.variant) if part)
        # Subjects and variants may come from reports (an MX host name of 253 characters and a result type).
        if len(key) <= MAX_KEY_LENGTH:
            return key
        return f"{self.rule}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"
