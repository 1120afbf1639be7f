"""DKIM on report mail (RFC 8460 section 5.3), verified against keys published by the lab's Knot."""

import base64
import re

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from reports.channels import dkim as report_dkim
from reports.channels.mail import ingest_message
from reports.ingest import Settings
from reports.models import Report
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from tests.lab.dns import txt
from tests.reports.test_report_cli import report_mail
from tests.support.reportdata import gz, report

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PRIVATE_PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
PUBLIC = base64.b64encode(KEY.public_key().public_bytes(
    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()
HEADERS = [b"from", b"to", b"subject", b"tls-report-domain", b"tls-report-submitter"]
# The longest signing domain whose key can be looked up: s._domainkey.<domain> is 253 characters.
LONG_DOMAIN = ".".join(["a" * 63] * 3 + ["b" * 33, "sender.example"])


@pytest.fixture(scope="module")
def nameserver(dns_lab):
    """The lab's Knot, authoritative for sender.example (its address lives in the lab namespace)."""
    dns_lab.add_zone("sender.example", [
        f"tlsrpt._domainkey TXT {txt(f'v=DKIM1; k=rsa; s=tlsrpt; p={PUBLIC}')}",
        f"plain._domainkey TXT {txt(f'v=DKIM1; k=rsa; p={PUBLIC}')}",
        f"other._domainkey TXT {txt(f'v=DKIM1; k=rsa; s=other; p={PUBLIC}')}",
        f"email._domainkey TXT {txt(f'v=DKIM1; k=rsa; s=email; p={PUBLIC}')}",
        f"both._domainkey TXT {txt(f'v=DKIM1; k=rsa; s=email:tlsrpt; p={PUBLIC}')}",
        f"any._domainkey TXT {txt(f'v=DKIM1; k=rsa; s=*; p={PUBLIC}')}",
        f"s._domainkey.{LONG_DOMAIN.removesuffix('.sender.example')} TXT {txt(f'v=DKIM1; k=rsa; p={PUBLIC}')}",
    ])
    return f"{dns_lab.authoritative}:53"


def signed(message: bytes, selector=b"tlsrpt", domain=b"sender.example", **options) -> bytes:
    return dkim.sign(message, selector, domain, PRIVATE_PEM, include_headers=HEADERS, **options) + message


def mail(report_id="dkim-1", submitter="sender.example") -> bytes:
    return report_mail(gz(report(report_id=report_id)), submitter=submitter)


@pytest.fixture
def hosted(session):
    add_domain(session, "example.com", make_policy("testing", ["mx1.example.com"], 86400), actor="test")


@pytest.mark.parametrize(
    ("build", "result"),
    [
        (lambda: signed(mail()), "pass d=sender.example"),
        (lambda: signed(mail(), selector=b"plain"), "pass d=sender.example"),  # keys of big senders carry no s=
        (lambda: mail(), "none"),
        (lambda: signed(mail()).replace(b"Report Domain:", b"Report Domain: x"), "fail"),
        (lambda: signed(mail(), selector=b"other"), "fail"),  # a key for another service
        (lambda: signed(mail(), selector=b"missing"), "fail"),
        (lambda: signed(mail(), selector=b"email"), "fail"),  # RFC 8460 section 3: not a key for reports
        (lambda: signed(mail(), selector=b"both"), "pass d=sender.example"),  # s= is a list (RFC 6376 3.6.1)
        (lambda: signed(mail(), selector=b"any"), "pass d=sender.example"),
        (lambda: signed(mail(), length=True) + b"appended after signing with l=\r\n", "fail"),
        (lambda: signed(mail(), length=True), "fail"),  # l= is refused even when nothing was appended
        (lambda: signed(mail(), domain=b"sender.example").replace(
            b"TLS-Report-Submitter: sender.example", b"TLS-Report-Submitter: unrelated.example"), "fail"),
        (lambda: signed(mail(submitter="mail.sender.example")), "pass d=sender.example"),  # one organisation
        (lambda: signed(mail(submitter="example")), "fail"),  # a public suffix names no organisation
    ],
    ids=["valid", "key-without-service-type", "unsigned", "tampered", "other-service", "no-key", "email-only-key",
         "key-for-email-and-reports", "key-for-any-service", "l-tag-body-extended", "l-tag", "not-the-submitter",
         "submitter-in-the-signers-organisation", "submitter-a-public-suffix"],
)
def test_verification_results(lab_netns, nameserver, build, result):
    message = build()
    submitter = re.search(rb"TLS-Report-Submitter: (\S+)", message)[1].decode()
    with lab_netns.entered():
        assert report_dkim.verify(message, submitter, report_dkim.txt_lookup(nameserver)) == result


def test_require_refuses_unsigned_reports_and_stores_signed_ones(lab_netns, session, hosted, nameserver):
    settings = Settings(dkim="require", dkim_nameserver=nameserver)
    with lab_netns.entered():
        refused = ingest_message(session, mail("unsigned"), settings, source="mail")
        assert not refused.ok and "DKIM none" in str(refused.errors[0])
        assert "TLSRPT_DKIM_NAMESERVER" in str(refused.errors[0]) and "TLSRPT_DKIM=record" in str(refused.errors[0])
        accepted = ingest_message(session, signed(mail("signed")), settings, source="mail")
        assert accepted.ok
    assert session.scalars(select(Report)).one().dkim_result == "pass d=sender.example"


def test_a_pass_by_the_longest_signing_domain_is_stored_whole(lab_netns, session, hosted, nameserver, monkeypatch):
    assert len(f"s._domainkey.{LONG_DOMAIN}") == 253
    # dkimpy's signer folds inside d= and i= at different places, which its verifier then refuses.
    monkeypatch.setattr(dkim, "fold", lambda header, **_: header)
    settings = Settings(dkim="require", dkim_nameserver=nameserver)
    message = signed(mail("long-domain"), selector=b"s", domain=LONG_DOMAIN.encode())
    with lab_netns.entered():
        assert ingest_message(session, message, settings, source="mail").ok
    assert session.scalars(select(Report)).one().dkim_result == f"pass d={LONG_DOMAIN}"


def test_record_mode_stores_unsigned_reports_with_their_result(lab_netns, session, hosted, nameserver):
    settings = Settings(dkim="record", dkim_nameserver=nameserver)
    with lab_netns.entered():
        assert ingest_message(session, mail("unsigned"), settings, source="mail").ok
    assert session.scalars(select(Report)).one().dkim_result == "none"


@pytest.mark.slow  # waits out the lookup's timeout
def test_unanswered_dns_is_a_temporary_error_and_asks_for_redelivery(app, session, hosted, monkeypatch):
    silent = "127.0.0.1:9"  # the discard port: nothing answers
    assert report_dkim.verify(signed(mail()), "sender.example", report_dkim.txt_lookup(silent, 0.5)) == "temperror"
    monkeypatch.setitem(app.config, "TLSRPT_DKIM", "require")  # the default
    monkeypatch.setitem(app.config, "TLSRPT_DKIM_NAMESERVER", silent)
    result = app.test_cli_runner().invoke(args=["report", "ingest-mail"], input=signed(mail()))
    assert result.exit_code == 75, result.output
    assert "try again later" in result.output


@pytest.mark.parametrize("mode", ["require", "record"])
def test_a_key_lookup_no_server_could_answer_asks_for_redelivery(
        app, lab_netns, session, hosted, nameserver, monkeypatch, mode):
    # The server is not authoritative for elsewhere.example and answers REFUSED: no verdict, not a fail.
    message = signed(report_mail(gz(report()), submitter="elsewhere.example"), domain=b"elsewhere.example")
    monkeypatch.setitem(app.config, "TLSRPT_DKIM", mode)
    monkeypatch.setitem(app.config, "TLSRPT_DKIM_NAMESERVER", nameserver)
    with lab_netns.entered():
        assert report_dkim.verify(message, "elsewhere.example", report_dkim.txt_lookup(nameserver)) == "temperror"
        result = app.test_cli_runner().invoke(args=["report", "ingest-mail"], input=message)
    assert result.exit_code == 75, result.output
    assert session.scalars(select(Report)).all() == []
