"""What the web tests share: one gunicorn with the seeded people and one chromium per session for the
browser tests, and reports of the people's domains over the last days for the review's pages and API."""

from datetime import UTC, datetime

import pytest

from reports.review.finding_store import refresh_findings
from tests.factories import store_report as store
from tests.support.browser import chromium, live_app
from tests.support.reportdata import daily_report, failure, sts_block, tlsa_block
from tests.support.reportdata import days_ago as day

MX = ("mx1.shared.example", "*.mx.shared.example")  # the patterns of the people's shared.example


@pytest.fixture(scope="session")
def server(new_database):
    with live_app(new_database()) as (base_url, _settings):
        yield base_url


@pytest.fixture(scope="session")
def browser():
    with chromium() as browser:
        yield browser


@pytest.fixture
def reported(session, people):
    """shared.example: Google and Microsoft reports over three days, failures on mx1 and (DANE) on the
    MX host's own name; foreign.example: one report of its own."""
    ids = {
        "google-1": store(session, daily_report("google-1", sts_block(
            "shared.example", 900, 60, failure("certificate-expired", 60, "mx1.shared.example", "192.0.2.25")),
            day=day(2))),
        "google-2": store(session, daily_report("google-2", sts_block(
            "shared.example", 950, 5, failure("starttls-not-supported", 5, "mx1.shared.example", "192.0.2.26")),
            day=day(1))),
        "microsoft-1": store(session, daily_report("microsoft-1", sts_block("shared.example", 100, 0, mx=MX),
                                                   tlsa_block("a.mx.shared.example", 20, 10,
                                                              failure("tlsa-invalid", 10, "a.mx.shared.example")),
                                                   organization="Microsoft Corporation", day=day(1))),
        "foreign-1": store(session, daily_report("foreign-1", sts_block(
            "foreign.example", 10, 3, failure("certificate-expired", 3, "mx1.foreign.example")), day=day(1))),
    }
    refresh_findings(session, datetime.now(UTC))  # what the alerts timer does: the overview reads the stored findings
    return ids
