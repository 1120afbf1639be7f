"""Certificates by ACME, through the real flow: pebble validates http-01 via the shipped nginx config."""

import json
import ssl
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from sqlalchemy import select

from stspolicy.base.settings import current_settings
from stspolicy.certificates.models import Certificate
from stspolicy.certificates.renewal import renewal_due, retry_at
from stspolicy.certificates.service import acme_issuer, renew_certificates
from stspolicy.policies.queries import get_domain
from stspolicy.policies.rules import make_policy, render_policy
from stspolicy.policies.service import add_domain, remove_domain
from stspolicy.propagation import propagate
from tests.factories import csrf_token, make_user, sign_in
from tests.support.config import configure
from tests.support.nginx import NginxLayout, layout_folder, request, running_nginx, write_config
from tests.support.pebble import running_pebble
from tests.support.servers import free_port
from tests.web.test_admin_pages import page

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(("now", "due"), [
    (T0 + timedelta(days=59), False),
    (T0 + timedelta(days=60), True),
    (T0 + timedelta(days=91), True),
])
def test_a_90_day_certificate_is_renewed_in_its_last_30_days(now, due):
    assert renewal_due(T0, T0 + timedelta(days=90), now) is due


@pytest.mark.parametrize(("failures", "wait"), [
    (0, timedelta(0)), (1, timedelta(minutes=15)), (2, timedelta(minutes=30)), (4, timedelta(hours=2)),
    (7, timedelta(hours=16)), (8, timedelta(days=1)), (30, timedelta(days=1)),
])
def test_failed_attempts_back_off_up_to_a_day(failures, wait):
    assert retry_at(T0, failures) == T0 + wait


@pytest.fixture(scope="module")
def acme_site(test_ca, tmp_path_factory):
    """The shipped nginx (port 80 webroot and SNI certificates) and pebble validating through it."""
    with layout_folder() as folder:
        layout = NginxLayout(folder, "127.0.0.1", free_port(), free_port())
        write_config(layout)
        pebble_folder = tmp_path_factory.mktemp("pebble")
        with running_nginx(layout), running_pebble(pebble_folder, layout.http_port, test_ca) as pebble:
            yield layout, pebble


@pytest.fixture
def acme_app(app, acme_site, tmp_path, monkeypatch):
    layout, pebble = acme_site
    for name in [path.name for path in layout.certs.iterdir()]:
        (layout.certs / name).unlink()
    settings = {
        "POLICY_FILES_DIR": layout.policies, "CERTS_DIR": layout.certs, "ACME_WEBROOT": layout.webroot,
        "ACME_DIRECTORY_URL": pebble.directory_url, "ACME_CA_BUNDLE": pebble.ca_bundle,
        "ACME_EXTRA_HOSTS": [layout.admin_host],
    }
    configure(monkeypatch, app, **settings)
    return app


def host(session, name):
    version = add_domain(session, name, make_policy("enforce", [f"mx.{name}"], 604800), actor="test")
    propagate(session, current_settings(), version.domain.name, version, wait=True)
    return version


def https_fetch(layout, pebble, name, tmp_path):
    (tmp_path / "root.pem").write_bytes(pebble.root_pem())
    return request(layout.address, layout.https_port, f"mta-sts.{name}", ca=tmp_path / "root.pem")


def test_renew_issues_a_certificate_for_every_served_host_and_nginx_serves_it(
        acme_app, acme_site, session, cli, tmp_path):
    layout, pebble = acme_site
    host(session, "example.com")
    host(session, "example.org")
    result = cli("cert", "renew")
    assert result.exit_code == 0, result.output
    assert "mta-sts.example.com: issued: valid until" in result.output
    assert f"{layout.admin_host}: issued" in result.output
    assert result.output.endswith("3 change(s), 0 failed\n")
    pem = (layout.certs / "mta-sts.example.org.pem").read_bytes()
    assert b"PRIVATE KEY" in pem
    leaf = x509.load_pem_x509_certificate(pem)
    names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert names == ["mta-sts.example.org"]
    answer = https_fetch(layout, pebble, "example.org", tmp_path)
    assert answer.status == 200
    assert answer.body == render_policy(make_policy("enforce", ["mx.example.org"], 604800)).encode()
    assert not list((layout.webroot / ".well-known" / "acme-challenge").iterdir())  # tokens cleaned up

    states = json.loads(cli("cert", "status", "--json").output)
    assert [(s["host"], s["state"], s["failures"]) for s in states] == [
        ("mta-sts.example.com", "valid", 0), ("mta-sts.example.org", "valid", 0), (layout.admin_host, "valid", 0)]
    assert all(s["days_left"] > 1 for s in states)
    again = cli("cert", "renew")
    assert again.output == "0 change(s), 0 failed\n"


def test_a_failed_validation_is_recorded_backed_off_and_retried_on_request(
        acme_app, acme_site, session, cli, tmp_path, monkeypatch):
    host(session, "example.net")
    configure(monkeypatch, acme_app, ACME_EXTRA_HOSTS=[], ACME_WEBROOT=tmp_path / "not-served")
    failed = cli("cert", "renew")
    assert failed.exit_code == 1
    assert "mta-sts.example.net: failed: validation of mta-sts.example.net failed: " in failed.output
    status = cli("cert", "status").output
    assert "mta-sts.example.net" in status and "missing" in status and "last attempt failed (1x)" in status

    waiting = cli("cert", "renew")
    assert "mta-sts.example.net: waiting: after 1 failure(s), next attempt at" in waiting.output
    assert waiting.exit_code == 0

    configure(monkeypatch, acme_app, ACME_WEBROOT=acme_site[0].webroot)
    forced = cli("cert", "issue", "example.net")
    assert forced.exit_code == 0, forced.output
    row = session.scalar(select(Certificate).where(Certificate.host == "mta-sts.example.net"))
    assert (row.failures, row.last_error) == (0, None)


def test_a_certificate_in_its_last_third_is_renewed_with_a_new_key(acme_app, acme_site, session, cli):
    layout, _ = acme_site
    host(session, "example.com")
    assert cli("cert", "issue", "mta-sts.example.com").exit_code == 0
    first = session.scalar(select(Certificate).where(Certificate.host == "mta-sts.example.com"))
    first_serial, first_pem = first.serial, (layout.certs / "mta-sts.example.com.pem").read_bytes()
    later = first.not_after - (first.not_after - first.not_before) / 4
    settings = current_settings()
    outcomes = renew_certificates(session, settings, acme_issuer(session, settings), later)
    assert [(o.host, o.result) for o in outcomes if o.host == "mta-sts.example.com"] == [
        ("mta-sts.example.com", "issued")]
    assert first.serial != first_serial
    assert (layout.certs / "mta-sts.example.com.pem").read_bytes().split(b"-----END PRIVATE KEY-----")[0] != \
        first_pem.split(b"-----END PRIVATE KEY-----")[0]


def test_removing_a_domain_removes_its_certificate_at_the_next_renew(acme_app, acme_site, session, cli, tmp_path):
    layout, pebble = acme_site
    host(session, "example.com")
    assert cli("cert", "issue", "example.com").exit_code == 0
    remove_domain(session, get_domain(session, "example.com"), actor="test", force=True)
    propagate(session, current_settings(), "example.com", None, wait=True)
    result = cli("cert", "renew")
    assert "mta-sts.example.com: removed: no longer served" in result.output
    assert not (layout.certs / "mta-sts.example.com.pem").exists()
    with pytest.raises(ssl.SSLError):  # no certificate: the handshake is aborted
        https_fetch(layout, pebble, "example.com", tmp_path)


def test_issue_refuses_names_we_do_not_serve_and_missing_acme_settings(acme_app, acme_site, session, cli,
                                                                        monkeypatch):
    result = cli("cert", "issue", "unhosted.example")
    assert result.exit_code == 1
    assert "unhosted.example is neither a hosted domain nor a host in ACME_EXTRA_HOSTS" in result.output
    assert "invalid domain name" in cli("cert", "issue", "not a name").output
    configure(monkeypatch, acme_app, CERTS_DIR=None)
    assert "CERTS_DIR is not set" in cli("cert", "status").output
    configure(monkeypatch, acme_app, CERTS_DIR=acme_site[0].certs, ACME_DIRECTORY_URL="")
    host(session, "example.com")
    result = cli("cert", "renew")
    assert result.exit_code == 1
    assert "ACME_DIRECTORY_URL is not set" in result.output


def test_an_admin_issues_from_the_domain_page_and_sees_the_state_and_a_failure(
        acme_app, acme_site, session, client, tmp_path, monkeypatch):
    host(session, "example.com")
    sign_in(client, make_user(session, "admin@provider.example", "admin"))
    card = page(client.get("/domains/example.com")).select_one("#certificate")
    assert card.select_one("h2 .badge").text == "missing"

    configure(monkeypatch, acme_app, ACME_WEBROOT=tmp_path / "not-served")
    form = {"csrf_token": csrf_token(client, "/tokens"), "back": "domain"}
    client.post(card.select_one("form")["action"], data=form)
    shown = page(client.get("/domains/example.com"))
    failed = shown.select_one(".flash.error").text
    assert failed.startswith("mta-sts.example.com: failed: validation of mta-sts.example.com failed")
    assert "1 in a row: validation of mta-sts.example.com failed" in shown.select_one("#certificate").text

    configure(monkeypatch, acme_app, ACME_WEBROOT=acme_site[0].webroot)
    client.post("/certificates/mta-sts.example.com/issue", data=form)
    shown = page(client.get("/domains/example.com"))
    assert shown.select_one(".flash").text.startswith("mta-sts.example.com: issued: valid until")
    card = shown.select_one("#certificate")
    assert card.select_one("h2 .badge").text == "valid"
    assert card.find("dt", string="Failures").find_next_sibling("dd").text == "none"
    overview = page(client.get("/certificates")).select_one("tr#certificate-mta-sts\\.example\\.com")
    assert overview.select_one("td[data-label=State]").text.strip() == "valid"
