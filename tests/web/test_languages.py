"""The web UI speaks the operator's language: the browser's Accept-Language chooses, a choice on the
account page wins over it, and dates and numbers follow the language."""

import json
from datetime import UTC, datetime

from bs4 import BeautifulSoup

from stspolicy.base.words import plural_words, translate, words
from stspolicy.web.admin.views import when
from stspolicy.web.locale import day, percentage, role_name, translated, whole_number
from tests.factories import csrf_token, sign_in

FRENCH = {"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"}


def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def test_the_browser_asking_for_french_gets_french_pages(client, people):
    sign_in(client, people.editor)
    shown = page(client.get("/account", headers=FRENCH))
    assert shown.html["lang"] == "fr"
    assert shown.select_one("h1").text == "Votre compte"
    assert {"Domaines", "Enregistrements TLSA"} <= {link.text for link in shown.select("nav a")}
    english = page(client.get("/account", headers={"Accept-Language": "de, en;q=0.5"}))
    assert english.html["lang"] == "en" and english.select_one("h1").text == "Your account"


def test_a_language_chosen_on_the_account_page_wins_over_the_browser(client, session, people):
    sign_in(client, people.editor)
    token = csrf_token(client, "/account")
    done = client.post("/account/language", data={"csrf_token": token, "language": "en"}, headers=FRENCH)
    assert done.status_code == 302 and done.headers["Location"] == "/account"
    session.refresh(people.editor)
    assert people.editor.language == "en"
    shown = page(client.get("/account", headers=FRENCH))
    assert shown.select_one("h1").text == "Your account"
    assert shown.select_one("#language option[selected]")["value"] == "en"

    client.post("/account/language", data={"csrf_token": token, "language": "fr"})
    assert page(client.get("/account")).select_one("h1").text == "Votre compte"
    client.post("/account/language", data={"csrf_token": token, "language": ""})
    session.refresh(people.editor)
    assert people.editor.language is None  # follows the browser again
    assert page(client.get("/account")).select_one("h1").text == "Your account"


def test_an_unknown_language_is_refused_beside_its_field(client, people):
    sign_in(client, people.editor)
    refused = client.post("/account/language", data={"csrf_token": csrf_token(client, "/account"), "language": "xx"})
    assert refused.status_code == 422
    assert page(refused).select_one("#error-summary a")["href"] == "#language"


def test_times_are_written_in_the_page_language(app):
    moment = datetime(2026, 11, 1, 12, 0, 5, tzinfo=UTC)
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert str(when(moment)) == '<time datetime="2026-11-01T12:00:05Z">1 nov. 2026 12:00 UTC</time>'
        assert "jamais" in str(when(None))
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert str(when(moment, "seconds")) == '<time datetime="2026-11-01T12:00:05Z">2026-11-01 12:00:05 UTC</time>'


def test_numbers_are_written_in_the_page_language(app):
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert (percentage(0.125), whole_number(12345.4)) == ("12,5 %", "12\u202f345")
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert (percentage(0.125), whole_number(12345.4)) == ("12.5 %", "12,345")


def test_texts_the_core_builds_stay_english_and_are_shown_in_the_page_language(app):
    """A finding's fix is Words: the English string itself for the API and the CLI, its French on a French page,
    the values (names, counts) kept; a translation that lost a placeholder shows the English rather than fail."""
    lead = plural_words("{who} reports {result_type}{where}{ips}, {sessions}",
                        "{who} report {result_type}{where}{ips}, {sessions}", 2, who="A and B",
                        result_type="starttls-not-supported", where=words(" on {subject}", subject="mx.example"),
                        ips="", sessions=plural_words("{count} session since {day}", "{count} sessions since {day}", 3,
                                                      day="2026-11-01"))
    assert lead == "A and B report starttls-not-supported on mx.example, 3 sessions since 2026-11-01"
    assert json.dumps(lead) == json.dumps(str(lead))
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert translated(lead) == ("A and B signalent starttls-not-supported sur mx.example, 3 sessions depuis le "
                                    "2026-11-01")
        assert translated("plain text") == "plain text"
    assert translate(words("{name} expired", name="x"), lambda text: "{nom} a expiré", None) == "x expired"
    with app.test_request_context(headers={"Accept-Language": "fr"}):
        assert role_name("viewer") == "lecteur" and day(datetime(2026, 11, 1, tzinfo=UTC).date()) == "1 nov. 2026"
    with app.test_request_context(headers={"Accept-Language": "en"}):
        assert role_name("viewer") == "viewer" and day(datetime(2026, 11, 1, tzinfo=UTC).date()) == "2026-11-01"
