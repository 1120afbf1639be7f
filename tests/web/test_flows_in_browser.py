"""People and errors in a real browser, at a desktop's width and a phone's: an admin invites a member,
who sets a password, sees only their domain, edits it and meets an error summary that takes the
focus; no refresh sends a form again; and axe-core finds nothing serious on any page."""

import re

import pytest

from tests.support.browser import accessibility_violations, chromium_missing, overflow, sign_in

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")

WIDTHS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
NEW_PASSWORD = "a long and new passphrase"


@pytest.fixture(params=list(WIDTHS))
def width(request):
    return request.param


@pytest.fixture
def context(browser, width):
    context = browser.new_context(viewport=WIDTHS[width], is_mobile=width == "phone", has_touch=width == "phone")
    context.set_default_timeout(20000)  # a shared, busy machine: generous, never relied on for speed
    yield context
    context.close()


class Watched:
    """A page with the POST requests it sent and the stylesheets, scripts and icons that failed to load."""

    def __init__(self, page):
        self.page, self.posts, self.failed = page, [], []
        page.on("request", lambda request: self.posts.append(request.url) if request.method == "POST" else None)
        watch_subresources(page, self.failed)

    def reload_sends_nothing(self) -> bool:
        before = len(self.posts)
        self.page.reload()
        return len(self.posts) == before


def watch_subresources(page, failed: list) -> None:
    """Collect what a page loads besides itself and could not get (a missing favicon shows here)."""
    page.on("response", lambda response: failed.append(f"{response.url}: {response.status}")
            if response.request.resource_type != "document" and response.status >= 400 else None)
    page.on("requestfailed", lambda request: failed.append(f"{request.url}: {request.failure}")
            if request.failure != "net::ERR_ABORTED" else None)  # cut short by the next navigation


def focused_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def summary_takes_the_focus(page) -> bool:
    """The page after a refused form: its script gives the error summary the focus once the page is read."""
    page.locator("#error-summary:focus").wait_for()  # a locator: the pages' CSP forbids evaluated strings
    return True


def test_an_invited_member_sets_a_password_edits_their_domain_and_sees_errors_in_view(context, server, width):
    email = f"newcomer-{width}@customer.example"
    admin = Watched(context.new_page())
    sign_in(admin.page, server, "admin@provider.example")
    admin.page.get_by_role("link", name="People").click()
    admin.page.get_by_label("E-mail").fill(email)
    admin.page.get_by_role("button", name="Invite").click()
    admin.page.wait_for_url(re.compile(rf"{server}/users/\d+$"))
    link = admin.page.locator("#password-link-url").inner_text()
    assert admin.reload_sends_nothing() and admin.page.locator("#password-link-url").count() == 0
    admin.page.get_by_label("Domain").select_option("customer.example")
    admin.page.get_by_label("Access").select_option("editor")
    with admin.page.expect_navigation():  # the grant's POST, then the page it redirects to
        admin.page.get_by_role("button", name="Give access").click()
    assert admin.page.locator("#access tbody td a").all_inner_texts() == ["customer.example"]
    assert admin.reload_sends_nothing()

    member = Watched(context.browser.new_context(viewport=WIDTHS[width]).new_page())
    try:
        member.page.goto(link)
        member.page.get_by_label("New password", exact=True).fill("too short")
        member.page.get_by_label("New password again").fill("too short")
        member.page.get_by_role("button", name="Set the password and sign in").click()
        assert summary_takes_the_focus(member.page)
        assert member.reload_sends_nothing()
        member.page.get_by_label("New password", exact=True).fill(NEW_PASSWORD)
        member.page.get_by_label("New password again").fill(NEW_PASSWORD)
        member.page.get_by_role("button", name="Set the password and sign in").click()
        member.page.wait_for_url(f"{server}/")
        assert member.page.locator("table.domains tbody td a").all_inner_texts() == ["customer.example"]
        assert member.page.goto(f"{server}/domains/foreign.example").status == 404

        member.page.goto(f"{server}/domains/customer.example")
        first_id = member.page.locator("#policy-id").inner_text()
        member.page.locator("input[name='max_age']").fill("1209600" if width == "phone" else "2592000")
        member.page.get_by_role("button", name="Save and publish").click()
        member.page.wait_for_url(f"{server}/domains/customer.example")
        saved_id = member.page.locator("#policy-id").inner_text()
        assert saved_id > first_id
        assert member.reload_sends_nothing() and member.page.locator("#policy-id").inner_text() == saved_id

        rows = member.page.locator("[data-mx-row] input")
        rows.nth(rows.count() - 1).fill("a.*.customer.example")
        member.page.get_by_role("button", name="Save and publish").click()
        summary = member.page.locator("#error-summary")
        assert summary_takes_the_focus(member.page) and summary.is_visible()
        assert summary.bounding_box()["y"] < WIDTHS[width]["height"]  # in view, not far below
        summary.get_by_role("link").click()
        assert member.page.evaluate("document.activeElement.value") == "a.*.customer.example"
        assert member.page.url == f"{server}/domains/customer.example"
        assert member.reload_sends_nothing() and member.page.locator("#error-summary").count() == 0
        assert member.page.locator("#policy-id").inner_text() == saved_id
        assert accessibility_violations(member.page) == []
        assert member.failed == [] and admin.failed == []
    finally:
        member.page.context.close()


def test_removing_an_mx_row_keeps_the_focus_in_the_list(context, server):
    page = context.new_page()
    sign_in(page, server, "admin@provider.example")
    page.goto(f"{server}/domains/new")
    rows = page.locator("[data-mx-row] input")
    rows.nth(0).fill("mx1.focus.example")
    rows.nth(1).fill("mx2.focus.example")
    page.locator("[data-mx-row]").nth(0).get_by_role("button", name="Remove").click()
    assert page.evaluate("document.activeElement.value") == "mx2.focus.example"
    assert page.evaluate("document.activeElement.name") == "mx-0"


def test_a_skip_link_leads_past_the_navigation(context, server):
    page = context.new_page()
    sign_in(page, server, "member@customer.example")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to the content")
    assert skip.is_visible() and focused_id(page) == ""
    page.keyboard.press("Enter")
    assert focused_id(page) == "main"


def pages_of(page, server) -> list[str]:
    """Every page the signed-in account reaches from the navigation, a domain and an account page."""
    paths = ["/", "/domains/customer.example", "/domains/customer.example/dns", "/tlsa", "/alerts", "/tokens",
             "/account", "/domains/customer.example/alerts", "/domains/nowhere.example"]
    if page.goto(f"{server}/users").status == 200:
        paths += ["/users", page.locator("#accounts tbody a").first.get_attribute("href"), "/domains/new",
                  "/certificates", "/audit"]
    return paths


@pytest.mark.parametrize("email", ["admin@provider.example", "member@customer.example"])
def test_axe_finds_nothing_serious_on_any_page_and_nothing_is_cut_off_on_a_phone(context, server, width, email):
    page = context.new_page()
    failed = []
    watch_subresources(page, failed)
    page.goto(f"{server}/login")
    found = accessibility_violations(page)
    sign_in(page, server, email)
    for path in pages_of(page, server):
        page.goto(f"{server}{path}")
        found += accessibility_violations(page)
        assert width == "desktop" or overflow(page) <= 0, path
    # States a page only has after a POST: a refused form, and the two confirmation pages.
    page.goto(f"{server}/domains/customer.example")
    page.locator("input[name='max_age']").fill("a week")
    page.get_by_role("button", name="Save and publish").click()
    found += accessibility_violations(page)
    page.goto(f"{server}/domains/customer.example")
    page.get_by_label("enforce").check()
    page.get_by_role("button", name="Save and publish").click()
    page.get_by_role("button", name="Switch to enforce").wait_for()
    found += accessibility_violations(page)
    page.goto(f"{server}/domains/customer.example")
    page.locator("[data-mx-row] input").first.fill("")
    page.get_by_role("button", name="Save and publish").click()
    page.get_by_role("button", name="Remove them now").wait_for()
    found += accessibility_violations(page)
    assert width == "desktop" or overflow(page) <= 0
    assert found == []
    assert failed == []
