"""The rules over the review's findings: one per finding kind, so that an operator turns off for a domain the
kind they do not want to hear of. Pure: the stored open findings in, signals out.

A finding about an MX host is that host's cause, shared by every domain it serves (one incident
naming the domains); a policy fetch failure is this service's, shared by every policy host; the
rest are one domain's. What a cause shared by several tenants' domains says for everyone (its
title, its fix) names only the MX host or the result type; each domain's own evidence and fix go
in its part, which only those who see the domain receive.
"""

from collections.abc import Mapping

from reports.alerts.signals import Parameter, Part, RuleSpec, Signal
from reports.review.findings import KINDS, RECEIVER, Finding
from reports.review.result_types import describe
from stspolicy.base.words import plural_words, words

PREFIX = "finding-"
MX_KINDS = ("mx-not-in-policy", "tlsa-mismatch", "dnssec-invalid", "starttls-not-supported", "certificate-problem")
POLICY_HOSTS = "mta-sts"  # the subject of policy fetch failures: every policy host is served from here
LISTED = 3  # organisations named in a line

_ABOUT = {
    "stale-sts-policy": (
        words("Senders keep an old MTA-STS policy"),
        words("Senders still apply a policy version that a newer one replaced a day or more before.")),
    "unknown-sts-policy": (
        words("Senders apply an MTA-STS policy this service never served"),
        words("Another server answers for the policy host, or the policy changed without a new id.")),
    "mx-not-in-policy": (
        words("Senders deliver to an MX the policy does not list"),
        words("Senders report an MX host that no mx pattern of the policy in force matches.")),
    "tlsa-mismatch": (
        words("TLSA records match no certificate of an MX"),
        words("DANE senders report tlsa-invalid or dane-required, or the TLSA records they saw match none of the "
              "certificates our checks saw the MX present.")),
    "dnssec-invalid": (
        words("DNSSEC fails for an MX"),
        words("Senders' resolvers find no valid DNSSEC signatures for the MX host's records.")),
    "starttls-not-supported": (
        words("An MX does not offer STARTTLS"),
        words("Senders report an MX that did not offer STARTTLS.")),
    "certificate-problem": (
        words("Senders reject the certificate of an MX"),
        words("Senders report an expired, untrusted or misnamed MX certificate, or a failed validation.")),
    "policy-fetch-failure": (
        words("Senders cannot fetch the MTA-STS policy"),
        words("Senders report that they could not fetch the policy, found it invalid, or did not trust the "
              "certificate of its host.")),
}
# A sender's own trouble (a session or two a day, or a few among the domain's many) is every domain's daily
# noise: not worth a mail.
PARAMETERS = (Parameter("organisations", 1, 1, 20, words("reported by at least, in organisations")),
              Parameter("sessions", 10, 1, 1_000_000, words("sessions reported over the last three days, at least")),
              Parameter("share_percent", 2, 0, 100, words("of the domain's sessions then, in percent, at least")))
FINDING_RULES = {
    PREFIX + kind: RuleSpec(PREFIX + kind, words("Finding: {about}", about=_ABOUT[kind][0]),
                            words("{about} (from the review's findings, refreshed at each run)",
                                  about=_ABOUT[kind][1]), PARAMETERS)
    for kind in KINDS
}


def reported_by(finding: Finding) -> dict[str, int]:
    """Sessions by organisation behind a finding: failures, policies applied, or TLSA records seen."""
    counts = dict(finding.evidence.get("organisations", {}))
    for organisation, seen in finding.evidence.get("records", {}).items():
        counts[organisation] = counts.get(organisation, 0) + seen["sessions"]
    return counts


def finding_signals(findings: tuple[Finding, ...], settings: Mapping, sessions: Mapping) -> list[Signal]:
    """A signal for each open finding whose rule is on and that enough organisations and sessions show.

    `sessions` is the domain's (day, policy_type) -> (successful, failed): a sender's own trouble is a
    few sessions among the domain's many, while a fault of ours fails a share of them."""
    signals = []
    for finding in findings:
        setting = settings[PREFIX + finding.kind]
        counts = reported_by(finding)
        behind = sum(counts.values())
        if (setting.enabled and len(counts) >= setting.parameters["organisations"]
                and behind >= setting.parameters["sessions"]
                and 100 * behind >= setting.parameters["share_percent"] * _sessions_over(finding, sessions, behind)):
            signals.append(_signal(finding))
    return signals


def _sessions_over(finding: Finding, sessions: Mapping, at_least: int) -> int:
    """Every session reported for the domain over the finding's days (at least those behind the finding)."""
    first, last = finding.since.date(), finding.until.date()
    total = sum(successful + failed for (day, _), (successful, failed) in sessions.items() if first <= day <= last)
    return max(total, at_least)


def _signal(finding: Finding) -> Signal:
    kind, domain = finding.kind, finding.domain
    mx, result_type = finding.evidence.get("mx_host"), finding.evidence.get("result_type", "")
    if kind in MX_KINDS:
        title, fix = _about_mx(kind, mx, result_type, words("MX {mx}", mx=mx) if mx
                               else words("an MX of {domain}", domain=domain))
        subject, variant, shared = mx or domain, result_type, bool(mx)
    elif kind == "policy-fetch-failure":
        subject, variant, shared = POLICY_HOSTS, result_type, True
        title = words("Senders cannot fetch MTA-STS policies: {result_type}", result_type=result_type)
        fix = words("{fix} Each domain below says what its reports and our checks show; when all fail at once, look at "
                    "the policy service itself (nginx, its certificates).", fix=describe(result_type).fix("<domain>"))
    else:
        subject, variant, shared, fix = domain, finding.subject, False, finding.fix
        title = (words("Senders keep the old MTA-STS policy {policy_id} of {domain}", policy_id=finding.subject,
                       domain=domain) if kind == "stale-sts-policy"
                 else words("Senders apply an MTA-STS policy of {domain} that this service never served",
                            domain=domain))
    return Signal(PREFIX + kind, subject, title, finding.since, fix if shared else finding.fix,
                  (_part(finding, shared),), variant=variant)


def _about_mx(kind: str, host: str | None, result_type: str, where: str) -> tuple[str, str]:
    """The title, and the fix for everyone of a finding about MX `host` (the finding's own when it names none)."""
    if kind == "certificate-problem":
        return (words("Senders report {result_type} on {where}", result_type=result_type, where=where),
                words("{host}: {fix}", host=str(host), fix=describe(result_type).fix("<domain>")))
    if kind == "starttls-not-supported":
        return words("{where} does not offer STARTTLS to senders", where=where), words(
            "Make {host} offer STARTTLS on port 25 to every sender (its TLS settings, and any firewall or proxy in "
            "front of it that strips STARTTLS).", host=str(host))
    if kind == "tlsa-mismatch":
        return words("DANE senders find no TLSA record matching {where}", where=where), words(
            "Publish a TLSA record at _25._tcp.{host} that matches the certificate {host} presents, beside the "
            "records there; wait twice their TTL before removing the old ones (flask tlsa publish).", host=str(host))
    if kind == "dnssec-invalid":
        return words("DNSSEC fails for {where} at senders", where=where), words(
            "Repair the DNSSEC signatures of the zone of {host} (expired signatures, a DS record for a removed key).",
            host=str(host))
    return words("Senders deliver to {where}, which the MTA-STS policy does not list", where=where), words(
        "Add `mx: {host}` to the MTA-STS policy of each domain below, or remove {host} from their MX records: "
        "senders in enforce mode do not deliver to it.", host=str(host))


def _part(finding: Finding, shared: bool) -> Part:
    counts = reported_by(finding)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    named = ", ".join(f"{name} {count:,}" for name, count in ranked[:LISTED])
    more = plural_words(" and {count} more", " and {count} more", len(ranked) - LISTED) if len(ranked) > LISTED else ""
    side = (words("  two or more organisations report it: likely at our end") if finding.side == RECEIVER
            else words("  one organisation alone reports it: perhaps at its end"))
    lines = (words("{domain}: {sessions:,} sessions reported by {named}{more}, from {since} to {until} UTC",
                   domain=finding.domain, sessions=sum(counts.values()), named=named, more=more,
                   since=f"{finding.since:%Y-%m-%d %H:%M}", until=f"{finding.until:%Y-%m-%d %H:%M}"),
             side,
             *([words("  what to do for {domain}: {fix}", domain=finding.domain, fix=finding.fix)] if shared else []))
    return Part(finding.domain, finding.since, lines, finding.as_dict())
