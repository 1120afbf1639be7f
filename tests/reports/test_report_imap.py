"""`flask report fetch-imap` against a real Dovecot over IMAPS."""

import imaplib
import os
import ssl

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from reports.channels import imap
from reports.models import Report
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from tests.reports.test_report_cli import report_mail
from tests.support.mailserver import dovecot
from tests.support.reportdata import SAMPLES, gz, report


@pytest.fixture(scope="module")
def imap_server(test_ca):
    with dovecot(test_ca) as server:
        yield server


def imap_client(port, ca):
    client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ssl.create_default_context(cafile=str(ca)))
    return client


def folder_flags(client, folder: str) -> list[bytes]:
    client.select(f'"{folder}"')
    uids = client.uid("SEARCH", None, "ALL")[1][0].split()
    return [client.uid("FETCH", uid, "(FLAGS)")[1][0] for uid in uids]


def test_reports_move_to_the_done_folder_and_failures_stay_flagged(app, session, imap_server, monkeypatch):
    port, ca, user, password = imap_server
    add_domain(session, "example.test", make_policy("testing", ["mx1.example.test"], 86400), actor="test")
    add_domain(session, "example.com", make_policy("testing", ["mx1.example.com"], 86400), actor="test")
    for key, value in {"TLSRPT_IMAP_HOST": "127.0.0.1", "TLSRPT_IMAP_PORT": port, "TLSRPT_IMAP_USER": user,
                       "TLSRPT_IMAP_PASSWORD": password, "TLSRPT_IMAP_CAFILE": str(ca)}.items():
        monkeypatch.setitem(app.config, key, value)
    client = imap_client(port, ca)
    client.login(user, password)
    for message in (
        (SAMPLES / "tlsrpt-reporter-sys4.eml").read_bytes(),
        report_mail(gz(report(report_id="by-imap"))),
        b"Subject: out of office\r\n\r\nI am away.\r\n",
        report_mail(b"\x1f\x8b broken gzip"),
    ):
        client.append("INBOX", None, None, message)
    runner = app.test_cli_runner()

    first = runner.invoke(args=["report", "fetch-imap"], catch_exceptions=False)
    assert first.exit_code == 0, first.output
    assert first.output.startswith("2 message(s) with reports moved to tlsrpt-processed, 2 flagged (")
    assert "no TLS-RPT report in this message" in first.output
    assert sorted(r.report_id for r in session.scalars(select(Report))) == [
        "2026-11-27T00:00:00Z_idx1_example.test", "by-imap"]
    assert {r.source for r in session.scalars(select(Report))} == {"imap"}
    inbox = folder_flags(client, "INBOX")
    assert len(inbox) == 2 and all(b"\\Flagged" in flags for flags in inbox)
    assert len(folder_flags(client, "tlsrpt-processed")) == 2

    again = runner.invoke(args=["report", "fetch-imap"], catch_exceptions=False)
    assert again.output.startswith("0 message(s) with reports moved to tlsrpt-processed, 0 flagged")
    client.logout()


def test_mail_over_the_size_limit_is_flagged_without_being_fetched(imap_server):
    port, ca, user, password = imap_server
    box = imap.Mailbox("127.0.0.1", port, user, password, folder="oversized", cafile=str(ca))
    client = imap.connect(box)
    try:
        client.create("oversized")
        client.append("oversized", None, None, report_mail(os.urandom(4000)))  # 5 KB once base64-encoded
        fetched = []
        assert imap.poll(client, box, lambda raw: fetched.append(raw) or imap.DONE, 2000) == {imap.FAILED: 1}
        assert fetched == []
        assert b"\\Flagged" in folder_flags(client, "oversized")[0]
    finally:
        client.logout()


def test_fetch_without_imap_settings_is_a_configuration_error(app, session, monkeypatch):
    monkeypatch.setitem(app.config, "TLSRPT_IMAP_HOST", "")
    result = app.test_cli_runner().invoke(args=["report", "fetch-imap"], catch_exceptions=False)
    assert result.exit_code == 78 and "set TLSRPT_IMAP_HOST" in result.output


def test_wrong_password_or_untrusted_certificate_exits_75(app, session, imap_server, monkeypatch):
    port, ca, user, _ = imap_server
    for key, value in {"TLSRPT_IMAP_HOST": "127.0.0.1", "TLSRPT_IMAP_PORT": port, "TLSRPT_IMAP_USER": user,
                       "TLSRPT_IMAP_PASSWORD": "wrong", "TLSRPT_IMAP_CAFILE": str(ca)}.items():
        monkeypatch.setitem(app.config, key, value)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["report", "fetch-imap"], catch_exceptions=False)
    assert result.exit_code == 75 and "IMAP 127.0.0.1" in result.output
    monkeypatch.setitem(app.config, "TLSRPT_IMAP_CAFILE", "")  # the system CAs do not know the test CA
    result = runner.invoke(args=["report", "fetch-imap"], catch_exceptions=False)
    assert result.exit_code == 75 and "CERTIFICATE_VERIFY_FAILED" in result.output


def test_a_database_outage_leaves_the_message_untouched_for_the_next_poll(imap_server):
    port, ca, user, password = imap_server
    box = imap.Mailbox("127.0.0.1", port, user, password, folder="outage", cafile=str(ca))
    client = imap.connect(box)
    try:
        client.create("outage")
        client.append("outage", None, None, report_mail(gz(report(report_id="during-outage"))))

        def database_down(raw: bytes) -> str:
            raise OperationalError("INSERT", {}, Exception("connection refused"))

        with pytest.raises(OperationalError):
            imap.poll(client, box, database_down, 1024 * 1024)
        flags = folder_flags(client, "outage")
        assert len(flags) == 1 and b"\\Flagged" not in flags[0]
        assert imap.poll(client, box, lambda raw: imap.DONE, 1024 * 1024) == {imap.DONE: 1}
    finally:
        client.logout()
