"""Evaluating what DNS and the MX hosts said about a domain into findings an admin can act on.

Pure: the answers come in as values (from `resolver` and `probe`), findings go out.
Levels: `error` (senders fail or ignore the record), `warning` (works, but should be
fixed), `ok` (checked and fine).
"""

from dataclasses import dataclass, field
from datetime import datetime

from stspolicy.dns.answers import SECURE, Answer
from stspolicy.dns.dane import (
    CertificateFacts,
    DaneCheck,
    TlsaError,
    TlsaRecord,
    dane_check,
    parse_tlsa,
    parse_tlsa_records,
    stale_issuer_records,
    unusable_reason,
)
from stspolicy.dns.records import (
    STS_PREFIX,
    TLSRPT_PREFIX,
    RecordError,
    parse_sts_record,
    parse_tlsrpt_record,
    select_record,
)
from stspolicy.policies.rules import mx_pattern_matches

ERROR, WARNING, OK = "error", "warning", "ok"
TLSA_PREFIX = "_25._tcp."
EXPIRY_WARNING_DAYS = 21


@dataclass(frozen=True)
class Finding:
    level: str
    code: str
    subject: str  # the DNS name or MX host the finding is about
    message: str

    def as_dict(self) -> dict:
        return {"level": self.level, "code": self.code, "subject": self.subject, "message": self.message}


@dataclass(frozen=True)
class Expected:
    """What the domain should publish, from its current policy version and our settings."""

    domain: str
    policy_id: str
    mode: str
    mx_patterns: tuple[str, ...]
    rua: tuple[str, ...] = ()
    policy_host_cname: str = ""
    policy_host_addresses: tuple[str, ...] = ()
    sts_target: str = ""  # delegated mode: `_mta-sts.<domain>` must be a CNAME to this name


@dataclass
class MxHost:
    """One MX host as seen by the check: its addresses, its TLSA answer, its STARTTLS probe."""

    host: str
    preference: int
    addresses: Answer | None = None
    tlsa: Answer | None = None
    address: str | None = None  # the address probed
    starttls: bool = False
    tls_version: str | None = None
    chain: list = field(default_factory=list)  # certificates presented, leaf first
    probe_error: str | None = None
    facts: CertificateFacts | None = None
    webpki_error: str | None = None

    checked_at: datetime | None = None  # when the chain was presented: DANE-TA(2) checks its dates then

    @property
    def tlsa_records(self) -> list[TlsaRecord]:
        return parse_tlsa_records(self.tlsa.records if self.tlsa else ())

    @property
    def tlsa_base_domain(self) -> str:
        """The name the TLSA records were found under: the MX host, or its secure CNAME expansion
        (RFC 7672 section 2.2.3); the STARTTLS probe sends it as SNI (section 8.1)."""
        if self.tlsa is None or not self.tlsa.name.startswith(TLSA_PREFIX):
            return self.host
        return self.tlsa.name.removeprefix(TLSA_PREFIX)

    @property
    def reference_identifiers(self) -> tuple[str, ...]:
        """The names a DANE-TA(2) certificate may carry: the MX host name and the TLSA base domain,
        when that is the MX host's secure CNAME expansion (RFC 7672 section 3.2.2)."""
        base = self.tlsa_base_domain
        return (self.host,) if base == self.host else (self.host, base)

    @property
    def dane(self) -> DaneCheck:
        if self.checked_at is None:
            raise ValueError(f"{self.host}: when the chain was presented is needed to check it")
        return dane_check(self.tlsa_records, self.chain, reference_identifiers=self.reference_identifiers,
                          now=self.checked_at)

    @property
    def tlsa_match(self) -> TlsaRecord | None:
        return self.dane.record if self.chain else None


def check_sts_record(answer: Answer, expected: Expected) -> list[Finding]:
    name = answer.name
    if answer.failed:
        return [Finding(ERROR, "sts-record-unreadable", name,
                        f"{name} TXT could not be read ({answer.state}, {answer.rcode}): senders see no policy")]
    findings = []
    if expected.sts_target and answer.canonical_name != expected.sts_target:
        findings.append(Finding(ERROR, "delegation-missing", name,
                                f"{name} must be a CNAME to {expected.sts_target} (delegated mode)"))
    wanted = f"v=STSv1; id={expected.policy_id}"
    try:
        record = parse_sts_record(select_record(list(answer.records), STS_PREFIX))
    except RecordError as error:
        return [*findings, Finding(ERROR, "sts-record-invalid", name, f"{name}: {error}; publish {wanted!r}")]
    if record.policy_id != expected.policy_id:
        findings.append(Finding(ERROR, "sts-id-stale", name,
                                f"DNS still says id {record.policy_id}: publish id {expected.policy_id}"))
    else:
        findings.append(Finding(OK, "sts-id-current", name, f"{name} says id {record.policy_id}, the current one"))
    return findings


def check_tlsrpt_record(answer: Answer, expected: Expected) -> list[Finding]:
    name = answer.name
    if answer.failed:
        return [Finding(ERROR, "tlsrpt-record-unreadable", name, f"{name} TXT could not be read ({answer.state})")]
    try:
        record = parse_tlsrpt_record(select_record(list(answer.records), TLSRPT_PREFIX))
    except RecordError as error:
        return [Finding(WARNING, "tlsrpt-record-invalid", name, f"{name}: {error}: no TLS reports will be sent")]
    findings = [Finding(WARNING, "tlsrpt-rua-unusable", name, f"{name}: unusable rua {uri!r}")
                for uri in record.unusable_rua]
    listed = ", ".join(record.rua) or "none"
    ours = [uri for uri in record.rua if uri in expected.rua]
    if expected.rua and not ours:
        findings.append(Finding(WARNING, "tlsrpt-not-here", name,
                                f"{name} sends reports to {listed}, none of them to this service"))
    else:
        findings.append(Finding(OK, "tlsrpt-ok", name, f"{name} sends reports to {listed}"))
    return findings


def check_policy_host(answer: Answer, expected: Expected) -> list[Finding]:
    name = answer.name
    if answer.failed:
        return [Finding(ERROR, "policy-host-unreadable", name, f"{name} could not be resolved ({answer.state})")]
    if not answer.exists:
        return [Finding(ERROR, "policy-host-missing", name,
                        f"{name} does not resolve: senders cannot fetch the policy")]
    if expected.policy_host_cname and expected.policy_host_cname not in answer.cnames:
        via = " -> ".join(answer.cnames) or "no CNAME"
        return [Finding(ERROR, "policy-host-elsewhere", name,
                        f"{name} points to {via}, not to {expected.policy_host_cname}")]
    if expected.policy_host_addresses and not set(answer.records) & set(expected.policy_host_addresses):
        return [Finding(ERROR, "policy-host-elsewhere", name,
                        f"{name} resolves to {', '.join(answer.records)}, not to this service")]
    return [Finding(OK, "policy-host-ok", name, f"{name} resolves to {', '.join(answer.records)}")]


def mx_hosts_of(answer: Answer) -> list[tuple[int, str]]:
    """(preference, host) of an MX answer, in preference order; the null MX (RFC 7505) is dropped."""
    hosts = []
    for text in answer.records:
        preference, _, host = text.partition(" ")
        host = host.rstrip(".").lower()
        if host:
            hosts.append((int(preference), host))
    return sorted(hosts)


def check_mx_set(answer: Answer, expected: Expected) -> list[Finding]:
    """Every MX matched by an mx pattern (RFC 8461 section 4.1), and no pattern that matches nothing."""
    name = answer.name
    if answer.failed:
        return [Finding(ERROR, "mx-unreadable", name, f"{name} MX could not be read ({answer.state})")]
    hosts = [host for _, host in mx_hosts_of(answer)]
    if not hosts:
        return [Finding(ERROR, "mx-missing", name, f"{name} has no MX records")]
    findings = []
    level = WARNING if expected.mode == "none" else ERROR
    for host in hosts:
        if not any(mx_pattern_matches(pattern, host) for pattern in expected.mx_patterns):
            findings.append(Finding(level, "mx-not-in-policy", host,
                                    f"MX {host} matches no mx pattern of the policy: senders in enforce mode skip it"))
    for pattern in expected.mx_patterns:
        if not any(mx_pattern_matches(pattern, host) for host in hosts):
            findings.append(Finding(WARNING, "pattern-unused", pattern, f"mx pattern {pattern} matches no MX"))
    if not findings:
        findings.append(Finding(OK, "mx-ok", name, f"every MX ({', '.join(hosts)}) matches the policy"))
    return findings


def check_mx_host(mx: MxHost, mx_answer: Answer, expected: Expected) -> list[Finding]:
    return _check_tlsa(mx, mx_answer) + _check_tls(mx, expected)


def _check_tlsa(mx: MxHost, mx_answer: Answer) -> list[Finding]:
    tlsa = mx.tlsa
    if tlsa is None:
        return []
    name = tlsa.name
    if tlsa.failed:
        return [Finding(ERROR, "dnssec-invalid", name, f"{name} TLSA lookup is {tlsa.state} ({tlsa.rcode}): "
                        f"DANE senders will not deliver to {mx.host}")]
    if not tlsa.exists:
        return []
    findings = []
    records = mx.tlsa_records
    for text in tlsa.records:
        try:
            reason = unusable_reason(parse_tlsa(text))
        except TlsaError as error:
            reason = str(error)
        if reason:
            findings.append(Finding(WARNING, "tlsa-unusable", name, f"{name} {text}: {reason}"))
    # Insecure TLSA records are unusable and an insecure MX RRset names hosts an attacker may
    # choose: senders do not do DANE then (RFC 7672 sections 2.2 and 2.2.1), so what would
    # break DANE is only a warning until the records are DNSSEC-signed.
    dane_used = tlsa.state == SECURE and (mx_answer is None or mx_answer.state == SECURE)
    if tlsa.state != SECURE:
        findings.append(Finding(WARNING, "tlsa-insecure", name,
                                f"{name} has TLSA records but is not DNSSEC-signed: DANE is not used"))
    elif not dane_used:
        findings.append(Finding(WARNING, "mx-insecure", name,
                                f"TLSA published but the MX RRset of {mx_answer.name} is unsigned: DANE is not used"))
    level = ERROR if dane_used else WARNING
    if not any(unusable_reason(record) is None for record in records):
        if dane_used:
            findings.append(Finding(ERROR, "tlsa-all-unusable", name, f"no usable TLSA record at {name}: "
                                    "DANE senders require TLS but cannot authenticate"))
        return findings
    if not mx.chain:
        return findings
    dane = mx.dane
    match = dane.record
    consequence = ("DANE senders will not deliver (tlsa-invalid)" if dane_used
                   else "DANE senders would not deliver once it is DNSSEC-signed")
    if match is None and dane.misnamed:
        findings.append(Finding(level, "dane-ta-name", name,
                                f"DANE-TA(2) matches, but the certificate names none of "
                                f"{', '.join(mx.reference_identifiers)}: {consequence}"))
    elif match is None:
        why = "".join(f"; {failure}" for failure in dane.failures)
        findings.append(Finding(level, "tlsa-mismatch", name,
                                f"no TLSA record at {name} matches the certificate {mx.host} presents: "
                                f"{consequence}{why}"))
    else:
        findings.append(Finding(OK, "tlsa-match", name, f"{mx.host} presents a certificate matching {match}"))
    for record in stale_issuer_records(records, mx.chain):
        findings.append(Finding(WARNING if match else level, "tlsa-issuer-stale", name,
                                f"{name} {record} matches no issuer of the chain {mx.host} presents: the CA's "
                                "intermediate changed, or the record was left behind; publish the record of "
                                "the issuer the chain names before the chain changes, then remove this one "
                                "(flask tlsa rollover --next-issuer)"))
    if match is not None:
        ee_records = [r for r in records if r.usage == 3 and unusable_reason(r) is None]
        if (match.usage == 3 and len(ee_records) == 1 and mx.facts
                and mx.facts.days_left <= EXPIRY_WARNING_DAYS):
            findings.append(Finding(WARNING, "tlsa-no-next-key", name,
                                    f"the certificate of {mx.host} expires in {mx.facts.days_left} days and {name} "
                                    "has no record for a next key: a renewal with a new key breaks DANE; "
                                    "publish the next key first (flask tlsa rollover)"))
    return findings


def _check_tls(mx: MxHost, expected: Expected) -> list[Finding]:
    host = mx.host
    if mx.probe_error:
        level = WARNING if mx.probe_error.startswith("not probed") else ERROR
        return [Finding(level, "starttls-failed", host, f"{host}: {mx.probe_error}")]
    facts = mx.facts
    if facts is None:
        return []
    sts = expected.mode != "none"
    findings = []
    if facts.expired:
        findings.append(Finding(ERROR if sts else WARNING, "certificate-expired", host,
                                f"{host}: the certificate is not valid now (valid until {facts.not_after:%Y-%m-%d})"))
    elif facts.days_left <= EXPIRY_WARNING_DAYS:
        findings.append(Finding(WARNING, "certificate-expiring", host,
                                f"{host}: the certificate expires in {facts.days_left} days"))
    if not facts.covers_host:
        findings.append(Finding(ERROR if sts else WARNING, "certificate-host-mismatch", host,
                                f"{host}: the certificate names {', '.join(facts.names) or 'no DNS name'}, "
                                f"not {host}"))
    if mx.webpki_error and not facts.expired and facts.covers_host:
        findings.append(Finding(ERROR if sts else WARNING, "certificate-not-trusted", host,
                                f"{host}: the certificate does not validate: {mx.webpki_error}"))
    if not findings:
        findings.append(Finding(OK, "certificate-ok", host,
                                f"{host}: STARTTLS, valid certificate for {host}, {facts.days_left} days left"))
    return findings


# What makes senders in enforce mode defer mail, or not see the policy as it is published.
AGAINST_ENFORCE = frozenset({
    "sts-record-unreadable", "sts-record-invalid", "sts-id-stale", "delegation-missing",
    "policy-host-unreadable", "policy-host-missing", "policy-host-elsewhere", "mx-unreadable", "mx-missing",
    "starttls-failed", "certificate-expired", "certificate-host-mismatch", "certificate-not-trusted",
})


def against_enforce(findings: list[dict], mx_hosts: list[str], mx_patterns: tuple[str, ...]) -> list[dict]:
    """The findings of a stored check that argue against enforce with `mx_patterns`.

    MX hosts are matched against these patterns, not those the check had; a probe that was
    refused (a warning) says nothing about the MX.
    """
    unmatched = [
        Finding(ERROR, "mx-not-in-policy", host,
                f"MX {host} matches no mx pattern of the policy: senders in enforce mode skip it").as_dict()
        for host in mx_hosts if not any(mx_pattern_matches(pattern, host) for pattern in mx_patterns)
    ]
    return unmatched + [
        finding for finding in findings
        if finding["code"] in AGAINST_ENFORCE and finding["level"] != OK
        and not (finding["code"] == "starttls-failed" and finding["level"] == WARNING)
    ]


def status(findings: list[Finding]) -> str:
    return "problems" if any(f.level in (ERROR, WARNING) for f in findings) else "ok"
