"""Certificate state in the admin UI: the overview for admins and the card on each domain page.

Issuing from the page through a real ACME server is in test_certificates.py (pebble).
"""

from datetime import timedelta

import pytest

from stspolicy.certificates.models import Certificate
from stspolicy.extensions import utcnow
from tests.factories import csrf_token, sign_in
from tests.support.config import configure
from tests.web.test_admin_pages import page, post


@pytest.fixture
def certs_dir(app, tmp_path, monkeypatch):
    configure(monkeypatch, app, CERTS_DIR=tmp_path)
    return tmp_path


def certificate(session, certs_dir, host, *, days_left=None, lifetime=90, failures=0, last_error=None, ago=None):
    """A Certificate row as `flask cert` leaves it; with `days_left`, its chain and file too."""
    now = utcnow()
    row = Certificate(host=host, failures=failures, last_error=last_error,
                      last_attempt_at=now - (ago or timedelta(hours=1)))
    if days_left is not None:
        row.not_after = now + timedelta(days=days_left)
        row.not_before = row.not_after - timedelta(days=lifetime)
        row.issued_at, row.serial = row.not_before, "1f"
        row.fullchain_pem, row.key_sealed = "chain", "sealed key"
        (certs_dir / f"{host}.pem").write_text("key and chain")
    session.add(row)
    session.commit()
    return row


def test_the_overview_is_for_admins_and_lists_every_served_host(client, session, people, certs_dir):
    certificate(session, certs_dir, "mta-sts.shared.example", days_left=70)
    certificate(session, certs_dir, "mta-sts.foreign.example", days_left=10)
    sign_in(client, people.editor)
    assert client.get("/certificates").status_code == 403
    assert page(client.get("/")).find("a", string="Certificates") is None
    sign_in(client, people.admin)
    rows = page(client.get("/certificates")).select("table.certificates tbody tr")
    shown = {row.select_one("td code").text: row.select_one("td[data-label=State]").text.strip() for row in rows}
    assert shown == {"mta-sts.foreign.example": "due", "mta-sts.shared.example": "valid"}
    valid_until = rows[1].select_one("td[data-label='Valid until']").text
    assert valid_until.endswith("(70 days)") or valid_until.endswith("(69 days)")


def test_failures_and_the_last_error_are_shown_escaped(client, session, people, certs_dir):
    certificate(session, certs_dir, "mta-sts.shared.example", failures=3,
                last_error="validation failed: <script>alert(1)</script>")
    sign_in(client, people.admin)
    html = client.get("/certificates").get_data(as_text=True)
    assert "<script>alert(1)" not in html
    row = page(client.get("/certificates")).select_one("tr#certificate-mta-sts\\.shared\\.example")
    assert row.select_one("td[data-label=State]").text.strip() == "missing"
    assert "3: validation failed: <script>alert(1)</script>" in row.select_one("td[data-label=Failures]").text
    assert "next attempt" in row.select_one("td[data-label=Failures]").text


def test_the_domain_page_shows_its_certificate_to_every_persona_and_issue_only_to_admins(
        client, session, people, certs_dir, app, monkeypatch):
    configure(monkeypatch, app, ACME_DIRECTORY_URL="https://acme.invalid/directory")
    certificate(session, certs_dir, "mta-sts.shared.example", days_left=5, failures=1, last_error="CA unreachable")
    sign_in(client, people.viewer)
    card = page(client.get("/domains/shared.example")).select_one("#certificate")
    facts = {dt.text: " ".join(dt.find_next_sibling("dd").text.split()) for dt in card.select("dt")}
    assert card.select_one("h2 .badge").text == "due"
    assert facts["Valid until"].endswith(("(5 days left)", "(4 days left)"))
    assert facts["Failures"].startswith("1 in a row: CA unreachable")
    assert not card.select("form")
    sign_in(client, people.admin)
    card = page(client.get("/domains/shared.example")).select_one("#certificate")
    assert card.select_one("form")["action"] == "/certificates/mta-sts.shared.example/issue"


def test_without_certs_dir_there_is_no_card_and_the_overview_says_why(client, people):
    sign_in(client, people.admin)
    assert page(client.get("/domains/shared.example")).select_one("#certificate") is None
    assert "CERTS_DIR is not set: certificates are not managed here" in page(client.get("/certificates")).text


def test_issue_now_refuses_hosts_not_served_and_says_when_acme_is_not_configured(client, people, certs_dir):
    sign_in(client, people.admin)
    assert post(client, "/certificates/mta-sts.unhosted.example/issue").status_code == 404
    assert "Issue now" not in client.get("/certificates").get_data(as_text=True)
    response = post(client, "/certificates/mta-sts.shared.example/issue", {"back": "domain"})
    assert response.headers["Location"] == "/domains/shared.example#certificate"
    flash = page(client.get("/domains/shared.example")).select_one(".flash.error").text
    assert flash == "ACME_DIRECTORY_URL is not set: certificates are not managed here"


def test_members_may_not_issue(client, people, certs_dir):
    sign_in(client, people.editor)
    response = client.post("/certificates/mta-sts.shared.example/issue",
                           data={"csrf_token": csrf_token(client, "/tokens")})
    assert response.status_code == 403
