"""Hostile mail to `flask report ingest-mail`: exit 65 (refused) with a line per refusal, never a traceback.

The MIME structure is what is hostile here; report bodies are covered through every
channel by the report corpus in tests/support/reportdata.py.
"""

import base64
import gzip
import mailbox
import os

import pytest

from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from tests.reports.test_report_cli import report_mail
from tests.support.reportdata import encode, gz, report

EX_DATAERR = 65
HEAD = (b"From: tlsrpt@sender.example\r\nTo: tlsrpt@example.com\r\nSubject: Report Domain: example.com\r\n"
        b"TLS-Report-Domain: example.com\r\nTLS-Report-Submitter: sender.example\r\n")


def multipart(parts: list[bytes], boundary: bytes = b"b") -> bytes:
    body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts) + b"--" + boundary + b"--\r\n"
    return HEAD + b"Content-Type: multipart/report; boundary=" + boundary + b"\r\n\r\n" + body


def attachment(data: bytes, content_type: bytes = b"application/tlsrpt+gzip", encoding: bytes = b"base64") -> bytes:
    payload = base64.encodebytes(data) if encoding == b"base64" else data
    return (b"Content-Type: " + content_type + b"; name=r.json.gz\r\nContent-Transfer-Encoding: " + encoding
            + b"\r\nContent-Disposition: attachment; filename=r.json.gz\r\n\r\n" + payload)


def nested(depth: int) -> bytes:
    inner = attachment(gzip.compress(encode(report())))
    for level in range(depth):
        boundary = f"n{level}".encode()
        inner = (b"Content-Type: multipart/mixed; boundary=" + boundary + b"\r\n\r\n--" + boundary + b"\r\n" + inner
                 + b"\r\n--" + boundary + b"--\r\n")
    return HEAD + inner


MAILS = {
    "empty": b"",
    "headers only": HEAD,
    "binary garbage": bytes(range(256)) * 40,
    "no report part": report_mail(None),
    "text part only": multipart([b"Content-Type: text/plain\r\n\r\nhello"]),
    "missing boundary": HEAD + b"Content-Type: multipart/report\r\n\r\n--b\r\n" + attachment(b"x") + b"\r\n--b--",
    "unterminated multipart": HEAD + b"Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n" + attachment(b"xyz"),
    "bad base64": multipart([attachment(b"!!!not base64!!!", encoding=b"7bit").replace(b"7bit", b"base64")]),
    "not gzip": multipart([attachment(b"plain text, not gzip")]),
    "truncated gzip": multipart([attachment(gzip.compress(encode(report()))[:30])]),
    "gzip of garbage": multipart([attachment(gzip.compress(b"\x00\xff" * 1000))]),
    "json that is no report": multipart([attachment(b"{\"a\": 1}", b"application/tlsrpt+json", b"7bit")]),
    "deep json": multipart([attachment(b"[" * 50_000, b"application/tlsrpt+json", b"7bit")]),
    "gzip bomb": multipart([attachment(gzip.compress(b" " * (60 * 1024 * 1024)))]),
    "many bad parts": multipart([attachment(b"bad %d" % n) for n in range(50)]),
    "quoted-printable garbage": multipart([attachment(b"=ZZ=\r\n=", b"application/tlsrpt+json", b"quoted-printable")]),
    "unknown transfer encoding": multipart([attachment(b"{}", b"application/tlsrpt+json", b"x-unknown")]),
    "nul bytes in headers": HEAD.replace(b"sender.example\r\n", b"sender\x00.example\r\n") + b"\r\nbody",
    "8-bit header garbage": b"Subject: \xff\xfe\xfd\r\n" + HEAD + b"\r\nbody",
    "encoded-word garbage": b"Subject: =?x-unknown?q?=ff=fe?=\r\n" + HEAD + b"\r\n",
    "endless header line": HEAD + b"X-Long: " + b"a" * 200_000 + b"\r\n\r\nbody",
    "bare CR line ends": HEAD.replace(b"\r\n", b"\r") + b"\r\r" + attachment(b"x"),
    "report type with a charset trick": multipart([attachment(b"{}", b"application/tlsrpt+json; charset=x-evil",
                                                              b"7bit")]),
    "filename traversal": multipart([attachment(b"x").replace(b"filename=r.json.gz", b"filename=../../etc/passwd")]),
    "rfc2231 filename garbage": multipart([attachment(b"x").replace(b"filename=r.json.gz",
                                                                    b"filename*=utf-8''%ff%fe%00.json.gz")]),
    "over the size limit": multipart([attachment(b"x" * (11 * 1024 * 1024), b"application/tlsrpt+json", b"7bit")]),
    "nested 50 deep, no report inside": nested(50).replace(b"application/tlsrpt+gzip", b"text/plain"),
    "multipart nested 1,200 deep": nested(1200),
    "more parts than allowed": multipart([attachment(gzip.compress(encode(report()))) for _ in range(120)]),
    # Each part expands about 13 times, within the ratio a body may: three are too much for one mail.
    "gzip parts over the mail's budget": multipart([attachment(gzip.compress(
        os.urandom(20 * 1024 * 1024).translate(bytes((b"a" + b"b" * 31)[n % 32] for n in range(256))), 1))] * 3),
}


def ingest(app, raw: bytes):
    return app.test_cli_runner().invoke(args=["report", "ingest-mail"], input=raw, catch_exceptions=False)


@pytest.mark.parametrize("raw", MAILS.values(), ids=MAILS.keys())
def test_a_hostile_mail_is_refused_with_exit_65_and_its_reasons(app, session, raw):
    result = ingest(app, raw)
    assert result.exit_code == EX_DATAERR, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("rejected: ") for line in lines), lines


@pytest.mark.parametrize(("raw", "reason"), [
    (MAILS["multipart nested 1,200 deep"], "rejected: mail: MIME parts nested more than 10 deep"),
    (MAILS["more parts than allowed"], "rejected: mail: more than 100 MIME parts"),
    (MAILS["gzip parts over the mail's budget"],
     "rejected: mail: the reports of this mail decompress to more than 52428800 bytes together"),
], ids=["depth", "parts", "decompressed"])
def test_a_mail_is_limited_as_a_whole_with_one_line_that_says_how(app, session, raw, reason):
    assert reason in ingest(app, raw).stderr.splitlines()


def test_report_import_of_a_maildir_passes_a_mail_nested_too_deep_and_goes_on(app, session, tmp_path):
    add_domain(session, "example.com", make_policy("testing", ["mx1.example.com"], 86400), actor="test")
    box = mailbox.Maildir(tmp_path / "Maildir")
    for message in (report_mail(gz(report(report_id="before"))), MAILS["multipart nested 1,200 deep"],
                    report_mail(gz(report(report_id="after")))):
        box.add(message)
    result = app.test_cli_runner().invoke(args=["report", "import", str(tmp_path / "Maildir")], catch_exceptions=False)
    assert result.exit_code == EX_DATAERR and "Traceback" not in result.output
    assert result.stdout == ("stored 2, duplicate 0, conflicting copies 0, rejected 1 "
                             "(1 × mail: MIME parts nested more than 10 deep)\n")
