"""`flask report ...`: mail from the MTA with sysexits codes, file imports, listing, tokens."""

import json
import mailbox
from email.message import EmailMessage

import pytest
from sqlalchemy import func, select

from reports.ingest import Settings, ingest_report
from reports.models import Report
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from tests import factories
from tests.support.reportdata import CASES, SAMPLES, VALID, encode, gz, report

EX_OK, EX_DATAERR = 0, 65


@pytest.fixture
def hosted(session):
    for name in ("example.com", "example.test", "cardinalhealth.ca"):
        add_domain(session, name, make_policy("testing", ["mx1." + name], 86400), actor="test")


@pytest.fixture
def run(app, session):
    runner = app.test_cli_runner()

    def invoke(*args, input: bytes | None = None):
        return runner.invoke(args=list(args), input=input, catch_exceptions=False)

    return invoke


def report_mail(body: bytes, content_type="application/tlsrpt+gzip", filename="sender!example.com!1!2.json.gz",
                submitter="sender.example") -> bytes:
    message = EmailMessage()
    message["From"] = "tlsrpt@sender.example"
    message["To"] = "tlsrpt@example.com"
    message["Subject"] = "Report Domain: example.com Submitter: sender.example Report-ID: <report-1@sender.example>"
    message["TLS-Report-Domain"] = "example.com"
    message["TLS-Report-Submitter"] = submitter
    message.set_content("This is an aggregate TLS report from sender.example")
    if body is not None:
        maintype, subtype = content_type.split("/")
        message.add_attachment(body, maintype=maintype, subtype=subtype, filename=filename)
    message.replace_header("Content-Type", message["Content-Type"].replace("multipart/mixed", "multipart/report"))
    return message.as_bytes()


def stored(session) -> int:
    return session.scalar(select(func.count()).select_from(Report))


MAIL_CASES = [case for case in CASES if case[3] != 415]


@pytest.mark.parametrize(("name", "content_type", "build", "status"), MAIL_CASES, ids=[c[0] for c in MAIL_CASES])
def test_corpus_input_mailed_gets_its_exit_code(run, session, hosted, name, content_type, build, status):
    result = run("report", "ingest-mail", input=report_mail(build()))
    assert result.exit_code == (EX_OK if status == 201 else EX_DATAERR), result.output
    assert stored(session) == (1 if status == 201 else 0)


@pytest.mark.parametrize(
    "message",
    [
        b"",
        b"Subject: hello\r\n\r\njust text\r\n",
        report_mail(None),
        report_mail(b"%PDF-1.4", "application/pdf", "report.pdf"),
        report_mail(b"not a report", "application/octet-stream", "notes.txt"),
        b"\xff\xfe garbage that is not a mail at all",
    ],
    ids=["empty", "text-only", "multipart-without-attachment", "pdf-attachment", "octet-stream-not-report", "garbage"],
)
def test_mail_without_a_report_exits_65(run, session, hosted, message):
    result = run("report", "ingest-mail", input=message)
    assert result.exit_code == EX_DATAERR
    assert "rejected" in result.output
    assert stored(session) == 0


def test_mail_over_the_size_limit_exits_65(app, run, session, hosted):
    huge = report_mail(b"\x1f\x8b" + b"x" * app.config["TLSRPT_MAX_MAIL_BYTES"])
    result = run("report", "ingest-mail", input=huge)
    assert result.exit_code == EX_DATAERR
    assert "larger than" in result.output


@pytest.mark.parametrize("name", ["google.com_smtp_tls_report.eml", "tlsrpt-reporter-sys4.eml"])
def test_real_report_mails_are_stored_and_a_second_delivery_is_a_duplicate(run, session, hosted, name):
    raw = (SAMPLES / name).read_bytes()
    first = run("report", "ingest-mail", input=raw)
    second = run("report", "ingest-mail", input=raw)
    assert (first.exit_code, second.exit_code) == (EX_OK, EX_OK)
    assert first.output.startswith("stored: ")
    assert second.output.startswith("duplicate: ")
    assert session.scalars(select(Report)).one().source == "mail"


def test_the_same_report_by_https_and_by_mail_is_stored_once(client, run, session, hosted):
    assert client.post("/tlsrpt", data=(SAMPLES / "tlsrpt-reporter-sys4.json.gz").read_bytes(),
                       headers={"Content-Type": "application/tlsrpt+gzip"}).status_code == 201
    result = run("report", "ingest-mail", input=(SAMPLES / "tlsrpt-reporter-sys4.eml").read_bytes())
    assert result.output.startswith("duplicate: ")
    assert stored(session) == 1


def test_mail_part_types_real_senders_use(run, session, hosted):
    variants = [
        ("application/tlsrpt+json", encode(report(report_id="a")), "a.json"),
        ("application/gzip", gz(report(report_id="b")), "b.json.gz"),
        ("application/octet-stream", gz(report(report_id="c")), "c.bin"),
        ("application/tlsrpt+gzip", encode(report(report_id="d")), "d.json.gz"),  # labelled gzip, holds JSON
    ]
    for content_type, body, filename in variants:
        assert run("report", "ingest-mail", input=report_mail(body, content_type, filename)).exit_code == EX_OK
    assert stored(session) == 4


def test_submitter_that_disagrees_with_contact_info_is_noted(run, session, hosted):
    run("report", "ingest-mail", input=report_mail(gz(VALID), submitter="elsewhere.example"))
    assert any("TLS-Report-Submitter" in note for note in session.scalars(select(Report)).one().notes)


def test_mail_without_tls_report_headers_is_stored_with_a_note(run, session, hosted):
    """RFC 8460 section 5.3 says the headers MUST be there; the report is still whole, so it is kept and noted."""
    message = mailbox.Message(report_mail(gz(VALID)))
    del message["TLS-Report-Domain"], message["TLS-Report-Submitter"]
    assert run("report", "ingest-mail", input=message.as_bytes()).exit_code == EX_OK
    notes = session.scalars(select(Report)).one().notes
    assert "mail: TLS-Report-Domain or TLS-Report-Submitter header missing" in notes


def test_a_mail_whose_envelope_disagrees_with_its_report_is_stored_with_each_disagreement(run, session, hosted):
    """MV-01: TLS-Report-Domain, the file name and the Subject name others; the report's values are kept."""
    message = mailbox.Message(report_mail(gz(VALID), filename="sender.example!other.example!1!2!1.json.gz"))
    message.replace_header("TLS-Report-Domain", "other.example")
    message.replace_header("Subject", "Report Domain: example.com Submitter: sender.example Report-ID: <x@y>")
    assert run("report", "ingest-mail", input=message.as_bytes()).exit_code == EX_OK
    stored = session.scalars(select(Report)).one()
    assert (stored.report_id, stored.policies[0].policy_domain) == ("report-1", "example.com")
    assert {note.split(" names ")[0].split(" is ")[0] for note in stored.notes} == {
        "mail: TLS-Report-Domain other.example", "file name:", "mail: Subject"}


def test_a_no_policy_found_report_mailed_without_a_domain_is_kept_for_the_tls_report_domain(run, session, hosted):
    """JSON-10, as Postfix with sys4's tlsrpt-reporter mails it."""
    document = report(report_id="no-domain-here", contact_info="", policies=[{
        "policy": {"policy-type": "no-policy-found"},
        "summary": {"total-successful-session-count": 3, "total-failure-session-count": 0}}])
    assert run("report", "ingest-mail", input=report_mail(gz(document))).exit_code == EX_OK
    stored = session.scalars(select(Report)).one()
    assert stored.policies[0].policy_domain == "example.com"
    assert any(note.endswith("from the TLS-Report-Domain header") for note in stored.notes)


def test_an_imported_file_is_read_with_its_rfc_8460_name(run, session, hosted, tmp_path):
    """FN-01: the name attributes a block without a domain and is compared with the report."""
    document = report(report_id="no-domain-here", contact_info=None, policies=[{
        "policy": {"policy-type": "no-policy-found"},
        "summary": {"total-successful-session-count": 3, "total-failure-session-count": 0}}])
    (tmp_path / "sender.example!example.com!1793491200!1793577599!7.json.gz").write_bytes(gz(document))
    assert run("report", "import", str(tmp_path)).exit_code == EX_OK
    stored = session.scalars(select(Report)).one()
    assert stored.policies[0].policy_domain == "example.com"
    assert stored.notes == ["$.contact-info: missing",
                            "$.policies[0].policy.policy-domain: missing, read as example.com from the file name"]


def test_import_reads_files_mbox_and_maildir_and_summarises(run, session, hosted, tmp_path):
    (tmp_path / "one.json").write_bytes(encode(report(report_id="one")))
    (tmp_path / "two.json.gz").write_bytes(gz(report(report_id="two")))
    (tmp_path / "bad.json").write_bytes(b"{not json")
    box = mailbox.mbox(tmp_path / "reports.mbox")
    box.add(report_mail(gz(report(report_id="three"))))
    box.add(report_mail(gz(report(report_id="one"))))
    box.close()
    maildir = mailbox.Maildir(tmp_path / "Maildir")
    maildir.add(report_mail(gz(report(report_id="four"))))
    maildir.add(b"Subject: no report\r\n\r\nhello\r\n")
    result = run("report", "import", str(tmp_path), str(SAMPLES / "rfc8460.json"))
    summary = result.output.strip().splitlines()[-1]
    assert summary.startswith("stored 4, duplicate 1, conflicting copies 0, rejected 3 ("), summary
    assert "no TLS-RPT report in this message" in summary and "not JSON" in summary
    assert "no domain hosted here" in summary  # the RFC example is about company-y.example
    assert result.exit_code == EX_DATAERR
    assert stored(session) == 4


def test_list_json_has_the_documented_keys(run, session, hosted):
    run("report", "import", str(SAMPLES / "tlsrpt-reporter-sys4.json"), str(SAMPLES / "mail.ru.json"))
    listed = json.loads(run("report", "list", "--json").output)
    assert {(r["organization_name"], r["report_id"]) for r in listed} == {
        ("MTA-STS Lab Sender", "2026-11-27T00:00:00Z_idx1_example.test"),
        ("Mail.ru", "b28254de-7b2e-be36-bb5c-4c3b92da8b25@mail.ru"),
    }
    sys4 = next(r for r in listed if r["organization_name"] == "MTA-STS Lab Sender")
    assert [(p["policy_type"], p["policy_domain"], p["successful_session_count"], p["failed_session_count"])
            for p in sys4["policies"]] == [("tlsa", "example.test", 1, 1), ("sts", "example.test", 5, 2)]
    only = json.loads(run("report", "list", "--domain", "EXAMPLE.COM", "--json").output)
    assert [r["organization_name"] for r in only] == ["Mail.ru"]


def test_list_text_never_prints_control_characters(run, session, hosted):
    ingest_report(session, encode(report(organization_name="Evil\x1b[2J\x07Org")), Settings(), source="file")
    output = run("report", "list").output
    assert "\x1b" not in output and "\x07" not in output
    assert "Evil\\x1b[2J\\x07Org" in output


def test_token_create_and_list(run, session, hosted):
    created = run("report", "token", "create", "example.com", "example.test", "--label", "tenant 7")
    assert created.exit_code == 0
    token = created.output.split()[1].rstrip(":")
    assert f"/tlsrpt/{token}" in created.output
    assert token in run("report", "token", "list").output
    refused = run("report", "token", "create", "not-hosted.example")
    assert refused.exit_code == 1 and "not hosted" in refused.output


def test_a_token_label_fits_its_column(run, session):
    names = [f"{'customer-with-a-long-name-' * 2}{n}.example" for n in range(6)]
    for name in names:
        factories.host(session, name)
    created = run("report", "token", "create", *names)
    assert created.exit_code == 0, created.output
    assert "(6 domains)" in run("report", "token", "list").output
    refused = run("report", "token", "create", names[0], "--label", "x" * 255)
    assert refused.exit_code == 2 and "--label" in refused.output and "at most 254" in refused.output


def test_import_refuses_a_file_over_the_limits(app, run, session, hosted, tmp_path, monkeypatch):
    monkeypatch.setitem(app.config, "TLSRPT_MAX_COMPRESSED_BYTES", 1000)
    monkeypatch.setitem(app.config, "TLSRPT_MAX_MAIL_BYTES", 1000)
    (tmp_path / "big.json").write_bytes(encode(report(padding="p" * 5000)))
    result = run("report", "import", str(tmp_path / "big.json"))
    assert result.exit_code == EX_DATAERR
    assert "rejected 1 (1 × $: body of 1001 bytes exceeds the limit of 1000)" in result.output
