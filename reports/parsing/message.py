"""A report mail (RFC 8460 section 5.3): its report parts, as senders really attach them, and what
its TLS-Report headers say. Pure functions over `email.message.Message`: no I/O.
"""



import email
import email.policy
import re
from dataclasses import dataclass
from email.message import Message

from reports.parsing.body import GZIP_MAGIC

REPORT_TYPES = ("application/tlsrpt+gzip", "application/tlsrpt+json")


# Media types real senders give report attachments besides the registered ones; such a
# part counts only if its name or its first bytes say it is a report.
OTHER_TYPES = (
    "application/gzip", "application/x-gzip", "application/json", "application/octet-stream", "text/json",
)


_REPORT_NAME = re.compile(r"\.json(\.gz)?$|\.gz$", re.IGNORECASE)


@dataclass(frozen=True)
class ReportPart:
    content_type: str
    filename: str | None
    data: bytes


@dataclass(frozen=True)
class MailHeaders:
    """What the headers say about the report; the report body stays authoritative (section 5.6).

    The Subject's Report-ID is left out: real senders never make it the report's report-id
    (Google writes its own form of it, tlsrpt-reporter appends `@<submitter>`), so comparing
    them would only note every report, and the report-id in the body is what dedupe uses.
    """

    report_domain: str | None
    submitter: str | None
    message_id: str | None


def parse_message(raw: bytes) -> Message:
    return email.message_from_bytes(raw, policy=email.policy.compat32)


def report_parts(message: Message) -> list[ReportPart]:
    """The parts of `message` that hold a report, in message order."""
    parts = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = part.get_filename()
        if content_type not in REPORT_TYPES and content_type not in OTHER_TYPES:
            continue
        data = part.get_payload(decode=True) or b""
        if content_type in REPORT_TYPES or _looks_like_report(filename, data):
            parts.append(ReportPart(content_type, filename, data))
    return parts


def _looks_like_report(filename: str | None, data: bytes) -> bool:
    if filename and _REPORT_NAME.search(filename):
        return True
    return data[:2] == GZIP_MAGIC or data.lstrip()[:1] == b"{"


def mail_headers(message: Message) -> MailHeaders:
    return MailHeaders(
        report_domain=_unfold(message.get("TLS-Report-Domain")),
        submitter=_unfold(message.get("TLS-Report-Submitter")),
        message_id=_unfold(message.get("Message-ID")),
    )


def _unfold(value) -> str | None:
    if value is None:
        return None
    return " ".join(str(value).split()) or None


def header_notes(headers: MailHeaders, contact_info: str | None) -> list[str]:
    """Where the headers disagree with RFC 8460 section 5.3 or with the report (the report wins)."""
    notes = []
    if headers.report_domain is None or headers.submitter is None:
        notes.append("mail: TLS-Report-Domain or TLS-Report-Submitter header missing")
    if headers.submitter and contact_info and "@" in contact_info:
        contact_domain = contact_info.rpartition("@")[2].lower()
        if contact_domain != headers.submitter.lower():
            notes.append(f"mail: TLS-Report-Submitter {headers.submitter} differs from contact-info domain")
    return notes
