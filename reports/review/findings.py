"""Findings: what the stored reports, our policy versions and our DNS checks say together, each with a fix.

Values in, findings out; `finding_queries` gathers the values. A finding is about one hosted
domain and one cause (an MX host and a result type, a policy version, a policy text), over
the time the reports show it. Its `side` says where the fault likely lies: the receiver's (ours)
when two or more organisations report the same result type for the same MX, the sender's
when one organisation alone does. Report fields are the senders' words, kept verbatim here:
escape them when rendering. A fix is `Words`: English, translated where it is shown. Pure.
"""

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property

from cryptography import x509

from reports.review.result_types import describe
from stspolicy.base.words import Words, plural_words, words
from stspolicy.dns.dane import TlsaError, TlsaRecord, dane_check, parse_tlsa, unusable_reason
from stspolicy.policies.rules import PolicyError, mx_pattern_matches, parse_policy

KINDS = ("stale-sts-policy", "unknown-sts-policy", "mx-not-in-policy", "tlsa-mismatch", "dnssec-invalid",
         "starttls-not-supported", "certificate-problem", "policy-fetch-failure")
RECEIVER, SENDER = "receiver", "sender"
KIND_OF_RESULT = {
    "starttls-not-supported": "starttls-not-supported",
    "certificate-expired": "certificate-problem", "certificate-host-mismatch": "certificate-problem",
    "certificate-not-trusted": "certificate-problem", "validation-failure": "certificate-problem",
    "tlsa-invalid": "tlsa-mismatch", "dane-required": "tlsa-mismatch",
    "dnssec-invalid": "dnssec-invalid",
    "sts-policy-fetch-error": "policy-fetch-failure", "sts-policy-invalid": "policy-fetch-failure",
    "sts-webpki-invalid": "policy-fetch-failure",
}
# A sender reads the new id when it next delivers: a report that begins this long after a version
# was superseded and still applies it shows a stale cache, not the change's own day.
STALE_AFTER = timedelta(days=1)
LISTED = 5  # organisations, IPs, reasons named in a fix or kept in the evidence


@dataclass(frozen=True)
class Finding:
    kind: str
    domain: str
    side: str  # receiver or sender
    since: datetime
    until: datetime
    evidence: Mapping  # JSON-serialisable
    fix: str  # Words when correlated, the English text when read back from the store

    @property
    def subject(self) -> str:
        """What the finding is about within its domain and kind, the same while it lasts: the MX host (and the
        result type of a certificate problem or a policy fetch failure), the policy id senders keep, or a digest
        of the policy text none of our versions has."""
        if self.kind == "stale-sts-policy":
            return self.evidence["version"]["policy_id"]
        if self.kind == "unknown-sts-policy":
            text = json.dumps(self.evidence["policy_string"]).encode()
            return "policy sha256 " + hashlib.sha256(text).hexdigest()[:32]
        return " ".join(part for part in (self.evidence.get("mx_host"), self.evidence.get("result_type")) if part)

    def as_dict(self) -> dict:
        return {"kind": self.kind, "domain": self.domain, "side": self.side, "since": self.since.isoformat(),
                "until": self.until.isoformat(), "evidence": dict(self.evidence), "fix": self.fix}


@dataclass(frozen=True)
class Version:
    """One of our policy versions."""

    id: int
    policy_id: str
    mode: str
    mx_patterns: tuple[str, ...]
    max_age: int
    created_at: datetime


@dataclass(frozen=True)
class PolicyHostCertificate:
    """The ACME certificate of mta-sts.<domain> as stored now: `issued_at` says since when it is served."""

    not_before: datetime | None
    not_after: datetime | None
    issued_at: datetime | None
    last_error: str | None
    failures: int


@dataclass(frozen=True)
class Hosted:
    name: str
    versions: tuple[Version, ...]  # oldest first
    mx_hosts: frozenset[str] = frozenset()  # what our checks saw as its MX hosts
    certificate: PolicyHostCertificate | None = None

    def in_force(self, at: datetime) -> Version | None:
        """The version served at `at`: the newest created by then."""
        return next((v for v in reversed(self.versions) if v.created_at <= at), None)

    def uses_mx(self, host: str) -> bool:
        return host in self.mx_hosts or (bool(self.versions) and any(
            mx_pattern_matches(pattern, host) for pattern in self.versions[-1].mx_patterns))


@dataclass(frozen=True)
class FailureRow:
    """Failed sessions that one organisation reported for one result type, MX and receiving IP."""

    policy_domain: str
    policy_type: str
    organisation: str
    result_type: str
    mx_host: str  # receiving-mx-hostname, "" when not given
    receiving_ip: str  # "" when not given
    failed_session_count: int
    first: datetime  # the start of the earliest report
    last: datetime  # the end of the latest
    reason: str | None = None  # a failure-reason-code given


@dataclass(frozen=True)
class PolicyBlock:
    """Policy blocks of one organisation that applied the same policy, over its reports from `first` to `last`.

    `version_id`: the version of ours an sts block matched, None when none did. Blocks of a
    version that was superseded count from the reports that began after it was.
    """

    policy_domain: str
    policy_type: str
    organisation: str
    policy_strings: tuple[str, ...]
    mx_hosts: tuple[str, ...]
    version_id: int | None
    session_count: int
    failed_session_count: int
    first: datetime
    last_start: datetime
    last: datetime


@dataclass(frozen=True)
class MxState:
    """What our checks saw on an MX host, unchanged from `first` to `last`."""

    host: str
    first: datetime
    last: datetime
    starttls: bool
    probe_error: str | None
    tlsa_state: str
    tlsa_records: tuple[str, ...] = ()
    certificate_sha256: str | None = None
    spki_sha256: str | None = None
    chain_pem: str | None = None
    not_after: datetime | None = None
    names: tuple[str, ...] = ()
    covers_host: bool | None = None
    webpki_error: str | None = None

    @cached_property
    def chain(self) -> list[x509.Certificate]:
        try:
            return x509.load_pem_x509_certificates(self.chain_pem.encode()) if self.chain_pem else []
        except ValueError:
            return []

    def summary(self) -> dict:
        seen = {"first": self.first.isoformat(), "last": self.last.isoformat(), "starttls": self.starttls,
                "tlsa_state": self.tlsa_state, "tlsa_records": list(self.tlsa_records)}
        if self.probe_error:
            seen["probe_error"] = self.probe_error
        if self.certificate_sha256:
            seen |= {"certificate_sha256": self.certificate_sha256, "spki_sha256": self.spki_sha256,
                     "not_after": self.not_after.isoformat() if self.not_after else None, "names": list(self.names),
                     "covers_host": self.covers_host, "webpki_error": self.webpki_error}
        return seen


@dataclass(frozen=True)
class DnsProblem:
    """A problem our DNS checks of a domain stored (a `dns.findings` code), from `first` to `last`."""

    domain: str
    code: str
    message: str
    first: datetime
    last: datetime


@dataclass(frozen=True)
class Observed:
    hosted: tuple[Hosted, ...]
    failures: tuple[FailureRow, ...] = ()
    blocks: tuple[PolicyBlock, ...] = ()
    mx_states: tuple[MxState, ...] = ()
    dns_problems: tuple[DnsProblem, ...] = ()


def reported_tlsa_records(policy_strings: Iterable[str]) -> tuple[tuple[TlsaRecord, ...], tuple[str, ...]]:
    """The TLSA records a tlsa block's policy-string holds, and the strings that hold none.

    RFC 8460 section 4.4: one record per string in presentation form; Microsoft sends one
    string holding a JSON array of them. Hex in any case, grouped or not, parses the same.
    """
    records, unreadable = [], []
    for text in policy_strings:
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                inner = json.loads(stripped)
            except ValueError:
                inner = None
            if isinstance(inner, list) and all(isinstance(item, str) for item in inner):
                found, bad = reported_tlsa_records(inner)
                records += found
                unreadable += bad
                continue
        try:
            records.append(parse_tlsa(stripped))
        except TlsaError:
            unreadable.append(text)
    return tuple(dict.fromkeys(records)), tuple(unreadable)


def find(observed: Observed) -> list[Finding]:
    """Every finding the values show, by domain, kind and time."""
    return _Correlation(observed).findings()


class _Group:
    """What a finding gathers: sessions by organisation and result type, addresses, reasons, the time span."""

    def __init__(self):
        self.organisations: dict[str, int] = defaultdict(int)
        self.by_type: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.ips: set[str] = set()
        self.reasons: set[str] = set()
        self.policy_types: set[str] = set()
        self.first: datetime | None = None
        self.last: datetime | None = None
        # tlsa blocks whose records match no certificate our checks saw: organisation -> the records, and the
        # sessions of every report that gave them, from the first
        self.mismatched: dict[str, dict] = {}

    def add(self, organisation: str, result_type: str, sessions: int, first: datetime, last: datetime) -> None:
        self.organisations[organisation] += sessions
        self.by_type[result_type][organisation] += sessions
        self.span(first, last)

    def span(self, first: datetime, last: datetime) -> None:
        self.first = first if self.first is None else min(self.first, first)
        self.last = last if self.last is None else max(self.last, last)

    def add_mismatch(self, block: "PolicyBlock", records: tuple[TlsaRecord, ...], since: datetime) -> None:
        seen = self.mismatched.setdefault(block.organisation, {"records": [], "sessions": 0,
                                                               "first": block.first.isoformat()})
        seen["records"] += [str(r) for r in records if str(r) not in seen["records"]]
        seen["sessions"] += block.session_count
        seen["first"] = min(seen["first"], block.first.isoformat())
        self.span(since, block.last)

    def add_row(self, row: FailureRow) -> None:
        self.add(row.organisation, row.result_type, row.failed_session_count, row.first, row.last)
        self.ips.update([row.receiving_ip] if row.receiving_ip else [])
        self.reasons.update([row.reason] if row.reason else [])
        self.policy_types.add(row.policy_type)

    @property
    def side(self) -> str:
        reported = [*self.by_type.values(), self.mismatched]
        return RECEIVER if any(len(orgs) >= 2 for orgs in reported) else SENDER

    @property
    def sessions(self) -> int:
        return sum(self.organisations.values())

    def evidence(self) -> dict:
        found = {"organisations": _ranked(self.organisations), "failed_sessions": self.sessions,
                 "result_types": {rt: _ranked(orgs) for rt, orgs in sorted(self.by_type.items())}}
        if self.ips:
            found["receiving_ips"] = sorted(self.ips)[:LISTED * 2]
        if self.reasons:
            found["failure_reason_codes"] = sorted(self.reasons)[:LISTED]
        if self.policy_types:
            found["policy_types"] = sorted(self.policy_types)
        if self.mismatched:
            found["records"] = {org: self.mismatched[org] for org in sorted(self.mismatched)}
        return found


class _Correlation:
    def __init__(self, observed: Observed):
        self.observed = observed
        self.hosted = {domain.name: domain for domain in observed.hosted}
        self.states: dict[str, list[MxState]] = defaultdict(list)
        for state in sorted(observed.mx_states, key=lambda s: s.first):
            self.states[state.host].append(state)
        self.problems: dict[str, list[DnsProblem]] = defaultdict(list)
        for problem in observed.dns_problems:
            self.problems[problem.domain].append(problem)
        self._owners: dict[tuple[str, str], tuple[Hosted, ...]] = {}
        self._match_cache: dict[tuple, bool] = {}

    def owners(self, policy_domain: str, policy_type: str) -> tuple[Hosted, ...]:
        """The hosted domains a block is about: its policy domain, or for DANE the domains using that MX host
        (RFC 8460 section 4.3.2.1 lets a tlsa block name the TLSA base domain)."""
        key = (policy_domain, policy_type)
        if key not in self._owners:
            if policy_domain in self.hosted:
                found = (self.hosted[policy_domain],)
            elif policy_type == "tlsa" and policy_domain:
                found = tuple(d for d in self.hosted.values() if d.uses_mx(policy_domain))
            else:
                found = ()
            self._owners[key] = found
        return self._owners[key]

    def findings(self) -> list[Finding]:
        found = [*self._from_failures(), *self._mx_not_in_policy(), *self._stale(), *self._unknown()]
        order = {kind: index for index, kind in enumerate(KINDS)}
        return sorted(found, key=lambda f: (f.domain, order[f.kind], f.since, json.dumps(f.evidence, sort_keys=True)))

    def seen(self, host: str, first: datetime, last: datetime) -> list[MxState]:
        """What our checks saw on `host` from `first` to `last`, else the last thing they saw before."""
        states = self.states.get(host, [])
        during = [s for s in states if s.first <= last and s.last >= first]
        before = [s for s in states if s.first <= last]
        return during or before[-1:]

    # Failures senders reported, by result type.

    def _from_failures(self) -> list[Finding]:
        groups: dict[tuple, _Group] = defaultdict(_Group)
        for row in self.observed.failures:
            kind = KIND_OF_RESULT.get(describe(row.result_type).name)
            if kind is None:
                continue
            for domain in self.owners(row.policy_domain, row.policy_type):
                mx = row.mx_host or (row.policy_domain if row.policy_domain != domain.name else "")
                subject = row.result_type if kind in ("certificate-problem", "policy-fetch-failure") else ""
                groups[(domain.name, kind, "" if kind == "policy-fetch-failure" else mx, subject)].add_row(row)
        self._tlsa_records(groups)
        explain = {"starttls-not-supported": self._starttls, "certificate-problem": self._certificate,
                   "tlsa-mismatch": self._tlsa, "dnssec-invalid": self._dnssec,
                   "policy-fetch-failure": self._policy_fetch}
        found = []
        for (name, kind, mx, subject), group in groups.items():
            evidence, fix = explain[kind](self.hosted[name], mx, subject, group)
            found.append(Finding(kind, name, group.side, group.first, group.last, evidence, fix))
        return found

    def _mx_evidence(self, mx: str, group: _Group) -> tuple[dict, list[MxState]]:
        states = self.seen(mx, group.first, group.last) if mx else []
        return group.evidence() | {"mx_host": mx or None, "observed": [s.summary() for s in states]}, states

    def _starttls(self, domain: Hosted, mx: str, _subject: str, group: _Group) -> tuple[dict, str]:
        evidence, states = self._mx_evidence(mx, group)
        ours = _ours(states, lambda s: s.starttls, words("offered STARTTLS"), words("did not offer STARTTLS"))
        return evidence, words("{lead}: make {mx} offer STARTTLS on port 25 to every sender (check its TLS settings "
                               "and any firewall or proxy in front of it that strips STARTTLS){ours}.",
                               lead=_lead(group, "starttls-not-supported", mx), mx=mx or words("every MX"), ours=ours)

    def _certificate(self, domain: Hosted, mx: str, result_type: str, group: _Group) -> tuple[dict, str]:
        evidence, states = self._mx_evidence(mx, group)
        host = mx or words("the MX")
        with_cert = [s for s in states if s.certificate_sha256]
        latest = with_cert[-1] if with_cert else None
        checked = _day(latest.last) if latest else ""
        if result_type == "certificate-expired":
            todo = words("renew the certificate of {host} and reload its mail server", host=host)
            ours = words(" (our check of {day} saw it valid until {until})", day=checked,
                         until=_day(latest.not_after)) if latest and latest.not_after else ""
        elif result_type == "certificate-host-mismatch":
            todo = words("give {host} a certificate that names {host}", host=host)
            ours = words(" (our check of {day} saw it name {names})", day=checked,
                         names=", ".join(latest.names) or words("no DNS name")) if latest else ""
        elif result_type == "certificate-not-trusted":
            todo = words("serve a certificate for {host} from a public CA, with its intermediate certificates",
                         host=host)
            ours = words(" (our check of {day}: {error})", day=checked, error=latest.webpki_error) \
                if latest and latest.webpki_error else ""
        else:
            todo = words("check the certificate and chain {host} presents, and its TLS settings", host=host)
            ours = words(" (our check of {day}: {error})", day=checked, error=latest.webpki_error) \
                if latest and latest.webpki_error else ""
        fix = words("{lead}: {todo}{ours}.", lead=_lead(group, result_type, mx), todo=todo, ours=ours)
        return evidence | {"result_type": result_type}, fix

    def _dnssec(self, domain: Hosted, mx: str, _subject: str, group: _Group) -> tuple[dict, str]:
        evidence, states = self._mx_evidence(mx, group)
        failed = [s for s in states if s.tlsa_state in ("bogus", "indeterminate")]
        if failed:
            ours = words(" Our checks saw the TLSA look-up of {mx} {state} from {first} to {last}.", mx=mx,
                         state=failed[-1].tlsa_state, first=_day(failed[0].first),
                         last=_day(failed[-1].last))
        elif states:
            ours = words(" Our checks saw the TLSA look-up of {mx} {state} meanwhile: a sender's resolver, or a "
                         "signature that expired between checks, may be at fault.", mx=mx, state=states[-1].tlsa_state)
        else:
            ours = ""
        return evidence, words("{lead}: repair the DNSSEC signatures of the zone of {host} (expired signatures, a DS "
                               "record for a removed key).{ours}", lead=_lead(group, "dnssec-invalid", mx),
                               host=mx or words("the MX host"), ours=ours)

    def _policy_fetch(self, domain: Hosted, _mx: str, result_type: str, group: _Group) -> tuple[dict, str]:
        policy_host = f"mta-sts.{domain.name}"
        evidence = group.evidence() | {"result_type": result_type, "policy_host": policy_host}
        problems = [p for p in self.problems.get(domain.name, ())
                    if p.first <= group.last and p.last >= group.first
                    and p.code.startswith(("policy-host-", "sts-record-", "delegation-"))]
        ours = []
        if problems:
            evidence["dns_checks"] = [_problem(p) for p in problems]
            ours.append(words("our DNS checks saw: {message}", message=problems[-1].message))
        certificate = domain.certificate
        if certificate is not None:
            state = _certificate_state(certificate, group.first, group.last)
            evidence["policy_host_certificate"] = {
                "not_before": _iso(certificate.not_before), "not_after": _iso(certificate.not_after),
                "issued_at": _iso(certificate.issued_at), "failures": certificate.failures,
                "last_error": certificate.last_error, "state_then": state}
            ours.append(words("the certificate of {host} was {state} then", host=policy_host, state=_STATES[state]))
        else:
            ours.append(words("no certificate of {host} is stored here", host=policy_host))
        if not problems:
            ours.append(words("no DNS check stored a problem with {host} then", host=policy_host))
        return evidence, words("{lead}. {fix} What we saw: {ours}.", lead=_lead(group, result_type, policy_host),
                               fix=describe(result_type).fix(domain.name), ours=_joined("; ", ours))

    def _tlsa(self, domain: Hosted, mx: str, _subject: str, group: _Group) -> tuple[dict, str]:
        evidence, states = self._mx_evidence(mx, group)
        who = _who({org: seen["sessions"] for org, seen in group.mismatched.items()})
        if group.by_type:
            lead = _lead(group, _and(sorted(group.by_type)), mx)
            if group.mismatched:
                lead = words("{lead}, and the TLSA records {who} saw for {mx} match none of the certificates our "
                             "checks saw it present", lead=lead, who=who, mx=mx)
        else:
            lead = words("The TLSA records {who} saw for {mx} match none of the certificates our checks saw it present",
                         who=who, mx=mx)
        return evidence, _tlsa_fix(lead, mx, states)

    # What MTA-STS policy senders applied, against our versions.

    def _mx_not_in_policy(self) -> list[Finding]:
        groups: dict[tuple[str, str], _Group] = defaultdict(_Group)
        for row in self.observed.failures:
            domain = self.hosted.get(row.policy_domain)
            if domain is not None and row.mx_host and row.policy_type == "sts":  # what applied our mx patterns
                groups[(domain.name, row.mx_host)].add_row(row)
        found = []
        for (name, mx), group in groups.items():
            domain = self.hosted[name]
            missing = [v for v in self._versions_during(domain, group.first, group.last)
                       if v.mode != "none" and not any(mx_pattern_matches(p, mx) for p in v.mx_patterns)]
            if not missing:
                continue
            version = missing[-1]
            patterns = ", ".join(version.mx_patterns)
            evidence = group.evidence() | {"mx_host": mx, "versions": [_version(v) for v in missing]}
            fix = words("{who} delivered to MX {mx}, which no mx pattern of policy id {policy_id} ({patterns}) "
                        "matches: senders in enforce mode do not deliver to it. Add `mx: {mx}` to the policy of "
                        "{name}, or remove {mx} from the MX records of {name}.", who=_who(group.organisations), mx=mx,
                        policy_id=version.policy_id, patterns=patterns, name=name)
            found.append(Finding("mx-not-in-policy", name, group.side, group.first, group.last, evidence, fix))
        return found

    @staticmethod
    def _versions_during(domain: Hosted, first: datetime, last: datetime) -> list[Version]:
        """The versions served from `first` to `last`; the first we had for reports from before it."""
        in_force = domain.in_force(first)
        return [v for v in domain.versions if v == in_force or first < v.created_at <= last] or domain.versions[:1]

    def _stale(self) -> list[Finding]:
        groups: dict[tuple[str, int], _Group] = defaultdict(_Group)
        superseded: dict[tuple[str, int], tuple[Version, Version]] = {}
        for block in self.observed.blocks:
            domain = self.hosted.get(block.policy_domain)
            if block.policy_type != "sts" or domain is None or block.version_id is None:
                continue
            pair = _superseding(domain, block.version_id)
            if pair is None or block.last_start < pair[1].created_at + STALE_AFTER:
                continue
            key = (domain.name, block.version_id)
            superseded[key] = pair
            groups[key].add(block.organisation, "sts", block.session_count, max(block.first, pair[1].created_at),
                            block.last)
        found = []
        for (name, _), group in groups.items():
            old, new = superseded[(name, _)]
            domain = self.hosted[name]
            current = domain.versions[-1]
            lacks = [p for p in current.mx_patterns if p not in old.mx_patterns]
            kept_until = new.created_at + timedelta(seconds=old.max_age)
            evidence = {"organisations": _ranked(group.organisations), "sessions": group.sessions,
                        "version": _version(old), "superseded_by": _version(new), "current": _version(current),
                        "lacks": lacks, "kept_at_most_until": kept_until.isoformat()}
            stale_id = [p for p in self.problems.get(name, ()) if p.code == "sts-id-stale"
                        and p.first <= group.last and p.last >= group.first]
            if stale_id:
                evidence["dns_checks"] = [_problem(p) for p in stale_id]
                publish = words("Our DNS checks saw _mta-sts.{name} publish an old id from {day}: publish v=STSv1; "
                                "id={policy_id}.", name=name, day=_day(stale_id[0].first),
                                policy_id=current.policy_id)
            else:
                publish = words("Check that _mta-sts.{name} says id={policy_id} (flask dns check {name}): senders "
                                "fetch the new policy when they see a new id.", name=name, policy_id=current.policy_id)
            applies = plural_words(
                "{who} still applies policy id {policy_id}, superseded on {day}{lacking}.",
                "{who} still apply policy id {policy_id}, superseded on {day}{lacking}.", len(group.organisations),
                who=_who(group.organisations), policy_id=old.policy_id, day=_day(new.created_at),
                lacking=words(", which lacks {patterns}", patterns=", ".join(lacks)) if lacks else "")
            fix = words("{applies} {publish} Senders may keep it until {day} at the latest (its max_age).",
                        applies=applies, publish=publish, day=_day(kept_until))
            found.append(Finding("stale-sts-policy", name, group.side, group.first, group.last, evidence, fix))
        return found

    def _unknown(self) -> list[Finding]:
        groups: dict[tuple[str, tuple[str, ...]], _Group] = defaultdict(_Group)
        for block in self.observed.blocks:
            domain = self.hosted.get(block.policy_domain)
            if block.policy_type == "sts" and domain is not None and block.version_id is None and block.policy_strings:
                groups[(domain.name, block.policy_strings)].add(block.organisation, "sts", block.session_count,
                                                                block.first, block.last)
        found = []
        for (name, lines), group in groups.items():
            try:
                applied = parse_policy("\n".join(lines))
                what = words("mode {mode}, mx {patterns}, max_age {max_age}", mode=applied.mode,
                             patterns=", ".join(applied.mx_patterns) or words("none"), max_age=applied.max_age)
            except PolicyError as error:
                what = words("not a valid policy: {message}", message=error.message)
            evidence = {"organisations": _ranked(group.organisations), "sessions": group.sessions,
                        "policy_string": list(lines),
                        "versions": [_version(v) for v in self.hosted[name].versions[-3:]]}
            elsewhere = [p for p in self.problems.get(name, ()) if p.code in ("policy-host-elsewhere", "sts-id-stale")
                         and p.first <= group.last and p.last >= group.first]
            if elsewhere:
                evidence["dns_checks"] = [_problem(p) for p in elsewhere]
            checks = words(" (our DNS checks: {message})", message=elsewhere[-1].message) if elsewhere else ""
            fix = words("{who} applied a policy none of our versions of {name} has ({what}). Another server may "
                        "answer for mta-sts.{name}{checks}, or the policy there changed without a new id: point "
                        "mta-sts.{name} at this service, and publish a new id.", who=_who(group.organisations),
                        name=name, what=what, checks=checks)
            found.append(Finding("unknown-sts-policy", name, group.side, group.first, group.last, evidence, fix))
        return found

    # The TLSA records senders saw, against the certificate our probes saw.

    def _tlsa_records(self, groups: dict[tuple, _Group]) -> None:
        """Add to `groups` the tlsa blocks whose records match none of the certificates our checks saw then."""
        for block in self.observed.blocks:
            if block.policy_type != "tlsa" or not block.policy_strings:
                continue
            records, _ = reported_tlsa_records(block.policy_strings)
            usable = tuple(r for r in records if unusable_reason(r) is None)
            if not usable:
                continue
            for domain in self.owners(block.policy_domain, block.policy_type):
                hosts = {h.rstrip(".").lower() for h in block.mx_hosts if "*" not in h}
                hosts |= {block.policy_domain} if block.policy_domain != domain.name else set()
                for mx in sorted(hosts):
                    # A state first seen after the last report began was not what those senders met all day.
                    wrong = [s for s in self.seen(mx, block.first, block.last) if s.first <= block.last_start
                             and (s.chain or s.spki_sha256) and not self._matches(usable, s)]
                    if wrong:
                        groups[(domain.name, "tlsa-mismatch", mx, "")].add_mismatch(
                            block, records, max(block.first, wrong[0].first))

    def _matches(self, records: tuple[TlsaRecord, ...], state: MxState) -> bool:
        """Whether a DANE sender would authenticate what `state` saw presented with `records`."""
        key = (records, state)
        if key not in self._match_cache:
            if state.chain:
                check = dane_check(list(records), state.chain, reference_identifiers=(state.host,), now=state.first)
                self._match_cache[key] = check.record is not None
            else:  # no chain kept: the leaf's own digests
                digests = {(3, 1, 1): state.spki_sha256, (3, 0, 1): state.certificate_sha256}
                self._match_cache[key] = any(
                    digests.get((r.usage, r.selector, r.matching_type)) == r.data.hex() for r in records)
        return self._match_cache[key]


def _superseding(domain: Hosted, version_id: int) -> tuple[Version, Version] | None:
    """The version and the one that replaced it, if one did."""
    for index, version in enumerate(domain.versions[:-1]):
        if version.id == version_id:
            return version, domain.versions[index + 1]
    return None


def _tlsa_fix(lead: str, mx: str, states: list[MxState]) -> Words:
    with_key = [s for s in states if s.spki_sha256]
    if not with_key:
        return words("{lead}: publish a TLSA record at _25._tcp.{mx} that matches the certificate it presents (flask "
                     "tlsa generate --cert <its certificate>).", lead=lead, mx=mx or words("<MX host>"))
    latest = with_key[-1]
    return words("{lead}: publish _25._tcp.{mx}. IN TLSA 3 1 1 {spki} (the key {mx} presented at our check of {day}) "
                 "beside the records there, wait twice their TTL, then remove the records that match nothing (flask "
                 "tlsa publish).", lead=lead, mx=mx, spki=latest.spki_sha256, day=_day(latest.last))


def _lead(group: _Group, result_type: str, subject: str) -> Words:
    sessions = plural_words("{count} session since {day}", "{count} sessions since {day}", group.sessions,
                            day=_day(group.first))
    return plural_words("{who} reports {result_type}{where}{ips}, {sessions}",
                        "{who} report {result_type}{where}{ips}, {sessions}", len(group.organisations),
                        who=_who(group.organisations), result_type=result_type,
                        where=words(" on {subject}", subject=subject) if subject else "",
                        ips=" (" + ", ".join(sorted(group.ips)[:2]) + ")" if group.ips else "", sessions=sessions)


def _ours(states: list[MxState], good, yes: Words, no: Words) -> Words | str:
    if not states:
        return ""
    latest = states[-1]
    return words(" (our check of {day}: {host} {state})", day=_day(latest.last), host=latest.host,
                 state=yes if good(latest) else no)


# What the certificate of the policy host was over a finding's reports; the evidence keeps the English key.
_STATES = {
    "not known (the certificate stored now was issued later)":
        words("not known (the certificate stored now was issued later)"),
    "expired": words("expired"), "not yet valid": words("not yet valid"), "valid": words("valid"),
    "missing": words("missing"),
}


def _day(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d")


def _certificate_state(certificate: PolicyHostCertificate, first: datetime, last: datetime) -> str:
    if certificate.issued_at is not None and certificate.issued_at > last:
        return "not known (the certificate stored now was issued later)"
    if certificate.not_after is not None and certificate.not_after < last:
        return "expired"
    if certificate.not_before is not None and certificate.not_before > first:
        return "not yet valid"
    return "valid" if certificate.not_after is not None else "missing"


def _who(organisations: Mapping[str, int]) -> str:
    names = [name for name, _ in sorted(organisations.items(), key=lambda item: (-item[1], item[0]))]
    if len(names) <= LISTED:
        return _and(names)
    return words("{names} and {count} more", names=", ".join(names[:LISTED - 1]), count=len(names) - LISTED + 1)


def _and(names: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    if len(names) <= 1:
        return "".join(names)
    return words("{names} and {last}", names=", ".join(names[:-1]), last=names[-1])


def _joined(separator: str, parts: list) -> Words:
    """Parts joined, each translated where the whole is."""
    template = separator.join(f"{{part{index}}}" for index in range(len(parts)))
    return Words(template, None, None, {f"part{index}": part for index, part in enumerate(parts)})


def _ranked(counts: Mapping[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _version(version: Version) -> dict:
    return {"policy_id": version.policy_id, "mode": version.mode, "mx_patterns": list(version.mx_patterns),
            "max_age": version.max_age, "created_at": version.created_at.isoformat()}


def _problem(problem: DnsProblem) -> dict:
    return {"code": problem.code, "message": problem.message, "first": problem.first.isoformat(),
            "last": problem.last.isoformat()}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None
