"""The main pages in French in a real browser (Debian's chromium under Playwright, against gunicorn):
a browser set to French signs in and walks them, the review's overview and a domain's dashboard among them,
and the member's own choice of English wins."""

import re

import pytest

from tests.factories import PASSWORD
from tests.web.test_catalogue import english_sentences

pytestmark = pytest.mark.slow

# (path, its heading in French, the dates and counts of its <small> left out)
FRENCH_PAGES = [
    ("/", "Domaines"),
    ("/domains/customer.example", "customer.example"),
    ("/domains/customer.example/dns", "DNS et DANE de customer.example"),
    ("/tlsa", "Enregistrements TLSA d’un certificat"),
    ("/tokens", "Jetons d’API"),
    ("/account", "Votre compte"),
    ("/reports", "Rapports TLS"),
    ("/domains/customer.example/review", "Rapports de customer.example"),
]
HEADING = "h => [...h.childNodes].filter(n => n.nodeName !== 'SMALL').map(n => n.textContent).join('').trim()"


@pytest.fixture
def french_page(browser):
    context = browser.new_context(locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(20000)  # a shared, busy machine: generous, never relied on for speed
    yield page
    context.close()


def sign_in_in_french(page, server):
    page.goto(f"{server}/login")
    assert page.locator("html").get_attribute("lang") == "fr"
    page.get_by_label("Courriel").fill("member@customer.example")
    page.get_by_label("Mot de passe").fill(PASSWORD)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{server}/")


def test_a_browser_set_to_french_walks_the_main_pages_in_french(french_page, server):
    page = french_page
    sign_in_in_french(page, server)
    for path, heading in FRENCH_PAGES:
        page.goto(f"{server}{path}")
        assert page.locator("h1").first.evaluate(HEADING) == heading, path
        texts = page.evaluate("""() => [...document.querySelectorAll('main *:not(script):not(code):not(pre)')]
            .filter(e => !e.closest('[lang=en], code, pre, textarea, datalist'))
            .flatMap(e => [...e.childNodes].filter(n => n.nodeType === 3 && n.textContent.trim()))
            .map(n => n.textContent)""")
        assert english_sentences(texts) == [], path
        if path == "/reports":  # the range in Babel's French dates: "du 1 nov. 2026 au 7 nov. 2026 (UTC)"
            shown = page.locator("h1 small").inner_text()
            assert shown.startswith("du ") and " au " in shown and not re.search(r"\d{4}-\d{2}-\d{2}", shown)

    page.goto(f"{server}/account")
    page.get_by_label("Langue de ces pages").select_option("en")
    page.get_by_role("button", name="Enregistrer la langue").click()
    page.wait_for_url(f"{server}/account")
    assert page.locator("h1").inner_text() == "Your account"  # the member's choice wins over the browser's
    page.get_by_label("Language of these pages").select_option("")
    page.get_by_role("button", name="Save the language").click()
    page.wait_for_url(f"{server}/account")
    assert page.locator("h1").inner_text() == "Votre compte"
