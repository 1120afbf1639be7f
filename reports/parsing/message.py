"""A report mail (RFC 8460 section 5.3): its report parts, as senders really attach them, and what
its TLS-Report headers say. Pure functions over `email.message.Message`: no I/O.
"""

import email
import email.errors
import email.header
import email.policy
import re
from dataclasses import dataclass
from email.message import Message
from functools import partial

from reports.parsing.body import GZIP_MAGIC, MEDIA_TYPES, ReportTooLarge

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
    """What the headers say about the report; the report body stays authoritative (section 5.6,
    reports.parsing.envelope)."""

    report_domain: str | None
    submitter: str | None
    message_id: str | None
    subject: str | None


# The email package parses, walks and writes a message recursively, a few frames per MIME level:
# deeper nesting than this is refused while it is parsed, far below Python's recursion limit.
# Report mails nest two or three levels deep (a multipart/report in a forwarded message/rfc822).
MAX_MIME_DEPTH = 10


class _PartCount:
    def __init__(self, max_parts: int):
        self.max_parts = max_parts
        self.parts = 1


class _BoundedPart(Message):
    """A message part that refuses, as the parser attaches a part to it, one nested too deep or one
    part too many: the parser stops there, before anything recursive goes deeper."""

    def __init__(self, count: _PartCount, policy=email.policy.compat32):
        super().__init__(policy)
        self._count = count
        self._depth = 0

    def attach(self, payload: "_BoundedPart"):
        payload._depth = self._depth + 1
        self._count.parts += 1
        if payload._depth > MAX_MIME_DEPTH:
            raise ReportTooLarge(f"MIME parts nested more than {MAX_MIME_DEPTH} deep", "mail")
        if self._count.parts > self._count.max_parts:
            raise ReportTooLarge(f"more than {self._count.max_parts} MIME parts", "mail")
        super().attach(payload)


def parse_message(raw: bytes, max_parts: int) -> Message:
    """The message in `raw`; ReportTooLarge if its parts nest deeper than MAX_MIME_DEPTH or number
    more than `max_parts` (the message itself and every multipart container count)."""
    factory = partial(_BoundedPart, _PartCount(max_parts))
    return email.message_from_bytes(raw, factory, policy=email.policy.compat32)


def report_parts(message: Message) -> list[ReportPart]:
    """The parts of `message` that hold a report, in message order."""
    parts = []
    for part in message.walk():
        if part.is_multipart():
            continue
        content_type = part.get_content_type()
        filename = part.get_filename()
        if content_type not in MEDIA_TYPES and content_type not in OTHER_TYPES:
            continue
        data = part.get_payload(decode=True) or b""
        if content_type in MEDIA_TYPES or _looks_like_report(filename, data):
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
        subject=_unfold(_decoded(message.get("Subject"))),
    )


def _decoded(value):
    """A header with its RFC 2047 encoded words decoded; as it came if they do not decode."""
    if value is None:
        return None
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        return value


def _unfold(value) -> str | None:
    if value is None:
        return None
    return " ".join(str(value).split()) or None
