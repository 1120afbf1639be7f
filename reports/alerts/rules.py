"""The alert rules: what each one watches, its parameters, and its evaluation. Pure: facts in, signals out.

A rule looks at the facts of one domain (gathered by `facts`) and says what is wrong as a
`Signal` about a subject: the domain, one of its DNS names, the MX host or the reporting
organisation behind the trouble. Signals of one rule about one subject become one incident,
however many domains they touch: one MX serving 200 domains is one cause, not 200. The rules over
the review's findings are in `finding_rules`; what every rule is made of, in `signals`.
"""

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from reports.alerts.finding_rules import FINDING_RULES, finding_signals
from reports.alerts.signals import Parameter, Part, RuleSpec, Signal
from reports.review.findings import Finding
from reports.review.result_types import describe
from stspolicy.base.words import plural_words, words
from stspolicy.dns.findings import ERROR, against_enforce


class RuleError(ValueError):
    """A rule setting that cannot be: `field` names it (`rule` or `rule.parameter`)."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.message, self.field = message, field


RULES = FINDING_RULES | {rule.name: rule for rule in (
    RuleSpec("failure-rate", words("Failure rate above the domain's own baseline"),
             words("The share of failed sessions of a policy type (sts, tlsa) over the last days is above a threshold "
                   "and well above what the domain usually sees."),
             (Parameter("threshold_percent", 5, 1, 100, words("failed sessions, in percent, at least")),
              Parameter("window_days", 2, 1, 14, words("over the last days")),
              Parameter("baseline_days", 28, 7, 90, words("baseline: the days before those")),
              Parameter("baseline_factor", 3, 1, 100, words("times the baseline rate, at least")),
              Parameter("min_failed_sessions", 10, 1, 1_000_000, words("failed sessions, at least")))),
    RuleSpec("new-result-type", words("A result type never seen before"),
             words("Senders report a failure of a kind this domain has not had before."),
             (Parameter("window_days", 2, 1, 14, words("seen in the last days")),
              Parameter("history_days", 90, 7, 365, words("and not in the days before those"))),
             resolution_notice=False),
    RuleSpec("dns-drift", words("DNS drift"),
             words("The published _mta-sts id is not the current one, or _smtp._tls no longer sends reports here, "
                   "for longer than a grace period (from the stored DNS checks)."),
             (Parameter("grace_hours", 6, 0, 720, words("for longer than, in hours")),)),
    RuleSpec("certificate-expiry", words("Certificate expiry"),
             words("The certificate of mta-sts.<domain> or of an MX host expires soon or has expired."),
             (Parameter("days", 14, 1, 90, words("expires within, in days")),)),
    RuleSpec("tlsa-certificate-mismatch", words("MX certificate matches no TLSA record"),
             words("An MX presents a certificate that no published, DNSSEC-signed TLSA record matches: DANE senders "
                   "stop delivering (the outage after a certificate renewal without a TLSA update).")),
    RuleSpec("enforce-ready", words("Ready for enforce"),
             words("Good news: a domain in testing whose reports show no MTA-STS failure, whose DNS is in sync and "
                   "whose every MX is covered by the policy and probed OK, for some days."),
             (Parameter("days", 14, 3, 90, words("for at least, in days")),
              Parameter("min_organisations", 3, 1, 50, words("reports from at least, in organisations"))),
             resolution_notice=False),
    RuleSpec("reporting-silent", words("Reporting went silent"),
             words("An organisation that reported on this domain almost every day sent nothing for some days."),
             (Parameter("silent_days", 3, 1, 30, words("nothing for, in days")),
              Parameter("baseline_days", 14, 7, 60, words("after reporting in the days before those")),
              Parameter("regular_days", 10, 2, 60, words("on at least, in days")))),
)}

# Not per domain: the intake as a whole, for admins; its settings are the operator's (ALERT_REFUSED_*).
REPORTS_REFUSED = RuleSpec("reports-refused", words("Reports refused"),
                           words("Reports refused by the intake (parse errors, DKIM) above a share of those received."))


@dataclass(frozen=True)
class RuleSetting:
    enabled: bool
    parameters: dict[str, int]


def effective_settings(stored: dict[str, tuple[bool, dict]]) -> dict[str, RuleSetting]:
    """Every rule's setting: the stored one over the defaults; stored parameters no longer known are dropped."""
    settings = {}
    for name, spec in RULES.items():
        enabled, parameters = stored.get(name, (True, {}))
        values = {p.name: p.default for p in spec.parameters}
        values.update({key: value for key, value in parameters.items() if key in values})
        settings[name] = RuleSetting(enabled, values)
    return settings


def check_change(name: str, enabled, parameters) -> dict[str, int]:
    """The parameters of a change to rule `name`, checked; RuleError names the first field at fault."""
    spec = RULES.get(name)
    if spec is None:
        raise RuleError(f"unknown rule {name[:64]!r}", name[:64])
    if enabled is not None and not isinstance(enabled, bool):
        raise RuleError(f"{name}.enabled must be true or false", f"{name}.enabled")
    known = {p.name: p for p in spec.parameters}
    checked = {}
    for key, value in (parameters or {}).items():
        parameter = known.get(key)
        if parameter is None:
            raise RuleError(f"{name} has no parameter {key[:64]!r}", f"{name}.{key[:64]}")
        if isinstance(value, bool) or not isinstance(value, int) or not parameter.minimum <= value <= parameter.maximum:
            raise RuleError(f"{name}.{key} must be a whole number from {parameter.minimum} to {parameter.maximum}",
                            f"{name}.{key}")
        checked[key] = value
    return checked


def fix_for(result_type: str, domain: str = "<domain>") -> str:
    """What to do about failures of `result_type` (RFC 8460), the remediation the review shows too."""
    return describe(result_type).fix(domain)


@dataclass(frozen=True)
class MxSeen:
    """One MX host at one stored DNS check."""

    host: str
    starttls: bool
    probe_error: str | None
    certificate_sha256: str | None
    spki_sha256: str | None
    not_after: datetime | None
    tlsa_name: str
    tlsa_state: str
    tlsa_records: tuple[str, ...]
    tlsa_match: str | None


@dataclass(frozen=True)
class Check:
    """One stored DNS check of a domain."""

    observed_at: datetime
    policy_id: str
    status: str
    findings: tuple[dict, ...]
    mx: tuple[MxSeen, ...]

    def has(self, *codes: str) -> list[dict]:
        return [f for f in self.findings if f["code"] in codes and f["level"] != "ok"]


@dataclass(frozen=True)
class PolicyHostCertificate:
    host: str
    not_after: datetime
    failures: int
    last_error: str | None


@dataclass(frozen=True)
class DomainFacts:
    """What the rules may know of one domain; `sessions` and `details` count DANE blocks that senders
    reported under the domain's MX host names as well."""

    name: str
    mode: str
    policy_id: str
    version_created_at: datetime
    mx_patterns: tuple[str, ...]
    settings: dict[str, RuleSetting]
    checks: tuple[Check, ...] = ()  # newest first
    certificate: PolicyHostCertificate | None = None
    sessions: dict = field(default_factory=dict)  # (day, policy_type) -> (successful, failed)
    details: dict = field(default_factory=dict)  # (policy_type, result_type, mx_host, organisation) -> failed
    first_seen: dict = field(default_factory=dict)  # result_type -> first day reported
    report_days: dict = field(default_factory=dict)  # organisation -> days with a report about the domain
    sts_organisations: dict = field(default_factory=dict)  # organisation -> days with an sts block
    findings: tuple[Finding, ...] = ()  # open, as the last refresh stored them


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "-"


def _top(counter: Counter, n: int = 3) -> str:
    shown = [f"{name or '(none)'} {count:,}" for name, count in counter.most_common(n)]
    rest = sum(counter.values()) - sum(count for _, count in counter.most_common(n))
    return ", ".join(shown + ([f"others {rest:,}"] if rest else []))


POLICY_LABELS = {"sts": "MTA-STS", "tlsa": "DANE", "no-policy-found": "no policy"}
DOMINANT_SHARE = 0.8  # failures this concentrated on one MX are that MX's doing


def dominant_mx(failures: Counter) -> str | None:
    total = sum(failures.values())
    if not total:
        return None
    host, count = failures.most_common(1)[0]
    return host if host and count >= DOMINANT_SHARE * total else None


def failure_rate(facts: DomainFacts, today: date) -> list[Signal]:
    setting = facts.settings["failure-rate"]
    p = setting.parameters
    window = [today - timedelta(days=n) for n in range(p["window_days"])]
    baseline = [window[-1] - timedelta(days=n) for n in range(1, p["baseline_days"] + 1)]
    signals = []
    for policy_type in ("sts", "tlsa"):
        ok_w, failed_w = _sum(facts.sessions, window, policy_type)
        ok_b, failed_b = _sum(facts.sessions, baseline, policy_type)
        total_w, total_b = ok_w + failed_w, ok_b + failed_b
        if failed_w < p["min_failed_sessions"] or 100 * failed_w < p["threshold_percent"] * total_w:
            continue
        rate_b = failed_b / total_b if total_b else 0.0
        if total_b and failed_w < p["baseline_factor"] * rate_b * total_w:
            continue
        days_over = [day for day in sorted(window) if _over(facts.sessions.get((day, policy_type)), p)]
        since = midnight(days_over[0] if days_over else window[-1])
        by_type, by_mx, by_org = _failures(facts.details, policy_type)
        mx = dominant_mx(by_mx)
        top_type = by_type.most_common(1)[0][0] if by_type else None
        label = POLICY_LABELS[policy_type]
        lines = (
            words("{domain}: {failed:,} of {total:,} {label} sessions failed over {days} days ({rate}; the "
                  "{baseline_days} days before: {baseline_rate})", domain=facts.name, failed=failed_w, total=total_w,
                  label=label, days=p["window_days"], rate=percent(failed_w, total_w),
                  baseline_days=p["baseline_days"], baseline_rate=percent(failed_b, total_b)),
            *([words("  result types: {top}", top=_top(by_type))] if by_type else []),
            *([words("  receiving MX: {top}", top=_top(by_mx))] if by_mx else []),
            *([words("  reported by: {top}", top=_top(by_org))] if by_org else []),
        )
        evidence = {"policy_type": policy_type, "window_days": p["window_days"], "total_sessions": total_w,
                    "failed_sessions": failed_w, "baseline_total_sessions": total_b,
                    "baseline_failed_sessions": failed_b, "result_types": dict(by_type.most_common(10)),
                    "mx_hosts": dict(by_mx.most_common(10)), "organisations": dict(by_org.most_common(10))}
        part = Part(facts.name, since, lines, evidence)
        fix = fix_for(top_type, facts.name) if top_type else words("See the failure details on the domain's page.")
        if mx:
            signals.append(Signal("failure-rate", mx, words("{label} sessions to MX {mx} fail", label=label, mx=mx),
                                  since, fix, (part,), variant=policy_type))
        else:
            signals.append(Signal("failure-rate", facts.name, words("{label} sessions to {domain} fail", label=label,
                                                                    domain=facts.name), since, fix,
                                  (part,), variant=policy_type))
    return signals


def _sum(sessions: dict, days: list[date], policy_type: str) -> tuple[int, int]:
    ok = failed = 0
    for day in days:
        day_ok, day_failed = sessions.get((day, policy_type), (0, 0))
        ok, failed = ok + day_ok, failed + day_failed
    return ok, failed


def _over(counts: tuple[int, int] | None, p: dict) -> bool:
    if not counts or not counts[1]:
        return False
    return 100 * counts[1] >= p["threshold_percent"] * (counts[0] + counts[1])


def _failures(details: dict, policy_type: str | None = None, result_type: str | None = None):
    by_type, by_mx, by_org = Counter(), Counter(), Counter()
    for (kind, result, mx, organisation), count in details.items():
        if (policy_type and kind != policy_type) or (result_type and result != result_type):
            continue
        by_type[result] += count
        by_mx[mx] += count
        by_org[organisation] += count
    return by_type, by_mx, by_org


def new_result_types(facts: DomainFacts, today: date) -> list[Signal]:
    p = facts.settings["new-result-type"].parameters
    first_day = today - timedelta(days=p["window_days"] - 1)
    signals = []
    for result_type, seen in sorted(facts.first_seen.items()):
        if seen < first_day:
            continue
        _, by_mx, by_org = _failures(facts.details, result_type=result_type)
        mx = dominant_mx(by_mx)
        lines = (
            words("{domain}: {result_type} first reported on {day}, none in the {days} days before; {failed:,} failed "
                  "sessions since", domain=facts.name, result_type=result_type, day=f"{seen:%Y-%m-%d}",
                  days=p["history_days"], failed=sum(by_org.values())),
            *([words("  receiving MX: {top}", top=_top(by_mx))] if by_mx else []),
            *([words("  reported by: {top}", top=_top(by_org))] if by_org else []),
        )
        part = Part(facts.name, midnight(seen), lines, {
            "result_type": result_type, "first_seen": seen.isoformat(), "mx_hosts": dict(by_mx.most_common(10)),
            "organisations": dict(by_org.most_common(10))})
        subject = mx or facts.name
        title = words("New failure {result_type} on {subject}", result_type=result_type, subject=subject)
        signals.append(Signal("new-result-type", subject, title, midnight(seen), fix_for(result_type, facts.name),
                              (part,), variant=result_type))
    return signals


STS_DRIFT = ("sts-id-stale", "sts-record-invalid", "delegation-missing")
TLSRPT_DRIFT = ("tlsrpt-not-here", "tlsrpt-record-invalid")


def dns_drift(facts: DomainFacts, now: datetime) -> list[Signal]:
    grace = timedelta(hours=facts.settings["dns-drift"].parameters["grace_hours"])
    current = [check for check in facts.checks if check.policy_id == facts.policy_id]
    signals = []
    if current and current[0].has(*STS_DRIFT):
        streak = _streak(current, STS_DRIFT)
        since = streak[-1].observed_at if len(streak) < len(current) else facts.version_created_at
        if now - since >= grace:
            lines = tuple(_said(facts.name, f["message"]) for f in current[0].has(*STS_DRIFT))
            name = f"_mta-sts.{facts.name}"
            signals.append(Signal(
                "dns-drift", name, words("{name} does not publish the current policy id {policy_id}", name=name,
                                         policy_id=facts.policy_id), since,
                words("Publish the TXT record \"v=STSv1; id={policy_id}\" at {name} (see the DNS page): senders "
                      "fetch a changed policy only when the id changes.", policy_id=facts.policy_id, name=name),
                (Part(facts.name, since, lines, {"policy_id": facts.policy_id,
                                                 "checked_at": current[0].observed_at.isoformat()}),)))
    checks = list(facts.checks)
    if checks and checks[0].has(*TLSRPT_DRIFT):
        streak = _streak(checks, TLSRPT_DRIFT)
        since = streak[-1].observed_at
        before = checks[len(streak):]
        pointed_here = any(_ok(check, "tlsrpt-ok") for check in before)
        if now - since >= grace:
            name = f"_smtp._tls.{facts.name}"
            lines = tuple(_said(facts.name, f["message"]) for f in checks[0].has(*TLSRPT_DRIFT))
            title = (words("{name} no longer sends TLS reports here", name=name) if pointed_here
                     else words("{name} does not send TLS reports here", name=name))
            signals.append(Signal(
                "dns-drift", name, title, since,
                words("Publish the TLSRPT record shown on the DNS page at {name}: without it, no report tells "
                      "you when senders fail.", name=name),
                (Part(facts.name, since, lines, {"pointed_here_before": pointed_here,
                                                 "checked_at": checks[0].observed_at.isoformat()}),)))
    return signals


def _said(domain: str, message: str):
    """A line of what a DNS check found about `domain` (its message stays the English the check stored)."""
    return words("{domain}: {message}", domain=domain, message=message)


def _ok(check: Check, code: str) -> bool:
    return any(f["code"] == code and f["level"] == "ok" for f in check.findings)


def _streak(checks: list[Check], codes: tuple[str, ...]) -> list[Check]:
    """The newest checks that all found one of `codes`, newest first."""
    streak = []
    for check in checks:
        if not check.has(*codes):
            break
        streak.append(check)
    return streak


def certificate_expiry(facts: DomainFacts, now: datetime) -> list[Signal]:
    days = facts.settings["certificate-expiry"].parameters["days"]
    signals = []
    certificate = facts.certificate
    if certificate and certificate.not_after - now <= timedelta(days=days):
        left = (certificate.not_after - now).days
        failing = words("; {failures} renewal attempts failed, the last: {error}", failures=certificate.failures,
                        error=str(certificate.last_error)) if certificate.failures \
            else words("; no renewal attempt failed: is the maintenance timer running?")
        since = min(now, certificate.not_after - timedelta(days=days))
        part = Part(facts.name, since, (words("{host}: {expiry}{failing}", host=certificate.host,
                                              expiry=_expiry(certificate.not_after, left), failing=failing),),
                    {"host": certificate.host, "not_after": certificate.not_after.isoformat(),
                     "failures": certificate.failures, "last_error": certificate.last_error})
        # One ACME client renews every policy host: their expiries share that cause.
        signals.append(Signal(
            "certificate-expiry", "mta-sts", words("Certificates of policy hosts expire"), since,
            words("Senders stop fetching the policy once its certificate has expired. See `flask cert list` for why "
                  "renewal fails, fix it, then run `flask cert renew`."), (part,)))
    for mx in facts.checks[0].mx if facts.checks else ():
        if mx.not_after is None or mx.not_after - now > timedelta(days=days):
            continue
        left = (mx.not_after - now).days
        since = min(now, mx.not_after - timedelta(days=days))
        no_next = [f for f in facts.checks[0].has("tlsa-no-next-key") if f["subject"] == mx.tlsa_name]
        lines = (words("{domain}: MX {mx} uses it", domain=facts.name, mx=mx.host),
                 *(f"  {f['message']}" for f in no_next))
        title = (words("The certificate of MX {mx} has expired", mx=mx.host) if left < 0
                 else words("The certificate of MX {mx} expires", mx=mx.host))
        fix = (words("Renew the certificate of {mx}, publishing a TLSA record for the next key first (flask tlsa "
                     "rollover). Senders that check certificates (MTA-STS enforce, DANE) stop delivering once it has "
                     "expired.", mx=mx.host) if no_next
               else words("Renew the certificate of {mx}. Senders that check certificates (MTA-STS enforce, DANE) "
                          "stop delivering once it has expired.", mx=mx.host))
        signals.append(Signal(
            "certificate-expiry", mx.host, title, since, fix,
            (Part(facts.name, since, lines, {"mx_host": mx.host}),),
            lines=(words("{mx}: {expiry} (certificate sha256 {sha256})", mx=mx.host,
                         expiry=_expiry(mx.not_after, left), sha256=str(mx.certificate_sha256)),),
            evidence={"mx_host": mx.host, "not_after": mx.not_after.isoformat(),
                      "certificate_sha256": mx.certificate_sha256}))
    return signals


def _expiry(not_after: datetime, left: int):
    when = f"{not_after:%Y-%m-%d %H:%M} UTC"
    if left < 0:
        return words("expired {when}", when=when)
    return plural_words("expires {when} ({count} day left)", "expires {when} ({count} days left)", left, when=when)


def tlsa_certificate_mismatch(facts: DomainFacts, now: datetime) -> list[Signal]:
    if not facts.checks:
        return []
    latest = facts.checks[0]
    failing = {f["subject"] for f in latest.has("tlsa-mismatch") if f["level"] == ERROR}
    signals = []
    for mx in latest.mx:
        if mx.tlsa_name not in failing or not mx.certificate_sha256:
            continue
        since, previous = latest.observed_at, None
        for check in facts.checks[1:]:
            seen = next((m for m in check.mx if m.host == mx.host), None)
            if seen is None or seen.certificate_sha256 != mx.certificate_sha256 or seen.tlsa_match:
                previous = seen
                break
            since = check.observed_at
        renewed = previous is not None and previous.tlsa_match and previous.certificate_sha256 != mx.certificate_sha256
        presents = dict(mx=mx.host, sha256=mx.certificate_sha256, spki=str(mx.spki_sha256))
        lines = (
            words("{mx} presents certificate sha256 {sha256} (key sha256 {spki}), new since the check of {when} UTC",
                  when=f"{since:%Y-%m-%d %H:%M}", **presents) if renewed
            else words("{mx} presents certificate sha256 {sha256} (key sha256 {spki})", **presents),
            *(words("  published at {name} (DNSSEC-signed): {record}", name=mx.tlsa_name, record=record)
              for record in mx.tlsa_records),
            *([words("  the certificate before, {sha256}, matched {record}", sha256=str(previous.certificate_sha256),
                     record=str(previous.tlsa_match))] if renewed else []),
        )
        signals.append(Signal(
            "tlsa-certificate-mismatch", mx.host, words("No TLSA record matches the certificate of MX {mx}",
                                                        mx=mx.host), since,
            words("DANE senders do not deliver to {mx} now. Publish `{name}. IN TLSA 3 1 1 {spki}` beside the records "
                  "there, or put back the certificate a published record matches; next time publish the next key two "
                  "TTLs before deploying it (flask tlsa rollover).", mx=mx.host, name=mx.tlsa_name,
                  spki=str(mx.spki_sha256)),
            (Part(facts.name, since, (words("{domain}: MX {mx} is one of its MX hosts", domain=facts.name,
                                            mx=mx.host),), {"mx_host": mx.host}),),
            lines=lines,
            evidence={"mx_host": mx.host, "certificate_sha256": mx.certificate_sha256, "spki_sha256": mx.spki_sha256,
                      "tlsa_records": list(mx.tlsa_records), "renewed": bool(renewed)}))
    return signals


def enforce_ready(facts: DomainFacts, now: datetime, base_url: str) -> list[Signal]:
    if facts.mode != "testing":
        return []
    p = facts.settings["enforce-ready"].parameters
    start = now - timedelta(days=p["days"])
    first_day = (now - timedelta(days=p["days"] - 1)).date()
    days = [first_day + timedelta(days=n) for n in range(p["days"])]
    ok, failed = _sum(facts.sessions, days, "sts")
    organisations = sorted(org for org, seen in facts.sts_organisations.items() if any(d >= first_day for d in seen))
    if failed or not ok or len(organisations) < p["min_organisations"]:
        return []
    considered = [check for check in facts.checks if check.observed_at > start]
    older = [check for check in facts.checks if check.observed_at <= start]
    if not older:
        return []  # no check shows how things stood when the period began
    considered.append(older[0])
    if not all(_ready(check, facts) for check in considered):
        return []
    hosts = sorted({mx.host for mx in facts.checks[0].mx})
    since = considered[-1].observed_at
    named = ", ".join(organisations[:6]) + (", ..." if len(organisations) > 6 else "")
    lines = (
        words("{domain}: no MTA-STS failure in {sessions:,} sessions reported over {days} days by {count} "
              "organisations ({named})", domain=facts.name, sessions=ok, days=p["days"], count=len(organisations),
              named=named),
        words("  DNS in sync with policy id {policy_id} in every check since {when} UTC", policy_id=facts.policy_id,
              when=f"{since:%Y-%m-%d %H:%M}"),
        words("  every MX ({hosts}) matches the policy and offers STARTTLS with a valid certificate",
              hosts=", ".join(hosts)),
    )
    link = f"{base_url}/domains/{facts.name}#edit"
    return [Signal(
        "enforce-ready", facts.name, words("{domain} is ready for mode enforce", domain=facts.name), since,
        words("Switch {domain} to enforce in its policy form ({link}); the switch shows this evidence and asks for "
              "confirmation.", domain=facts.name, link=link), (Part(facts.name, since, lines, {
            "policy_id": facts.policy_id, "sessions": ok, "organisations": organisations, "mx_hosts": hosts}),),
        variant=facts.policy_id)]


def _ready(check: Check, facts: DomainFacts) -> bool:
    if check.status == "unchecked" or check.policy_id != facts.policy_id or check.has(*STS_DRIFT) or not check.mx:
        return False
    if against_enforce(list(check.findings), [mx.host for mx in check.mx], facts.mx_patterns):
        return False
    return all(mx.starttls and not mx.probe_error for mx in check.mx)


def reporting_silent(facts: DomainFacts, today: date) -> list[Signal]:
    p = facts.settings["reporting-silent"].parameters
    quiet_from = today - timedelta(days=p["silent_days"] - 1)
    baseline_from = quiet_from - timedelta(days=p["baseline_days"])
    signals = []
    for organisation, days in sorted(facts.report_days.items()):
        if any(day >= quiet_from for day in days):
            continue
        regular = sorted(day for day in days if baseline_from <= day < quiet_from)
        if len(regular) < p["regular_days"]:
            continue
        since = midnight(regular[-1] + timedelta(days=1))
        lines = (words("{domain}: {organisation} reported on {count} of the {days} days up to {day}, and on none "
                       "since", domain=facts.name, organisation=organisation, count=len(regular),
                       days=p["baseline_days"], day=f"{regular[-1]:%Y-%m-%d}"),)
        signals.append(Signal(
            "reporting-silent", organisation, words("{organisation} stopped sending TLS reports",
                                                    organisation=organisation), since,
            words("Check that the _smtp._tls record still names this service (the DNS page shows it) and that report "
                  "mail and uploads reach the intake; when every organisation went silent at once, the intake is "
                  "down."),
            (Part(facts.name, since, lines, {"organisation": organisation, "last_day": regular[-1].isoformat(),
                                             "days_reported": len(regular)}),)))
    return signals


def evaluate(facts: DomainFacts, now: datetime, base_url: str) -> list[Signal]:
    """Every signal of the domain's enabled rules."""
    today = now.date()
    on = {name for name, setting in facts.settings.items() if setting.enabled}
    signals = finding_signals(facts.findings, facts.settings, facts.sessions)
    if "failure-rate" in on:
        signals += failure_rate(facts, today)
    if "new-result-type" in on:
        signals += new_result_types(facts, today)
    if "dns-drift" in on:
        signals += dns_drift(facts, now)
    if "certificate-expiry" in on:
        signals += certificate_expiry(facts, now)
    if "tlsa-certificate-mismatch" in on:
        signals += tlsa_certificate_mismatch(facts, now)
    if "enforce-ready" in on:
        signals += enforce_ready(facts, now, base_url)
    if "reporting-silent" in on:
        signals += reporting_silent(facts, today)
    return signals


def merge(signals: list[Signal]) -> list[Signal]:
    """One signal per key, with the parts of every domain it touches; the earliest since wins."""
    merged: dict[str, Signal] = {}
    for signal in signals:
        kept = merged.get(signal.key)
        if kept is None:
            merged[signal.key] = signal
            continue
        parts = {part.domain: part for part in kept.parts} | {part.domain: part for part in signal.parts}
        merged[signal.key] = Signal(
            kept.rule, kept.subject, kept.title, min(kept.since, signal.since), kept.fix,
            tuple(sorted(parts.values(), key=lambda part: part.domain)), kept.lines, kept.evidence, kept.variant)
    return list(merged.values())


def refusal_signal(refused: dict[tuple[str, str], int], stored: int, percent_threshold: int, minimum: int,
                   since: datetime) -> Signal | None:
    """`refused` counts by (channel, reason) against `stored` reports over the same days."""
    total = sum(refused.values())
    if total < minimum or 100 * total < percent_threshold * (total + stored):
        return None
    lines = (words("{total:,} reports refused and {stored:,} stored ({rate} refused)", total=total, stored=stored,
                   rate=percent(total, total + stored)),
             *(f"  {channel}: {reason} {count:,}" for (channel, reason), count in
               sorted(refused.items(), key=lambda item: -item[1])))
    return Signal(
        REPORTS_REFUSED.name, "intake", words("The report intake refuses many reports"), since,
        words("See the intake's log for why (`journalctl -u stspolicy`): malformed reports from one sender, DKIM "
              "failing for a sender (TLSRPT_DKIM), or a limit set too low (TLSRPT_MAX_*)."),
        lines=lines, evidence={"refused": {f"{c}/{r}": n for (c, r), n in refused.items()}, "stored": stored})
