"""What came with a report besides its body (RFC 8460 section 5): its file name (section 5.1), the
mail's TLS-Report headers and Subject (section 5.3), the domains of the report URL it was posted to.

"The report MUST be considered the authoritative source" (section 5.6): the envelope only adds
notes where it disagrees with the body, and names the domain of a `no-policy-found` block that
names none (sys4's tlsrpt-reporter leaves it out). Pure.
"""

import re
from dataclasses import dataclass
from datetime import UTC, datetime

import msgspec

from reports.parsing.message import MailHeaders
from reports.parsing.organizations import contact_domain, same_organization
from reports.parsing.schema import ParsedReport
from stspolicy.policies.names import InvalidName, normalize_domain

# sender "!" policy-domain "!" begin-timestamp "!" end-timestamp [ "!" unique-id ] "." extension
_FILE_NAME = re.compile(
    r"(?P<sender>[^!/\\]+)!(?P<domain>[^!/\\]+)!(?P<begin>[0-9]{1,11})!(?P<end>[0-9]{1,11})"
    r"(?:!(?P<id>[A-Za-z0-9]+))?\.(?P<extension>json(?:\.gz)?)", re.IGNORECASE)
# Report Domain: <domain> Submitter: <domain> Report-ID: <msg-id>, anywhere in the Subject (a
# prefix such as "Fwd:" may precede it); Microsoft leaves out the angle brackets.
_SUBJECT = re.compile(r"Report\s+Domain:\s*(?P<domain>\S+)\s+Submitter:\s*(?P<submitter>\S+)"
                      r"\s+Report-ID:\s*<?(?P<id>[^<>\s]+)>?", re.IGNORECASE)
# Report-ids that end in the policy domain: Google `<date>_<domain>`, tlsrpt-reporter
# `<date>_idx<N>_<domain>`, Microsoft `<18 digits>+<domain>`.
_REPORT_ID_DOMAIN = re.compile(r"[_+](?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)$")


@dataclass(frozen=True)
class FileName:
    sender: str
    policy_domain: str
    begin: datetime
    end: datetime
    unique_id: str | None
    gzip: bool


@dataclass(frozen=True)
class Subject:
    report_domain: str
    submitter: str
    report_id: str


@dataclass(frozen=True)
class Envelope:
    """Every part may be missing: a report posted by HTTPS has no file name and no mail headers."""

    mail: MailHeaders | None = None
    file_name: str | None = None
    url_domains: tuple[str, ...] | None = None  # the per-tenant report URL's domains


def parse_file_name(name: str | None) -> FileName | None:
    """The parts of an RFC 8460 section 5.1 file name; None for any other name (the name is only
    RECOMMENDED: no error). Begin and end are Unix seconds."""
    found = _FILE_NAME.fullmatch((name or "").strip())
    if not found:
        return None
    begin, end = (datetime.fromtimestamp(int(found[key]), UTC) for key in ("begin", "end"))  # 11 digits: year 5138
    return FileName(found["sender"].lower(), found["domain"].lower(), begin, end, found["id"],
                    found["extension"].lower() == "json.gz")


def parse_subject(text: str | None) -> Subject | None:
    """The Subject section 5.3 recommends, folded or not; None for any other."""
    found = _SUBJECT.search(" ".join((text or "").split()))
    if not found:
        return None
    return Subject(found["domain"].lower().rstrip("."), found["submitter"].lower().rstrip("."), found["id"])


def disagreements(report: ParsedReport, envelope: Envelope) -> list[str]:
    """Notes on where the envelope breaks section 5.3 or disagrees with the report; the report wins."""
    notes = []
    domains = {block.policy_domain for block in report.policies if block.policy_domain}
    mail = envelope.mail
    if mail is not None:
        notes += _header_notes(report, mail, domains)
    named = parse_file_name(envelope.file_name)
    if named is not None:
        if domains and named.policy_domain not in domains:
            notes.append(f"file name: names policy domain {named.policy_domain}, the report {_listed(domains)}")
        if (named.begin, named.end) != (report.start_datetime, report.end_datetime):
            notes.append(f"file name: names {named.begin:%Y-%m-%dT%H:%M:%SZ} to {named.end:%Y-%m-%dT%H:%M:%SZ}, "
                         f"the report {report.start_datetime:%Y-%m-%dT%H:%M:%SZ} to "
                         f"{report.end_datetime:%Y-%m-%dT%H:%M:%SZ}")
        contact = contact_domain(report.contact_info)
        if contact and not same_organization(named.sender, contact):
            notes.append(f"file name: names sender {named.sender}, the report's contact-info {contact}")
    return notes


def _header_notes(report: ParsedReport, mail: MailHeaders, domains: set[str]) -> list[str]:
    notes = []
    if mail.report_domain is None or mail.submitter is None:
        notes.append("mail: TLS-Report-Domain or TLS-Report-Submitter header missing")
    if mail.report_domain and domains and mail.report_domain.lower().rstrip(".") not in domains:
        notes.append(f"mail: TLS-Report-Domain {mail.report_domain} is not the report's {_listed(domains)}")
    contact = contact_domain(report.contact_info)
    if mail.submitter and contact and contact != mail.submitter.lower().rstrip("."):
        notes.append(f"mail: TLS-Report-Submitter {mail.submitter} differs from contact-info domain")
    subject = parse_subject(mail.subject)
    if subject is None:
        return notes
    if domains and subject.report_domain not in domains:
        notes.append(f"mail: Subject names report domain {subject.report_domain}, the report {_listed(domains)}")
    if mail.submitter and subject.submitter != mail.submitter.lower().rstrip("."):
        notes.append(f"mail: Subject names submitter {subject.submitter}, TLS-Report-Submitter {mail.submitter}")
    if not _same_report_id(subject.report_id, report.report_id):
        notes.append(f"mail: Subject names Report-ID {subject.report_id}, the report {report.report_id}")
    return notes


def _same_report_id(subject_id: str, report_id: str) -> bool:
    """Whether the Subject's Report-ID (a msg-id, `left@right`) names the report-id. Senders write it
    in their own form: Google `2024.09.03T00.00.00Z+example.com@google.com` for the report-id
    `2024-09-03T00:00:00Z_example.com`, tlsrpt-reporter the report-id and `@<submitter>`; so only
    letters and digits are compared, of the left part or of the whole."""
    wanted = _letters_and_digits(report_id)
    return wanted in (_letters_and_digits(subject_id.rpartition("@")[0]), _letters_and_digits(subject_id))


def _letters_and_digits(text: str) -> str:
    return "".join(character for character in text.lower() if character.isalnum())


def _listed(domains: set[str]) -> str:
    return ", ".join(sorted(domains))


def attribute(report: ParsedReport, envelope: Envelope) -> ParsedReport:
    """The report with a domain for each `no-policy-found` block that names none, taken from what
    else names it, in this order: the report URL when it has one domain, the TLS-Report-Domain
    header, the Subject, the file name, the report-id's last part; noted. Without any, unchanged."""
    if all(block.policy_domain for block in report.policies):
        return report
    found = _named_domain(report, envelope)
    if found is None:
        return report
    domain, source = found
    policies, notes = [], list(report.notes)
    for position, block in enumerate(report.policies):
        if block.policy_domain is None:
            block = msgspec.structs.replace(block, policy_domain=domain)
            notes.append(f"$.policies[{position}].policy.policy-domain: missing, read as {domain} from {source}")
        policies.append(block)
    return msgspec.structs.replace(report, policies=tuple(policies), notes=tuple(notes))


def _named_domain(report: ParsedReport, envelope: Envelope) -> tuple[str, str] | None:
    mail = envelope.mail or MailHeaders(None, None, None, None)
    subject = parse_subject(mail.subject)
    named = parse_file_name(envelope.file_name)
    by_id = _REPORT_ID_DOMAIN.search(report.report_id)
    clues = [
        (mail.report_domain, "the TLS-Report-Domain header"),
        (subject and subject.report_domain, "the Subject"),
        (named and named.policy_domain, "the file name"),
        (by_id and by_id["domain"], "the report-id"),
    ]
    allowed = envelope.url_domains
    if allowed is not None and len(allowed) == 1:
        return allowed[0], "the report URL"
    for clue, source in clues:
        domain = _domain(clue)
        if domain is not None and (allowed is None or domain in allowed):
            return domain, source
    return None


def _domain(text: str | None) -> str | None:
    if not text:
        return None
    try:
        return normalize_domain(text)
    except InvalidName:
        return None
