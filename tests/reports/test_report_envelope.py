"""What comes with a report besides its body: the RFC 8460 file name, the mail's TLS-Report headers
and Subject, the report URL. The body wins; each disagreement is noted, and a no-policy-found block
without a domain gets the one the envelope names."""

import gzip
from datetime import UTC, datetime

import pytest

from reports.parsing.envelope import (
    Envelope,
    FileName,
    Subject,
    attribute,
    disagreements,
    parse_file_name,
    parse_subject,
)
from reports.parsing.message import MailHeaders, mail_headers, parse_message, report_parts
from reports.parsing.schema import parse_report
from tests.support.reportdata import SAMPLES, encode, report

NAME = "mail.sndr.example.com!example.net!1470013207!1470186007!001.json.gz"


def headers(report_domain="example.com", submitter="sender.example", subject=None) -> MailHeaders:
    return MailHeaders(report_domain, submitter, None, subject)


def sample_mail(name: str):
    message = parse_message((SAMPLES / name).read_bytes(), 100)
    part = report_parts(message)[0]
    return mail_headers(message), part.filename, parse_report(gzip.decompress(part.data))


def test_the_rfc_8460_file_name_is_parsed():
    """FN-01, the checklist's example."""
    assert parse_file_name(NAME) == FileName(
        "mail.sndr.example.com", "example.net", datetime(2016, 8, 1, 1, 0, 7, tzinfo=UTC),
        datetime(2016, 8, 3, 1, 0, 7, tzinfo=UTC), "001", True)
    assert parse_file_name("sender!example.net!1470013207!1470186007.json").unique_id is None  # egressif.io
    for other in ("report.json.gz", "a!b!c!d!e.json.gz", "a!b!1!2!3.xml", None, "", "a!b!999999999999!1.json"):
        assert parse_file_name(other) is None  # only RECOMMENDED: no error


@pytest.mark.parametrize("text", [
    "Report Domain: example.com Submitter: sender.example Report-ID: <id-1@sender.example>",
    "Report Domain: example.com\r\n Submitter: sender.example\r\n Report-ID:\r\n <id-1@sender.example>",  # folded
    "Fwd: Report Domain: EXAMPLE.com Submitter: sender.example. Report-ID: id-1@sender.example",  # no brackets
])
def test_the_subject_is_parsed_folded_or_not(text):
    """MAIL-04."""
    assert parse_subject(text) == Subject("example.com", "sender.example", "id-1@sender.example")


def test_a_subject_of_another_shape_is_no_subject():
    assert parse_subject("TLS report for example.com") is None


@pytest.mark.parametrize("name", ["google.com_smtp_tls_report.eml", "tlsrpt-reporter-sys4.eml"])
def test_real_report_mails_agree_with_their_reports(name):
    """Google writes the report-id in its own form in the Subject, tlsrpt-reporter adds `@<submitter>`:
    both name the report's id; the file names name its domain, dates and sender."""
    mail, file_name, parsed = sample_mail(name)
    assert parse_file_name(file_name) is not None and parse_subject(mail.subject) is not None
    assert disagreements(parsed, Envelope(mail, file_name)) == []


def test_a_file_name_subject_and_headers_that_disagree_with_the_report_are_each_noted():
    """MV-01: the report's values are kept."""
    parsed = parse_report(encode(report(report_id="id-1")))
    mail = headers("other.example", "elsewhere.example",
                   "Report Domain: third.example Submitter: sender.example Report-ID: <id-2@sender.example>")
    notes = disagreements(parsed, Envelope(mail, "attacker.example!fourth.example!1793577600!1793663999!1.json.gz"))
    assert notes == [
        "mail: TLS-Report-Domain other.example is not the report's example.com",
        "mail: TLS-Report-Submitter elsewhere.example differs from contact-info domain",
        "mail: Subject names report domain third.example, the report example.com",
        "mail: Subject names submitter sender.example, TLS-Report-Submitter elsewhere.example",
        "mail: Subject names Report-ID id-2@sender.example, the report id-1",
        "file name: names policy domain fourth.example, the report example.com",
        "file name: names 2026-11-02T00:00:00Z to 2026-11-02T23:59:59Z, the report 2026-11-01T00:00:00Z to "
        "2026-11-01T23:59:59Z",
        "file name: names sender attacker.example, the report's contact-info sender.example",
    ]
    assert parsed.policies[0].policy_domain == "example.com"


def test_a_mail_without_tls_report_headers_is_noted():
    notes = disagreements(parse_report(encode(report())), Envelope(headers(None, None)))
    assert notes == ["mail: TLS-Report-Domain or TLS-Report-Submitter header missing"]


def no_policy_found(report_id="report-1"):
    document = report(report_id=report_id, contact_info=None)
    document["policies"] = [{"policy": {"policy-type": "no-policy-found"},
                             "summary": {"total-successful-session-count": 4, "total-failure-session-count": 0}}]
    return parse_report(encode(document))


@pytest.mark.parametrize(("envelope", "report_id", "domain", "source"), [
    (Envelope(url_domains=("example.com",)), "report-1", "example.com", "the report URL"),
    (Envelope(headers("Example.COM")), "report-1", "example.com", "the TLS-Report-Domain header"),
    (Envelope(headers(None, subject="Report Domain: example.com Submitter: s.example Report-ID: <1@s.example>")),
     "report-1", "example.com", "the Subject"),
    (Envelope(file_name=NAME), "report-1", "example.net", "the file name"),
    (Envelope(), "2026-11-27T00:00:00Z_idx1_example.test", "example.test", "the report-id"),  # tlsrpt-reporter
    (Envelope(), "133749184000000000+example.org", "example.org", "the report-id"),  # Microsoft's form
    # A report URL of several domains: the first clue that names one of them.
    (Envelope(headers("other.example"), NAME.replace("example.net", "b.example"), ("a.example", "b.example")),
     "report-1", "b.example", "the file name"),
])
def test_a_no_policy_found_block_without_a_domain_gets_the_one_the_envelope_names(envelope, report_id, domain,
                                                                                  source):
    """JSON-10: Postfix with sys4's tlsrpt-reporter leaves policy-domain out of such blocks."""
    attributed = attribute(no_policy_found(report_id), envelope)
    assert attributed.policies[0].policy_domain == domain
    assert attributed.notes[-1] == f"$.policies[0].policy.policy-domain: missing, read as {domain} from {source}"


@pytest.mark.parametrize(("envelope", "report_id"), [
    (Envelope(), "report-1"),
    (Envelope(), "133749184000000000+"),  # Microsoft, with nothing after the +
    (Envelope(headers("not a domain!")), "1700000000_3"),  # an unknown generator's <epoch>_<n>
    (Envelope(headers("other.example"), url_domains=("a.example", "b.example")), "report-1"),
])
def test_a_block_nothing_names_a_domain_for_stays_without_one(envelope, report_id):
    assert attribute(no_policy_found(report_id), envelope).policies[0].policy_domain is None
