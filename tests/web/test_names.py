"""Names as their owners write them: an international domain is accepted as typed and shown in
both forms wherever it appears (flash messages, the audit log, the edit form's mx rows, the CLI)."""

from bs4 import BeautifulSoup

from tests import factories
from tests.factories import csrf_token, sign_in

A_LABEL = "xn--bcher-kva.example"


def page(response) -> BeautifulSoup:
    return BeautifulSoup(response.get_data(as_text=True), "html.parser")


def test_a_unicode_domain_and_mx_are_accepted_as_typed_and_shown_in_both_forms(client, people):
    sign_in(client, people.admin)
    response = client.post("/domains/new", data={
        "csrf_token": csrf_token(client, "/tokens"), "name": "Bücher.example", "mode": "testing",
        "max_age": "604800", "mx-0": "mx.bücher.example", "mx-1": "*.Bücher.example"})
    assert response.headers["Location"] == f"/domains/{A_LABEL}"
    html = page(client.get(response.headers["Location"]))
    assert f"bücher.example ({A_LABEL}) is hosted with policy id" in html.select_one(".flash").text
    assert html.h1.text.split() == ["bücher.example", A_LABEL]
    rows = html.select("[data-mx-row]")
    assert rows[0].select_one("input")["value"] == f"mx.{A_LABEL}"
    assert rows[0].select_one(".mx-unicode").text == "mx.bücher.example"
    assert rows[1].select_one(".mx-unicode").text == "*.bücher.example"
    assert f"bücher.example ({A_LABEL})" in page(client.get("/audit")).select_one(".events li").text


def test_the_cli_lists_both_forms(cli, session):
    factories.host(session, "bücher.example")
    assert f"{A_LABEL} (bücher.example)" in cli("domain", "list").output
