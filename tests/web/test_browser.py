"""The admin UI in a real browser: Debian's chromium under Playwright, against gunicorn."""

import re

import pytest
from cryptography.hazmat.primitives import serialization

from stspolicy.dns.dane import key_record, tlsa_record
from tests.lab.dns import SECURE
from tests.lab.fixtures import publish_in_lab
from tests.lab.pki import key_pem, new_key, pem
from tests.support.browser import chromium_missing, live_app, sign_in
from tests.support.servers import get

pytestmark = pytest.mark.skipif(chromium_missing() is not None, reason=chromium_missing() or "")


@pytest.fixture(scope="session")
def lab_server(lab_netns, dns_lab, mail_servers, test_ca, tmp_path_factory):
    """The app under gunicorn inside the lab's namespace, looking up and probing the lab's servers.

    On SQLite: a file is reached from any namespace, the test PostgreSQL only on the host's loopback.
    """
    folder = tmp_path_factory.mktemp("lab-app")
    dns_lab.set_records(SECURE, f"sts.{SECURE}.", "A", ["127.0.0.20"])
    with live_app(f"sqlite:///{folder / 'app.db'}", netns=lab_netns, DNS_RESOLVERS=dns_lab.resolver,
                  DNS_TIMEOUT="3", PROBE_TIMEOUT="5", PROBE_ALLOWED_NETWORKS="127.0.0.0/8",
                  PROBE_CA_FILE=str(test_ca.write_root(folder / "root.pem")),
                  POLICY_HOST_CNAME=f"sts.{SECURE}") as (base_url, _settings):
        yield base_url


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(20000)  # a shared, busy machine: generous, never relied on for speed
    yield page
    context.close()


def served(server, domain) -> bytes:
    status, body = get(f"{server}/.well-known/mta-sts.txt", f"mta-sts.{domain}")
    return body if status == 200 else f"HTTP {status}".encode()


def add_domain(page, server, name, mx):
    page.goto(f"{server}/domains/new")
    page.get_by_label("Domain").fill(name)
    for index, pattern in enumerate(mx):
        page.locator(f"input[name='mx-{index}']").fill(pattern)
    page.get_by_role("button", name="Host this domain").click()


def test_sign_in_and_out(page, server):
    page.goto(server)
    assert page.url.startswith(f"{server}/login")
    page.get_by_label("E-mail").fill("admin@provider.example")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    assert page.locator("#password-error").inner_text() == "Wrong e-mail or password."
    sign_in(page, server, "admin@provider.example")
    assert page.locator(".who").inner_text().startswith("admin@provider.example")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server}/login")
    page.goto(f"{server}/domains/customer.example")
    assert page.url.startswith(f"{server}/login")


def test_add_a_domain_with_an_extra_mx_row_and_see_its_records(page, server):
    sign_in(page, server, "admin@provider.example")
    page.goto(f"{server}/domains/new")
    page.get_by_label("Domain").fill("added.example")
    rows = page.locator("[data-mx-row] input")
    assert rows.count() == 2
    page.get_by_role("button", name="Add an mx pattern").click()
    assert rows.count() == 3
    rows.nth(0).fill("mx1.added.example")
    rows.nth(2).fill("*.mx.added.example")
    page.get_by_role("button", name="Host this domain").click()
    page.wait_for_url(f"{server}/domains/added.example")
    policy_id = page.locator("#policy-id").inner_text()
    assert page.locator("#dns").get_by_text(f"v=STSv1; id={policy_id}").is_visible()
    assert page.locator("#dns").get_by_role("button", name="Copy").first.is_visible()
    assert served(server, "added.example") == (
        b"version: STSv1\r\nmode: testing\r\nmx: mx1.added.example\r\nmx: *.mx.added.example\r\nmax_age: 604800\r\n")


def test_an_invalid_mx_pattern_shows_the_error_beside_the_field(page, server):
    sign_in(page, server, "admin@provider.example")
    add_domain(page, server, "invalid.example", ["mx.invalid.example", "a.*.invalid.example"])
    wrong_row = page.locator("[data-mx-row]", has=page.locator("input[name='mx-1']"))
    assert "a wildcard may only be the whole leftmost label" in wrong_row.locator(".error").inner_text()
    assert page.locator("input[name='mx-1']").input_value() == "a.*.invalid.example"
    assert page.locator(".error").count() == 1
    error_box, input_box = wrong_row.locator(".error").bounding_box(), page.locator("input[name='mx-1']").bounding_box()
    assert 0 <= error_box["y"] - (input_box["y"] + input_box["height"]) < 60  # right under the field
    assert served(server, "invalid.example") == b"HTTP 404"


def test_an_edit_changes_the_policy_id_and_the_served_bytes_then_rollback(page, server):
    sign_in(page, server, "member@customer.example")
    page.goto(f"{server}/domains/customer.example")
    first_id = page.locator("#policy-id").inner_text()
    first_bytes = served(server, "customer.example")
    page.locator("input[name='max_age']").fill("86400")
    page.get_by_role("button", name="Save and publish").click()
    page.wait_for_url(f"{server}/domains/customer.example")
    new_id = page.locator("#policy-id").inner_text()
    assert new_id > first_id
    shown = page.locator("#policy-text").inner_text()
    assert shown.replace("\n", "\r\n").encode() == served(server, "customer.example")
    assert b"max_age: 86400\r\n" in served(server, "customer.example")
    assert page.locator("#history .diff .diff-add").first.inner_text() == "+ max_age: 86400"

    page.locator("#history li", has_text=first_id).get_by_role("button", name="Roll back to this").click()
    page.wait_for_url(f"{server}/domains/customer.example")
    rolled_id = page.locator("#policy-id").inner_text()
    assert rolled_id > new_id
    assert served(server, "customer.example") == first_bytes
    assert "rolled back to " + first_id in page.locator("#audit").inner_text()


def test_switching_to_enforce_goes_through_the_confirmation(page, server):
    sign_in(page, server, "admin@provider.example")
    add_domain(page, server, "enforced.example", ["mx.enforced.example"])
    page.get_by_label("enforce").check()
    page.get_by_role("button", name="Save and publish").click()
    assert page.get_by_role("heading", name="Switch enforced.example to enforce?").is_visible()
    assert "not available yet" in page.locator("main").inner_text()
    assert b"mode: testing" in served(server, "enforced.example")
    page.get_by_role("button", name="Switch to enforce").click()
    page.wait_for_url(f"{server}/domains/enforced.example")
    assert b"mode: enforce\r\n" in served(server, "enforced.example")


def test_a_member_cannot_see_a_foreign_domain(page, server):
    sign_in(page, server, "member@customer.example")
    listed = page.locator("table.domains tbody td a").all_inner_texts()
    assert "customer.example" in listed and "foreign.example" not in listed
    response = page.goto(f"{server}/domains/foreign.example")
    assert response.status == 404
    assert page.get_by_role("heading", name="404 Not Found").is_visible()


def test_usable_on_a_phone(browser, server):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        sign_in(page, server, "admin@provider.example")
        page.goto(f"{server}/domains/customer.example")
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0
        assert page.get_by_role("button", name="Save and publish").is_visible()
    finally:
        context.close()


def test_works_without_javascript(browser, server):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, server, "admin@provider.example")
        page.goto(f"{server}/domains/new")
        assert not page.get_by_role("button", name="Add an mx pattern").is_visible()
        page.get_by_label("Domain").fill("nojs.example")
        page.locator("input[name='mx-0']").fill("mx1.nojs.example")
        page.locator("input[name='mx-1']").fill("mx2.nojs.example")
        page.get_by_role("button", name="Host this domain").click()
        page.wait_for_url(f"{server}/domains/nojs.example")
        assert b"mx: mx2.nojs.example\r\n" in served(server, "nojs.example")
        assert page.locator("input[name='mx-3']").count() == 1  # room for two more patterns
        assert not page.locator("#dns").get_by_role("button", name="Copy").first.is_visible()
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(f"{server}/login")
    finally:
        context.close()


def test_check_now_in_the_lab_fills_the_dns_page(page, browser, lab_server, dns_lab, mail_servers):
    name, mx = f"browser.{SECURE}", f"mx-browser.{SECURE}"
    sign_in(page, lab_server, "admin@provider.example")
    add_domain(page, lab_server, name, [mx])
    page.wait_for_url(f"{lab_server}/domains/{name}")
    publish_in_lab(dns_lab, name, SECURE, mx={mx: mail_servers.good.address},
                   policy_id=page.locator("#policy-id").inner_text(),
                   tlsa={mx: [str(tlsa_record(mail_servers.good.chain[0], 3))]})
    page.get_by_role("link", name=re.compile("^DNS and DANE")).click()
    page.wait_for_url(f"{lab_server}/domains/{name}/dns")
    assert page.locator("#check").get_by_text("Not checked yet.").is_visible()

    page.get_by_role("button", name="Check now").click()
    assert page.locator(".flash").inner_text() == f"Checked {name}: no problems found."
    assert page.locator(".heading .badge").inner_text() == "ok"
    host = page.locator("#mx-hosts article.mx")
    assert host.locator("h3 code").inner_text() == mx
    assert host.get_by_text("DNSSEC secure").is_visible()
    assert host.locator("ul.tlsa li").inner_text().endswith("matches the certificate")
    assert page.locator("#dns-history .version-line .badge").first.inner_text() == "ok"
    page.get_by_role("link", name=name).click()
    assert page.locator("#dns h2 .badge").inner_text() == "ok"

    phone = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    try:
        small = phone.new_page()
        sign_in(small, lab_server, "admin@provider.example")
        small.goto(f"{lab_server}/domains/{name}/dns")
        assert small.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") <= 0
        assert small.get_by_role("button", name="Check now").is_visible()
    finally:
        phone.close()


def test_tlsa_records_and_the_rollover_for_a_pasted_certificate(page, server, test_ca):
    leaf, key = test_ca.issue("mx.customer.example")
    next_key = new_key().public_key()
    sign_in(page, server, "member@customer.example")
    page.get_by_role("link", name="TLSA records").click()
    page.get_by_label("Server certificate (PEM)").fill(pem(*test_ca.chain(leaf)).decode())
    page.get_by_label("Next certificate or public key").fill(key_pem(key).decode())
    page.get_by_role("button", name="Make the records").click()
    assert "A private key never belongs in a web form" in page.locator("#next_key-error").inner_text()
    assert page.get_by_label("Next certificate or public key").input_value() == ""

    page.get_by_label("Next certificate or public key").fill(next_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode())
    page.get_by_label("MX host").fill("mx.customer.example")
    page.get_by_role("button", name="Make the records").click()
    assert page.locator("#tlsa-records code.tlsa-record").all_inner_texts() == [
        str(tlsa_record(leaf, 3)), str(tlsa_record(test_ca.intermediate.certificate, 2)), str(key_record(next_key))]
    assert page.locator("#tlsa-records").get_by_role("button", name="Copy").first.is_visible()
    assert page.locator("#rollover-state").inner_text() == "not yet"
    assert "DNS was not asked" in page.locator("#rollover").inner_text()
