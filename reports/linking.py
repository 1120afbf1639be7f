"""Which hosted domain, and which of its policy versions, each policy block of a report is about.

Reports about the same few domains arrive all day while the hosted domains seldom change,
so each process keeps what it looked up. What it keeps is dropped whenever the policy
versions change (the fingerprint the policy snapshot polls), checked at most every
SNAPSHOT_REFRESH_SECONDS: a report sees a change as soon as the well-known endpoint
does. With 0, every report looks everything up afresh.
"""

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from reports.models import MATCHED, MATCHES_NONE, NOT_COMPARED, UNPARSEABLE
from reports.parsing import schema
from stspolicy.policies.models import Domain, PolicyVersion
from stspolicy.policies.queries import policy_fingerprint
from stspolicy.policies.rules import PolicyError, mx_pattern_matches, parse_policy

_MAX_KEPT = 10_000  # names kept per process; reports about ever new names cannot grow it further


@dataclass(frozen=True)
class Version:
    id: int
    policy: tuple  # (mode, max_age, (sorted mx patterns))
    created_at: datetime


@dataclass(frozen=True)
class Hosted:
    """A hosted domain as the ingestion needs it: id, name and its versions, newest first."""

    id: int
    name: str
    versions: tuple[Version, ...] = ()


_VERSIONS_BY_NAME = (
    select(Domain.id, Domain.name, PolicyVersion.id, PolicyVersion.mode, PolicyVersion.max_age,
           PolicyVersion.mx_patterns, PolicyVersion.created_at)
    .join(PolicyVersion, PolicyVersion.domain_id == Domain.id)
    .where(Domain.name.in_(bindparam("names", expanding=True)))
    .order_by(PolicyVersion.id.desc())
)
_LATEST_MX_PATTERNS = (
    select(Domain.id, Domain.name, PolicyVersion.mx_patterns)
    .join(PolicyVersion, PolicyVersion.domain_id == Domain.id)
    .where(PolicyVersion.id.in_(select(func.max(PolicyVersion.id)).group_by(PolicyVersion.domain_id)))
)


class HostedDomains:
    """What one process looked up: domains by name, and (for DANE blocks) by MX host.

    Threads share it: a look-up adds to the dicts it started from, and a change replaces
    them, so an answer read before a change never lands in the dicts kept after it.
    """

    def __init__(self, refresh_seconds: float = 0, clock: Callable[[], float] = time.monotonic):
        self._refresh_seconds = refresh_seconds
        self._clock = clock  # seconds; tests move their own
        self._fingerprint: tuple | None = None
        self._checked_at = float("-inf")
        self._by_name: dict[str, Hosted | None] = {}
        self._by_mx: dict[str, tuple[Hosted, ...] | None] = {}

    def links(self, session: Session, report: schema.ParsedReport, fresh: bool = False) -> list[tuple[Hosted, ...]]:
        """The hosted domains each policy block is about (none: unhosted), by policy-domain; `fresh` skips
        what was kept. The block is stored linked to the first; the review's rollups count it for each.

        For DANE the policy-domain may be the MX host (the TLSA base domain, RFC 8460 section
        4.3.2.1), so for a tlsa block a name we do not host is tried against mx patterns: those of
        the domains the report's other blocks are about, else ours, so that a report sent to the
        MX host's own address ("host TLSRPT") counts for every hosted domain using that MX.
        """
        self._check(session)
        by_name, by_mx = ({}, {}) if fresh else (self._by_name, self._by_mx)
        names = {result.policy_domain for result in report.policies if result.policy_domain}
        domains = _answers(by_name, names, lambda missing: _load_by_name(session, missing))
        links = [domains.get(result.policy_domain) for result in report.policies]
        hosts = {r.policy_domain for r, d in zip(report.policies, links, strict=True)
                 if d is None and r.policy_domain and r.policy_type == "tlsa"}
        named = list({domain.id: domain for domain in links if domain is not None}.values())
        users = {host: tuple(domain for domain in named if _serves(domain, host)) for host in hosts}
        if others := {host for host, found in users.items() if not found}:
            users |= _answers(by_mx, others, lambda missing: _load_by_mx(session, missing))
        return [(link,) if link else users.get(result.policy_domain) or ()
                for result, link in zip(report.policies, links, strict=True)]

    def _check(self, session: Session) -> None:
        now = self._clock()
        if now - self._checked_at < self._refresh_seconds:
            return
        fingerprint = policy_fingerprint(session) if self._refresh_seconds > 0 else None
        if fingerprint is None or fingerprint != self._fingerprint:
            self._by_name, self._by_mx = {}, {}
        self._fingerprint, self._checked_at = fingerprint, now


def _answers(kept: dict, keys: set[str], load) -> dict:
    """The answer for each key: the one kept, else loaded (and kept). Read once, so that
    another thread emptying `kept` meanwhile cannot change them."""
    answers = {key: kept.get(key, _UNKNOWN) for key in keys}
    if missing := {key for key, answer in answers.items() if answer is _UNKNOWN}:
        found = dict.fromkeys(missing) | load(missing)
        if len(kept) > _MAX_KEPT:
            kept.clear()
        kept.update(found)
        answers |= found
    return answers


_UNKNOWN = object()


def _load_by_name(session: Session, names: set[str]) -> dict[str, Hosted]:
    versions: dict[tuple[int, str], list[Version]] = {}
    for domain_id, name, version_id, mode, max_age, patterns, created_at in session.connection().execute(
        _VERSIONS_BY_NAME, {"names": sorted(names)}
    ):
        versions.setdefault((domain_id, name), []).append(Version(version_id, (mode, max_age, tuple(sorted(patterns))),
                                                                  created_at))
    return {name: Hosted(domain_id, name, tuple(found)) for (domain_id, name), found in versions.items()}


def _serves(domain: Hosted, host: str) -> bool:
    """Whether an mx pattern of the domain's latest version matches `host`."""
    return bool(domain.versions) and any(mx_pattern_matches(pattern, host) for pattern in domain.versions[0].policy[2])


def _load_by_mx(session: Session, hosts: set[str]) -> dict[str, tuple[Hosted, ...]]:
    """The domains whose latest mx patterns match each host, by name."""
    found: dict[str, list[Hosted]] = {}
    for domain_id, name, patterns in session.connection().execute(_LATEST_MX_PATTERNS):
        for host in hosts:
            if any(mx_pattern_matches(pattern, host) for pattern in patterns):
                found.setdefault(host, []).append(Hosted(domain_id, name))
    return {host: tuple(sorted(domains, key=lambda domain: domain.name)) for host, domains in found.items()}


def match_version(result: schema.ParsedPolicyBlock, domain: Hosted | None, end: datetime) -> tuple[int | None, str]:
    """The policy version whose text an sts block applied (its policy-string, RFC 8460 section 4.4), and how
    it compared."""
    if result.policy_type != "sts" or domain is None or not result.policy_strings:
        return None, NOT_COMPARED
    key = _applied_policy(result.policy_strings)
    if key is None:
        return None, UNPARSEABLE
    matching = [version for version in domain.versions if version.policy == key]
    if not matching:
        return None, MATCHES_NONE
    # The newest that was already served when the report period ended, else the newest.
    served = [version for version in matching if version.created_at <= end]
    return (served or matching)[0].id, MATCHED


@functools.lru_cache(maxsize=1024)
def _applied_policy(lines: tuple[str, ...]) -> tuple | None:
    """(mode, max_age, sorted mx patterns) of the policy text a sender applied; senders repeat it."""
    try:
        applied = parse_policy("\n".join(lines))
    except PolicyError:
        return None
    return applied.mode, applied.max_age, tuple(sorted(applied.mx_patterns))
