"""The TLSA page: `flask tlsa generate` and `flask tlsa rollover` as a form, with limits on what may be pasted."""

from datetime import timedelta

import pytest

from stspolicy.dns.check import record_present_since
from stspolicy.dns.dane import key_record, tlsa_name, tlsa_record
from stspolicy.dns.models import DnsObservation, MxObservation
from stspolicy.extensions import utcnow
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from tests.factories import csrf_token, sign_in
from tests.lab.dns import SECURE
from tests.lab.pki import TestCA, key_pem, new_key, pem
from tests.web.test_admin_pages import page


def submit(client, **fields):
    data = {"csrf_token": csrf_token(client, "/tlsa"), **{name: value for name, value in fields.items() if value}}
    return client.post("/tlsa", data=data)


def records(response):
    return [code.text for code in page(response).select("#tlsa-records code.tlsa-record")]


def public_pem(key) -> str:
    from cryptography.hazmat.primitives import serialization

    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def seen_by_checks(session, domain, host, records, ago):
    """A stored check of `domain` that saw `records` at `host`'s TLSA name `ago` ago."""
    session.add(DnsObservation(
        domain=domain, kind="check", status="ok", policy_id="1", findings=[], observed_at=utcnow() - ago,
        mx_hosts=[MxObservation(host=host, preference=10, tlsa_name=tlsa_name(host), tlsa_state="secure",
                                tlsa_records=records, starttls=True)]))
    session.commit()


def test_anyone_signed_in_may_use_it_without_a_session_it_is_the_sign_in_page(client, people):
    assert client.get("/tlsa").headers["Location"] == "/login?next=%2Ftlsa"
    sign_in(client, people.viewer)
    assert page(client.get("/tlsa")).h1.text == "TLSA records for a certificate"


def test_a_fullchain_gives_3_1_1_and_2_1_1_as_zone_lines_with_copy_buttons(client, people, test_ca):
    leaf, _ = test_ca.issue("mx.example.net")
    sign_in(client, people.viewer)
    response = submit(client, certificate=pem(*test_ca.chain(leaf)).decode(), mx="MX.example.net.")
    assert response.status_code == 200
    assert records(response) == [str(tlsa_record(leaf, 3)), str(tlsa_record(test_ca.intermediate.certificate, 2))]
    buttons = page(response).select("#tlsa-records button[data-copy]")
    assert buttons[0]["data-copy"] == f"_25._tcp.mx.example.net. IN TLSA {tlsa_record(leaf, 3)}"
    assert page(response).select_one("#rollover") is None


def test_the_issuer_may_come_in_its_own_box_and_its_name_is_escaped(client, people):
    ca = TestCA("<script>alert(1)</script>")
    leaf, _ = ca.issue("mx.example.net")
    sign_in(client, people.viewer)
    response = submit(client, certificate=pem(leaf).decode(), chain=pem(ca.intermediate.certificate).decode())
    assert records(response)[1] == str(tlsa_record(ca.intermediate.certificate, 2))
    html = response.get_data(as_text=True)
    assert "<script>alert(1)" not in html
    assert r"CN=\&lt;script\&gt;alert(1)\&lt;/script\&gt; Intermediate CA" in html  # RFC 4514 escapes, then HTML


@pytest.mark.parametrize(("field", "value", "message"), [
    ("certificate", "", "This field is required."),
    ("certificate", "not a certificate", "Found no PEM certificate"),
    ("certificate", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "Found no PEM certificate"),
    ("certificate", "A" * 16385, "The certificate is longer than 16384 characters"),
    ("chain", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "This is a private key"),
    ("next_key", "garbage", "Found no PEM key"),
    ("mx", "mx_1.example.net", "invalid domain name 'mx_1.example.net'"),
    ("ttl", "-5", "Number must be between 0 and 2147483647."),
])
def test_what_is_not_usable_is_refused_beside_its_field(client, people, test_ca, field, value, message):
    leaf, _ = test_ca.issue("mx.example.net")
    sign_in(client, people.viewer)
    response = submit(client, **{"certificate": pem(leaf).decode(), field: value})
    assert response.status_code == 422
    assert message in page(response).select_one(f"#{field}-error").text
    assert page(response).select_one("#error-summary a")["href"] == f"#{field}"
    assert not records(response)


def test_a_pasted_private_key_is_refused_and_never_echoed(client, people, test_ca):
    leaf, key = test_ca.issue("mx.example.net")
    secret = key_pem(key).decode()
    sign_in(client, people.viewer)
    response = submit(client, certificate=pem(leaf).decode(), next_key=secret)
    assert response.status_code == 422
    assert "A private key never belongs in a web form" in page(response).select_one("#next_key-error").text
    assert secret.splitlines()[1] not in response.get_data(as_text=True)


def test_a_body_over_the_admin_limit_is_refused_with_413(client, people):
    sign_in(client, people.viewer)
    response = submit(client, certificate="A" * 70000)
    assert response.status_code == 413


def test_a_renewal_that_keeps_the_key_needs_no_dns_change(client, people, test_ca):
    key = new_key()
    current, _ = test_ca.issue("mx.example.net", key=key)
    renewed, _ = test_ca.issue("mx.example.net", key=key)
    sign_in(client, people.viewer)
    rollover = page(submit(client, certificate=pem(current).decode(), next_key=pem(renewed).decode())).select_one(
        "#rollover")
    assert "keeps the key" in rollover.text and "no DNS change is needed" in rollover.text


def test_a_new_key_gives_current_plus_next_and_waits_twice_the_ttl(client, people, test_ca):
    current, _ = test_ca.issue("mx.example.net")
    next_key = new_key()
    sign_in(client, people.viewer)
    response = submit(client, certificate=pem(current).decode(), next_key=public_pem(next_key), ttl="600")
    assert records(response)[-1] == str(key_record(next_key.public_key()))
    rollover = page(response).select_one("#rollover")
    assert [li.code.text for li in rollover.select(".steps > li:first-child li")] == [
        str(tlsa_record(current, 3)), str(key_record(next_key.public_key()))]
    assert rollover.select_one("#rollover-state").text == "not yet"
    assert "DNS was not asked" not in rollover.text  # no MX host given


def test_the_removal_day_follows_from_the_publication_and_deployment_given(client, people, test_ca):
    current, _ = test_ca.issue("mx.example.net")
    sign_in(client, people.viewer)
    response = submit(client, certificate=pem(current).decode(), next_key=public_pem(new_key()), ttl="3600",
                      published="2026-11-01T10:00", deployed="2026-11-01T11:00")
    rollover = page(response).select_one("#rollover")
    assert rollover.select_one("#deploy-not-before").text == "2026-11-01 12:00 UTC"
    assert rollover.select_one("#remove-not-before").text == "2026-11-01 12:00 UTC"  # deployed too early
    assert "published 2026-11-01 10:00 UTC" in " ".join(rollover.text.split())


def test_dns_is_not_asked_about_an_mx_host_no_check_of_ones_domains_has_seen(client, session, people, test_ca):
    seen_by_checks(session, people.foreign, "mx.foreign.example", [], timedelta(minutes=5))
    current, _ = test_ca.issue("mx.foreign.example")
    sign_in(client, people.editor)
    listed = [option["value"] for option in page(client.get("/tlsa")).select("#known-mx-hosts option")]
    assert "mx.foreign.example" not in listed
    response = submit(client, certificate=pem(current).decode(), next_key=public_pem(new_key()),
                      mx="mx.foreign.example")
    assert "DNS was not asked: no check of your domains has seen the MX host mx.foreign.example" in " ".join(
        page(response).select_one("#rollover").text.split())


def test_only_checks_of_the_tenants_domains_say_since_when_a_record_is_in_dns(session, people):
    record = str(key_record(new_key().public_key()))
    seen_by_checks(session, people.foreign, "mx.shared.example", [record], timedelta(days=2))
    seen_by_checks(session, people.shared, "mx.shared.example", [record], timedelta(hours=1))
    [own] = session.query(DnsObservation).filter_by(domain=people.shared).all()
    assert record_present_since(session, [people.shared], "mx.shared.example", record) == own.observed_at
    assert record_present_since(session, [people.shared, people.foreign], "mx.shared.example", record) < own.observed_at


def test_in_the_lab_a_next_key_missing_from_dns_is_a_loud_warning_and_a_published_one_counts(
        lab_app, lab_netns, client, session, dns_lab, people, test_ca):
    host = f"mx-tlsa-page.{SECURE}"
    domain = add_domain(session, f"tlsa-page.{SECURE}", make_policy("testing", [host], 86400), actor="test").domain
    current, _ = test_ca.issue(host)
    next_key = new_key()
    current_record, next_record = str(tlsa_record(current, 3)), str(key_record(next_key.public_key()))
    dns_lab.set_records(SECURE, f"{tlsa_name(host)}.", "TLSA", [current_record], ttl=600)
    seen_by_checks(session, domain, host, [current_record], timedelta(hours=1))
    sign_in(client, people.admin)
    form = {"certificate": pem(current).decode(), "next_key": public_pem(next_key), "mx": host}
    with lab_netns.entered():
        rollover = page(submit(client, **form)).select_one("#rollover")
    assert "alarm" in rollover["class"]
    warning = rollover.select_one("[role=alert]").text
    assert f"the next record {next_record} is not in DNS yet: publish it before the change" in warning

    dns_lab.set_records(SECURE, f"{tlsa_name(host)}.", "TLSA", [current_record, next_record], ttl=600)
    seen_by_checks(session, domain, host, [current_record, next_record], timedelta(minutes=30))
    with lab_netns.entered():
        rollover = page(submit(client, **form)).select_one("#rollover")
    assert rollover.select_one("[role=alert]") is None
    assert rollover.select_one("#rollover-state").text == "ready"  # seen 30 minutes > 2 x 600 s
