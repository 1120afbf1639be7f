"""The app under gunicorn with a database of its own, and Debian's chromium driven by Playwright.

Shared by the browser tests and by `python -m tests.support.screenshots`. Never downloads a
browser: Playwright is pointed at /usr/bin/chromium.
"""

import contextlib
import os
import shutil

from stspolicy.accounts.service import set_grant
from stspolicy.app import create_app
from stspolicy.extensions import db
from tests import databases, factories
from tests.conftest import app_settings
from tests.support.servers import gunicorn, starting

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def chromium_missing() -> str | None:
    if not shutil.which(CHROMIUM):
        return f"needs {CHROMIUM} (Debian package chromium)"
    return None


def seed(settings: dict[str, str]) -> None:
    """The people of every browser test: an admin, and a member who edits `customer.example` only."""
    app = create_app(settings)
    with app.app_context():
        session = db.session
        factories.make_user(session, "admin@provider.example", "admin")
        member = factories.make_user(session, "member@customer.example")
        customer = factories.host(session, "customer.example")
        factories.host(session, "foreign.example", mode="enforce")
        set_grant(session, member, customer, "editor", actor="test")
        databases.release_connections()


@contextlib.contextmanager
def live_app(database_url: str, netns=None, **overrides: str):
    """gunicorn serving the app on a free loopback port (inside `netns` if given); yields (base URL, settings)."""
    databases.upgrade(database_url)
    settings = app_settings(database_url, SNAPSHOT_REFRESH_SECONDS="1", **overrides)
    seed(settings)
    with gunicorn(settings, workers=1, netns=netns) as base_url:
        yield base_url, settings


@contextlib.contextmanager
def chromium():
    from playwright.sync_api import sync_playwright

    starting("chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def sign_in(page, base_url: str, email: str, password: str = factories.PASSWORD) -> None:
    page.goto(f"{base_url}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")


def accessibility_violations(page) -> list[str]:
    """axe-core's serious and critical violations on the page as it stands, one line each."""
    from axe_playwright_python.sync_playwright import Axe

    violations = Axe().run(page).response["violations"]
    return [f"{page.url}: {violation['id']} ({violation['impact']}): {violation['help']} at "
            f"{[node['target'] for node in violation['nodes']][:3]}"
            for violation in violations if violation["impact"] in ("serious", "critical")]


def overflow(page) -> int:
    """How many pixels the page is wider than the window: more than 0 means a sideways scroll."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
