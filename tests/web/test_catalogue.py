"""No text of the web UI escapes the catalogue: the committed catalogues hold every text the code and
templates mark for translation (the web UI's, the review's and the alerts', their mails', and the Words of
findings, result types and rules), each with its French; the compiled catalogue is the one of the .po;
and the main pages shown in French hold no English sentence."""

import re
from io import BytesIO
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po
from bs4 import BeautifulSoup

from tests.factories import sign_in, stored_check

ROOT = Path(__file__).resolve().parents[2]
CATALOGUES = ROOT / "stspolicy" / "translations"
FRENCH_PO = CATALOGUES / "fr" / "LC_MESSAGES" / "messages.po"
FRENCH_MO = CATALOGUES / "fr" / "LC_MESSAGES" / "messages.mo"
# Words of English sentences that neither French, nor names, nor protocol words use.
ENGLISH_WORDS = {"the", "and", "of", "to", "for", "with", "is", "are", "not", "no", "your", "this", "yet",
                 "from", "every", "its", "has", "have", "when", "until", "after", "only", "may", "be"}
# Names from the RFCs whose parts read as English words: RFC 8460's policy type `no-policy-found`.
PROTOCOL_NAMES = re.compile(r"\bno-policy-found\b")
MAIN_PAGES = ["/", "/domains/new", "/domains/shared.example", "/domains/shared.example/dns", "/tlsa", "/tokens",
              "/users", "/certificates", "/audit", "/account", "/reports", "/domains/shared.example/review",
              "/domains/shared.example/reports", "/alerts", "/domains/shared.example/alerts", "/nodes"]


def french_catalogue():
    with FRENCH_PO.open("rb") as po:
        return read_po(po)


def marked_texts() -> set[str]:
    """What `make messages` extracts, read the same way."""
    with (ROOT / "babel.cfg").open() as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "words": None, "plural_words": (1, 2)}
    return {message[0] if isinstance(message, tuple) else message
            for _, _, message, _, _ in extract_from_dir(ROOT, method_map, options_map, keywords=keywords)}


def test_every_marked_text_is_in_the_catalogue_with_its_french():
    catalogue = french_catalogue()
    known = {message.id[0] if isinstance(message.id, tuple) else message.id for message in catalogue if message.id}
    assert marked_texts() - known == set(), "run `make messages` and translate the new texts"
    untranslated = [message.id for message in catalogue if message.id and not all(
        message.string if isinstance(message.string, tuple) else [message.string])]
    assert untranslated == []
    assert not [message.id for message in catalogue if message.id and message.fuzzy]


def test_the_compiled_catalogue_is_the_one_of_the_po():
    compiled = BytesIO()
    write_mo(compiled, french_catalogue())
    with FRENCH_MO.open("rb") as mo:
        shipped = read_mo(mo)
    fresh = read_mo(BytesIO(compiled.getvalue()))
    def texts(catalogue):
        return {str(message.id): str(message.string) for message in catalogue if message.id}

    assert texts(shipped) == texts(fresh), "run `make messages`"


def visible_texts(html: str) -> list[str]:
    """Text a reader sees or hears: text nodes outside code, and the labels of controls. Text marked
    lang="en" is declared English (audit log lines and service messages, which the API shares)."""
    soup = BeautifulSoup(html, "html.parser")
    for hidden in soup.select("script, style, code, pre, datalist, textarea, title, body [lang=en]"):
        hidden.decompose()
    texts = [text for text in soup.find_all(string=True) if text.strip()]
    texts += [element[name] for name in ("aria-label", "title", "placeholder") for element in soup.select(f"[{name}]")]
    return texts


def english_sentences(texts: list[str]) -> list[str]:
    return [text.strip() for text in texts
            if ENGLISH_WORDS & set(re.findall(r"\b[a-z]+\b", PROTOCOL_NAMES.sub("", text.lower())))]


def test_the_english_pages_are_seen_as_english(client, people):
    """The check below would find an untranslated text: it finds the English ones."""
    sign_in(client, people.admin)
    assert english_sentences(visible_texts(client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)))


@pytest.mark.parametrize("path", MAIN_PAGES)
def test_the_main_pages_in_french_hold_no_english_sentence(client, session, people, path):
    stored_check(session, people.shared, [], mx_hosts=("mx1.shared.example",))
    sign_in(client, people.admin)
    response = client.get(path, headers={"Accept-Language": "fr"})
    assert response.status_code == 200
    assert english_sentences(visible_texts(response.get_data(as_text=True))) == []
