"""A poison mail in the IMAP box between good ones: `flask report fetch-imap`, run as the timer runs
it, stores the good reports, flags the poison and exits 0; the next poll does not stop at it."""

import imaplib
import ssl

import pytest
from sqlalchemy import create_engine, select

from reports.models import Report
from tests import databases
from tests.conftest import app_settings
from tests.hostile.test_mail import MAILS
from tests.policies.test_live_workers import host_domains
from tests.reports.test_report_cli import report_mail
from tests.support.mailserver import dovecot
from tests.support.reportdata import gz, report
from tests.support.servers import flask

pytestmark = pytest.mark.slow  # starts real servers

POISONS = {name: MAILS[name] for name in ("gzip bomb", "many bad parts", "multipart nested 1,200 deep")}


@pytest.fixture
def mailbox(new_database, test_ca):
    url = new_database()
    databases.upgrade(url)
    with dovecot(test_ca) as (port, ca, user, password):
        settings = app_settings(url, TLSRPT_IMAP_HOST="127.0.0.1", TLSRPT_IMAP_PORT=str(port), TLSRPT_IMAP_USER=user,
                                TLSRPT_IMAP_PASSWORD=password, TLSRPT_IMAP_CAFILE=str(ca))
        host_domains(settings, ("example.com", "enforce", ["mx1.example.com"]))
        client = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=ssl.create_default_context(cafile=str(ca)))
        client.login(user, password)
        yield settings, client, url
        client.logout()


def stored(url: str) -> list[str]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            return sorted(connection.scalars(select(Report.report_id)))
    finally:
        engine.dispose()


def poll_around(mailbox, poison: bytes) -> None:
    settings, client, url = mailbox
    for message in (report_mail(gz(report(report_id="before"))), poison, report_mail(gz(report(report_id="after")))):
        client.append("INBOX", None, None, message)
    first = flask(settings, "report", "fetch-imap")
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("2 message(s) with reports moved to tlsrpt-processed, 1 flagged"), first.stdout
    assert "Traceback" not in first.stderr
    assert stored(url) == ["after", "before"]
    client.append("INBOX", None, None, report_mail(gz(report(report_id="next poll"))))
    second = flask(settings, "report", "fetch-imap")
    assert second.returncode == 0 and second.stdout.startswith("1 message(s) with reports moved"), second.stdout
    assert stored(url) == ["after", "before", "next poll"]


@pytest.mark.parametrize("poison", POISONS.values(), ids=POISONS.keys())
def test_fault_a_poison_mail_between_good_ones_is_flagged_and_passed(mailbox, poison):
    poll_around(mailbox, poison)

