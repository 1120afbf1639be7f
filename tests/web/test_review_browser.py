"""The review pages in a real browser: Debian's chromium under Playwright, against gunicorn.

A report whose organisation name, MX host and additional information hold HTML and script is
shown as text and runs nothing; a reader walks from the overview to a domain, to a finding, to
the report behind it and downloads the report as it was received.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from reports.review.finding_store import refresh_findings
from stspolicy.app import create_app
from stspolicy.extensions import db
from tests import databases
from tests.factories import store_report
from tests.support.browser import chromium_missing, live_app, sign_in
from tests.support.reportdata import daily_report, days_ago, encode, failure, sts_block

pytestmark = [pytest.mark.slow, pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")]

HOSTILE_ORGANIZATION = '<img src=x onerror="window.__ran=1">Evil Org<script>window.__ran=2</script>'
HOSTILE_MX = '<script>window.__ran=3</script>mx1.customer.example'
HOSTILE_INFORMATION = '<svg onload="window.__ran=4"></svg><a href="javascript:window.__ran=5">click</a>'
GOOD = daily_report("google-walk", sts_block("customer.example", 900, 60, failure(
    "certificate-expired", 60, "mx1.customer.example", "192.0.2.25")), day=days_ago(1))


@pytest.fixture(scope="module")
def reported_server(new_database):
    """The app under gunicorn with the browser tests' people and two reports about customer.example."""
    with live_app(new_database()) as (base_url, settings):
        app = create_app(settings)
        with app.app_context():
            store_report(db.session, GOOD)
            store_report(db.session, daily_report("hostile", sts_block("customer.example", 5, 3, failure(
                "validation-failure", 3, HOSTILE_MX, "192.0.2.66", additional_information=HOSTILE_INFORMATION)),
                organization=HOSTILE_ORGANIZATION, day=days_ago(2)))
            refresh_findings(db.session, datetime.now(UTC))  # what the alerts timer does
            db.session.commit()
            databases.release_connections()
        yield base_url


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(20000)  # a shared, busy machine: generous, never relied on for speed
    yield page
    context.close()


def no_script_ran(page) -> None:
    assert page.evaluate("window.__ran") is None
    assert page.locator("main script, main img, main svg[onload], main a[href^='javascript:']").count() == 0


def test_report_text_holding_html_and_script_is_shown_as_text_and_runs_nothing(page, reported_server):
    sign_in(page, reported_server, "member@customer.example")
    page.goto(f"{reported_server}/domains/customer.example/reports")
    page.get_by_role("link", name="hostile").click()
    assert page.locator("#organization").inner_text() == HOSTILE_ORGANIZATION
    details = page.locator("#table-details tbody tr").first
    assert HOSTILE_MX in details.inner_text() and HOSTILE_INFORMATION in details.inner_text()
    no_script_ran(page)
    for path in ("/domains/customer.example/review", "/domains/customer.example/reports"):
        page.goto(reported_server + path)
        assert "Evil Org<script>" in page.locator("main").inner_text(), path
        no_script_ran(page)
    page.goto(f"{reported_server}/domains/customer.example/review")
    assert page.locator("#table-mx").get_by_text(HOSTILE_MX).is_visible()


def test_a_walk_from_the_overview_to_a_domain_a_finding_a_report_and_its_raw_body(page, reported_server):
    sign_in(page, reported_server, "member@customer.example")
    page.get_by_role("link", name="Reports", exact=True).click()
    row = page.locator("#table-domains tbody tr", has_text="customer.example")
    row.locator("td[data-label='Findings'] a").click()
    assert page.locator("h1").inner_text().startswith("Reports of customer.example")
    finding = page.locator("#findings li.finding", has_text="Google Inc. reports certificate-expired")
    assert "mx1.customer.example" in finding.locator("p.fix").inner_text()
    finding.get_by_role("link", name="The reports behind it").click()
    assert "result_type=certificate-expired" in page.url
    page.get_by_role("link", name="google-walk").click()
    assert page.locator("#organization").inner_text() == "Google Inc."
    with page.expect_download() as download:
        page.locator("#raw").click()
    body = Path(download.value.path()).read_bytes()
    assert body == encode(GOOD) and json.loads(body)["report-id"] == "google-walk"


def test_a_failure_row_links_to_the_reports_behind_it(page, reported_server):
    sign_in(page, reported_server, "member@customer.example")
    page.goto(f"{reported_server}/domains/customer.example/review")
    row = page.locator("#table-result_type tbody tr", has_text="certificate-expired")
    row.get_by_role("link", name="reports").click()
    assert [cell.inner_text() for cell in page.locator("#table-reports tbody td[data-label='Report id']").all()] == [
        "google-walk"]


def test_the_filters_work_without_javascript(browser, reported_server):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, reported_server, "member@customer.example")
        page.goto(f"{reported_server}/domains/customer.example/review")
        page.locator("#filter-org").fill("Google Inc.")
        page.get_by_role("button", name="Show").click()
        assert "org=Google+Inc." in page.url
        assert page.locator("#table-org tbody tr").count() == 1
    finally:
        context.close()
