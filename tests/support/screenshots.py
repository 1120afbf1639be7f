"""Take the README's screenshots: `python -m tests.support.screenshots` writes docs/*.png.

Runs the app under gunicorn on a throwaway SQLite database with a few example domains,
and Debian's chromium through Playwright, as the browser tests do.
"""

import random
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from stspolicy.app import create_app
from stspolicy.extensions import db
from stspolicy.policies.queries import get_domain
from stspolicy.policies.service import update_policy
from tests import databases, factories
from tests.support.browser import chromium, live_app, sign_in
from tests.support.reportdata import daily_report, days_ago, failure, sts_block, tlsa_block

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"


def example_history(settings: dict[str, str]) -> None:
    """A few more domains and changes, so the pages look like a week of use."""
    app = create_app(settings)
    with app.app_context():
        session = db.session
        factories.host(session, "bücher.example", mode="enforce")
        factories.host(session, "shop.example", mx=("mail.{}",))
        customer = get_domain(session, "customer.example")
        update_policy(session, customer, mx_patterns=["mx1.customer.example", "mx2.customer.example"],
                      actor="web:admin@provider.example")
        update_policy(session, customer, max_age=1209600, actor="api:member@customer.example (token #1)")
        databases.release_connections()


def example_reports(settings: dict[str, str]) -> None:
    """Two months of reports about customer.example from Google, Microsoft and Mail.ru, a certificate that
    expired on mx2 for a week, and DNS checks that saw its renewal; its policy versions made over the months
    before."""
    app = create_app(settings)
    rng = random.Random(7)
    with app.app_context():
        session = db.session
        customer = get_domain(session, "customer.example")
        for version, age in zip(customer.versions, (75, 45, 25), strict=False):  # made before the reports, not today
            version.created_at = datetime.now(UTC) - timedelta(days=age)
        patterns = tuple(customer.versions[-1].mx_patterns)
        for age in range(60, 0, -1):
            expired = 12 <= age <= 18
            day = days_ago(age)
            google = [failure("certificate-expired", rng.randrange(20, 60), "mx2.customer.example",
                              f"209.85.220.{rng.randrange(1, 99)}")] if expired else []
            factories.store_report(session, daily_report(f"google-{age}", sts_block(
                "customer.example", rng.randrange(800, 1200), sum(d["failed-session-count"] for d in google), *google,
                mx=patterns), day=day))
            microsoft = [failure("certificate-expired", rng.randrange(5, 25), "mx2.customer.example",
                                 "40.107.22.51")] if expired else []
            factories.store_report(session, daily_report(
                f"ms-{age}", sts_block("customer.example", rng.randrange(300, 500),
                                       sum(d["failed-session-count"] for d in microsoft), *microsoft, mx=patterns),
                tlsa_block("mx1.customer.example", rng.randrange(100, 200), 0),
                organization="Microsoft Corporation", day=day))
            if age % 3 == 0:
                fetch = [failure("sts-policy-fetch-error", 1, failure_reason_code="bad https response code: 404")]
                factories.store_report(session, daily_report(f"mailru-{age}", sts_block(
                    "customer.example", rng.randrange(20, 60), 1, *fetch, mx=patterns), organization="Mail.ru",
                    day=day))
        for age, certificate in ((20, "11"), (10, "22")):
            check = factories.stored_check(session, customer, [], mx_hosts=("mx1.customer.example",
                                                                           "mx2.customer.example"))
            check.observed_at = datetime.now(UTC) - timedelta(days=age)
            check.mx_hosts[1].certificate_sha256 = certificate * 32
        session.commit()
        databases.release_connections()


def main() -> None:
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder, live_app(f"sqlite:///{folder}/screens.db") as (base_url, settings):
        example_history(settings)
        with chromium() as browser:
            page = browser.new_page(viewport={"width": 1100, "height": 640}, device_scale_factor=1)
            sign_in(page, base_url, "admin@provider.example")
            page.screenshot(path=str(DOCS / "domains.png"))
            page.goto(f"{base_url}/domains/customer.example")
            page.locator("input[name='mx-1']").fill("a.*.customer.example")
            page.get_by_role("button", name="Save and publish").click()
            page.screenshot(path=str(DOCS / "domain.png"), full_page=True,
                            clip={"x": 0, "y": 0, "width": 1100, "height": 1480})
            example_reports(settings)
            review_page(browser, base_url)
            people_pages(page, base_url)
            phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
            sign_in(phone, base_url, "member@customer.example")
            phone.goto(f"{base_url}/domains/customer.example")
            phone.locator("input[name='max_age']").fill("a week")
            phone.get_by_role("button", name="Save and publish").click()
            phone.locator("#error-summary:focus").wait_for()
            phone.screenshot(path=str(DOCS / "error-summary-phone.png"))
    print(f"wrote {', '.join(sorted(path.name for path in DOCS.glob('*.png')))} in {DOCS}")


def review_page(browser, base_url: str) -> None:
    """customer.example's dashboard over the two months of example reports: the chart, the breakdowns and
    the findings with their evidence open."""
    page = browser.new_page(viewport={"width": 1280, "height": 800}, device_scale_factor=1)
    sign_in(page, base_url, "admin@provider.example")
    page.goto(f"{base_url}/domains/customer.example/review?since={days_ago(59)}")
    page.screenshot(path=str(DOCS / "review.png"), full_page=True)
    page.close()


def people_pages(page, base_url: str) -> None:
    """The people page, and an invitation just made with its link shown once."""
    page.goto(f"{base_url}/users")
    page.get_by_label("E-mail").fill("ops@shop.example")
    page.get_by_role("button", name="Invite").click()
    page.locator("#password-link-url").wait_for()
    page.screenshot(path=str(DOCS / "invited.png"))
    page.get_by_label("Domain").select_option("shop.example")
    page.get_by_label("Access").select_option("editor")
    page.get_by_role("button", name="Give access").click()
    page.goto(f"{base_url}/users")
    page.screenshot(path=str(DOCS / "people.png"))


if __name__ == "__main__":
    main()
