"""The DNS page of a domain: its publishing mode, the latest check per MX host, history, "check now", "publish again".

Checks run for real in the lab (Knot + unbound + Postfix in a network namespace); pages are read from their HTML.
"""

from datetime import timedelta

import pytest

from stspolicy.accounts.service import set_grant
from stspolicy.dns.dane import tlsa_record
from stspolicy.dns.models import DnsObservation, DnsSetting, MxObservation, StagedCertificate, TlsaPublication
from stspolicy.extensions import utcnow
from stspolicy.policies.queries import current_version, get_domain
from tests.factories import csrf_token, sign_in
from tests.lab.dns import SECURE
from tests.lab.fixtures import host_domain
from tests.lab.pki import pem
from tests.support.config import configure
from tests.web.test_admin_pages import page, policy_form, post

DNS_PAGE = "/domains/shared.example/dns"


def stored(session, domain, kind="check", status="problems", findings=(), policy_id=None, ago=timedelta(0), **extra):
    observation = DnsObservation(
        domain_id=domain.id, kind=kind, status=status, findings=list(findings), observed_at=utcnow() - ago,
        policy_id=policy_id or current_version(session, domain).policy_id, **extra)
    session.add(observation)
    session.commit()
    return observation


def finding(code, message, subject="_mta-sts.shared.example", level="error", check="sts_record"):
    return {"level": level, "code": code, "subject": subject, "message": message, "check": check}


def flash(client, url, category=""):
    return page(client.get(url)).select_one(f".flash{'.' + category if category else ''}").text


# Who may do what


@pytest.mark.parametrize(("method", "path"), [
    ("GET", "/domains/{}/dns"), ("POST", "/domains/{}/dns/check"), ("POST", "/domains/{}/dns/publish")])
def test_the_dns_routes_keep_to_the_security_checklist(client, people, method, path):
    shared, foreign = path.format("shared.example"), path.format("foreign.example")
    token = csrf_token(client)
    response = client.open(shared, method=method, data={"csrf_token": token})
    assert response.headers["Location"].startswith("/login?next=")
    sign_in(client, people.viewer)
    assert client.open(foreign, method=method, data={"csrf_token": token}).status_code == 404
    assert client.open(shared, method=method, data={"csrf_token": token}).status_code == (
        200 if method == "GET" else 403)
    assert client.open(shared, method="PUT").status_code == 405


def test_a_viewer_sees_the_page_without_the_buttons_that_change_something(client, session, people):
    session.add(DnsSetting(domain_id=people.shared.id, publish_mode="rfc2136", update_server="192.0.2.53",
                           update_zone="shared.example", tsig_key="ourkey"))
    session.commit()
    sign_in(client, people.viewer)
    shown = page(client.get(DNS_PAGE))
    assert shown.select_one("h1").text == "DNS and DANE of shared.example"
    assert "Not checked yet." in shown.select_one("#check").text
    assert not shown.find("button", string="Check now") and not shown.select("#publishing form")
    sign_in(client, people.editor)
    shown = page(client.get(DNS_PAGE))
    assert shown.find("button", string="Check now") and shown.select_one("#publishing form button")


# Publishing mode and the records to publish


def test_manual_mode_lists_the_records_the_owner_publishes(client, session, people):
    sign_in(client, people.viewer)
    shown = page(client.get(DNS_PAGE))
    assert shown.select_one("#publish-mode").text == "manual"
    policy_id = current_version(session, people.shared).policy_id
    assert [" ".join(cell.text.split()) for cell in shown.select("#publishing tbody tr td:nth-of-type(4)")] == [
        f"v=STSv1; id={policy_id}",
        "v=TLSRPTv1; rua=mailto:tlsrpt@reports.provider.example,https://reports.provider.example/tlsrpt",
        "sts.provider.example."]
    assert [cell.text for cell in shown.select("#publishing tbody td.ttl")] == ["300", "86400", "3600"]


def test_rfc2136_mode_says_where_the_record_is_written(client, session, people):
    session.add(DnsSetting(domain_id=people.shared.id, publish_mode="rfc2136", update_server="192.0.2.53:5353",
                           update_zone="shared.example", tsig_key="ourkey"))
    session.commit()
    sign_in(client, people.viewer)
    text = " ".join(page(client.get(DNS_PAGE)).select_one("#publishing").text.split())
    assert "writes _mta-sts.shared.example into the zone shared.example at 192.0.2.53:5353" in text
    assert "TSIG key ourkey" in text


def test_delegated_mode_shows_the_cnames_to_publish_once_and_the_record_we_keep(client, session, people, app,
                                                                                 monkeypatch):
    configure(monkeypatch, app, DELEGATION_ZONE="delegation.provider.example")
    session.add(DnsSetting(domain_id=people.shared.id, publish_mode="delegated"))
    session.commit()
    sign_in(client, people.viewer)
    publishing = page(client.get(DNS_PAGE)).select_one("#publishing")
    policy_id = current_version(session, people.shared).policy_id
    assert publishing.select_one("#publish-mode").text == "delegated"
    assert [cell.text.strip() for cell in publishing.select("tbody tr")[0].select("td")][:4] == [
        "_mta-sts.shared.example.", "3600", "CNAME", "_mta-sts.shared.example.delegation.provider.example."]
    assert (f'_mta-sts.shared.example.delegation.provider.example. 300 IN TXT "v=STSv1; id={policy_id}"'
            in " ".join(publishing.text.split()))


# Failed publishing is loud


@pytest.fixture
def failing_publisher(session, people):
    """rfc2136 mode with a TSIG key the configuration does not have: every publishing attempt fails."""
    session.add(DnsSetting(domain_id=people.shared.id, publish_mode="rfc2136", update_server="127.0.0.1:9",
                           update_zone="shared.example", tsig_key="missing-key"))
    session.commit()


def test_a_failed_publish_is_shown_on_the_list_the_domain_page_and_the_dns_page(client, session, people,
                                                                                  failing_publisher):
    sign_in(client, people.editor)
    post(client, "/domains/shared.example/policy", policy_form(max_age="86400"))
    assert page(client.get("/")).find("span", class_="badge bad", string="publishing failed")
    for url in ("/domains/shared.example", DNS_PAGE):
        alert = page(client.get(url)).select_one("#publish-failure")
        assert alert["role"] == "alert" and "no TSIG key 'missing-key'" in alert.text
        assert alert.find("button", string="Publish again")
    sign_in(client, people.viewer)
    alert = page(client.get(DNS_PAGE)).select_one("#publish-failure")
    assert "an editor or admin can" in alert.text and not alert.select("button")


def test_publish_again_that_fails_again_says_why(client, session, people, failing_publisher):
    sign_in(client, people.editor)
    response = post(client, "/domains/shared.example/dns/publish")
    assert response.headers["Location"] == DNS_PAGE
    assert "no TSIG key 'missing-key' in DNS_TSIG_KEYS" in flash(client, DNS_PAGE, "error")
    last = session.query(DnsObservation).one()
    assert (last.kind, last.status) == ("publish", "problems")


def test_the_alarm_ends_when_a_later_check_finds_the_id_or_the_domain_is_back_in_manual_mode(
        client, session, people, failing_publisher):
    failed = stored(session, people.shared, kind="publish", findings=[finding("publish-failed", "refused")])
    sign_in(client, people.viewer)
    assert page(client.get(DNS_PAGE)).select_one("#publish-failure")
    stored(session, people.shared, findings=[finding("sts-id-stale", "DNS still says id 1: publish id 2")])
    assert page(client.get(DNS_PAGE)).select_one("#publish-failure")  # a check that saw the old id: still failing
    stored(session, people.shared, findings=[finding("sts-id-current", "the current one", level="ok")])
    assert page(client.get(DNS_PAGE)).select_one("#publish-failure") is None
    session.delete(session.query(DnsObservation).filter(DnsObservation.id > failed.id).all()[-1])
    session.get(DnsSetting, people.shared.id).publish_mode = "manual"
    session.commit()
    assert page(client.get(DNS_PAGE)).select_one("#publish-failure") is None


def test_publish_in_manual_mode_says_to_publish_by_hand(client, people):
    sign_in(client, people.editor)
    post(client, "/domains/shared.example/dns/publish")
    assert "shared.example is in manual mode: publish its records by hand." in flash(client, DNS_PAGE, "warn")


# The latest check and the history


def test_what_dns_and_the_mx_hosts_said_is_escaped(client, session, people):
    stored(session, people.shared, findings=[finding("sts-record-invalid", '<script>alert("txt")</script>')],
           mx_hosts=[MxObservation(
               host="mx1.shared.example", preference=10, tlsa_name="_25._tcp.mx1.shared.example", tlsa_state="insecure",
               tlsa_records=["<img src=x onerror=alert(1)>"], starttls=True, tls_version="TLSv1.3",
               names=["<b>bold</b>.shared.example"], certificate_sha256="ab" * 32, spki_sha256="cd" * 32,
               not_after=utcnow() + timedelta(days=30), covers_host=False, webpki_error="<i>untrusted</i>")])
    sign_in(client, people.viewer)
    html = client.get(DNS_PAGE).get_data(as_text=True)
    for markup in ("<script>alert", "<img src=x", "<b>bold</b>", "<i>untrusted</i>"):
        assert markup not in html
    assert "&lt;script&gt;alert(&#34;txt&#34;)&lt;/script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html


def test_the_dane_section_shows_records_published_certificates_presented_and_the_staged_one(client, session, people,
                                                                                            test_ca):
    host = "mx1.shared.example"
    current, renewed = test_ca.issue(host)[0], test_ca.issue(host)[0]
    old, new = str(tlsa_record(current, 3)), str(tlsa_record(renewed, 3))
    now = utcnow()
    session.add_all([
        TlsaPublication(host=host, record=old, ttl=3600, published_at=now - timedelta(days=30),
                        secure_at=now - timedelta(days=30), last_presented_at=now),
        TlsaPublication(host=host, record=new, ttl=3600, published_at=now - timedelta(minutes=30),
                        secure_at=now - timedelta(minutes=29)),
        StagedCertificate(host=host, chain_pem=pem(*test_ca.chain(renewed)).decode(), chain_path="/x/fullchain.pem",
                          key_path="/x/privkey.pem", staged_at=now - timedelta(minutes=30))])
    stored(session, people.shared, mx_hosts=[MxObservation(
        host=host, preference=10, tlsa_name=f"_25._tcp.{host}", tlsa_state="secure", tlsa_records=[old],
        tlsa_match=old, starttls=True, spki_sha256=tlsa_record(current, 3).data.hex())])
    stored(session, people.foreign, mx_hosts=[MxObservation(  # another tenant's check of the same host
        host=host, preference=10, tlsa_name=f"_25._tcp.{host}", tlsa_state="secure", tlsa_records=[],
        starttls=True, spki_sha256="<b>" + "ef" * 30)])
    sign_in(client, people.viewer)
    dane = page(client.get(DNS_PAGE)).select_one("#dane")
    assert dane.select_one("h3 code").text == host
    go_live = now - timedelta(minutes=30) + timedelta(hours=2)
    assert dane.select_one(".go-live").text == f"{go_live:%Y-%m-%d %H:%M:%S} UTC"
    rows = [[cell.text for cell in row.select("td")] for row in dane.select("table.tlsa-publications tbody tr")]
    assert [row[0] for row in rows] == [new, old] and rows[0][3] == "never" and rows[1][4] == "in DNS"
    [presented] = dane.select("ul.presented li")
    assert tlsa_record(current, 3).data.hex()[:16] in presented.text and "<b>" not in str(dane)


def test_history_lists_checks_and_publishing_attempts_newest_first(client, session, people):
    stored(session, people.shared, status="ok", ago=timedelta(hours=2),
           findings=[finding("sts-id-current", "the current one", level="ok")])
    stored(session, people.shared, kind="publish", ago=timedelta(hours=1),
           findings=[finding("publish-failed", "the server refused the update")])
    stored(session, people.shared, findings=[finding("sts-id-stale", "DNS still says id 1: publish id 2"),
                                             finding("tlsrpt-not-here", "reports go elsewhere", level="warning")])
    sign_in(client, people.viewer)
    entries = page(client.get(DNS_PAGE)).select("#dns-history li:has(> .version-line)")
    lines = [(" ".join(e.select_one(".version-line").text.split()), e.summary.text) for e in entries]
    assert [(line.split(" UTC ")[1].split(" policy")[0], summary) for line, summary in lines] == [
        ("check problems", "DNS still says id 1: publish id 2 (+1 more)"),
        ("publish publishing failed", "the server refused the update"),
        ("check ok", "no problems"),
    ]


def test_check_now_is_refused_within_the_minimum_interval(client, session, people):
    stored(session, people.shared, status="ok", ago=timedelta(seconds=15))
    sign_in(client, people.editor)
    response = post(client, "/domains/shared.example/dns/check")
    assert response.headers["Location"] == DNS_PAGE
    message = flash(client, DNS_PAGE, "warn")
    assert "a domain is checked at most once in 60 seconds: try again in 4" in message  # 45 s, give or take
    assert session.query(DnsObservation).count() == 1


# In the lab: the real check, through the page


def test_check_now_runs_the_dns_check_and_the_page_shows_every_mx_host(lab_app, lab_netns, client, session, dns_lab,
                                                                       mail_servers, people):
    name, mx = f"page.{SECURE}", f"mx-page.{SECURE}"
    leaf = mail_servers.good.chain[0]
    matching, unusable = str(tlsa_record(leaf, 3)), "1 1 1 " + "00" * 32
    version = host_domain(session, dns_lab, name, SECURE, mx={mx: "127.0.0.25"}, tlsa={mx: [matching, unusable]})
    set_grant(session, people.editor, version.domain, "editor", actor="test")
    sign_in(client, people.editor)
    with lab_netns.entered():
        response = post(client, f"/domains/{name}/dns/check")
    assert response.headers["Location"] == f"/domains/{name}/dns"
    shown = page(client.get(response.headers["Location"]))
    assert shown.select_one(".flash.warn").text == f"Checked {name}: problems found, see below."

    check = shown.select_one("#check")
    sections = {h3.text: " ".join(h3.find_next("ul").text.split()) for h3 in check.select("h3")}
    assert f"_mta-sts.{name} says id {version.policy_id}, the current one" in sections["_mta-sts TXT record"]
    assert f"every MX ({mx}) matches the policy" in sections["MX records and mx patterns"]

    [host] = shown.select("#mx-hosts article.mx")
    facts = {dt.text: " ".join(dt.find_next_sibling("dd").text.split()) for dt in host.select("dt")}
    assert host.select_one("h3 code").text == mx
    assert facts["Address probed"] == "127.0.0.25"
    assert facts["STARTTLS"].startswith("offered, TLSv1.")
    assert f"covers {mx}" in facts["Certificate names"] and facts["WebPKI"] == "valid"
    assert facts["SPKI SHA-256"] == tlsa_record(leaf, 3).data.hex()
    assert facts["TLSA"].startswith(f"_25._tcp.{mx} DNSSEC secure")
    records = {li.code.text.lower(): li.select_one(".badge") for li in host.select("ul.tlsa li")}
    assert records[matching].text == "matches the certificate" and records[unusable] is None
    assert "usage 1 (PKIX-EE) is unusable for SMTP" in host.select_one("ul.findings").text

    [stored_check] = session.query(DnsObservation).all()
    assert stored_check.mx_hosts[0].tlsa_match == matching
    assert "check problems" in " ".join(shown.select_one("#dns-history .version-line").text.split())
    assert get_domain(session, name).id == stored_check.domain_id


def test_publish_again_writes_the_id_to_the_authoritative_server(lab_app, lab_netns, client, session, dns_lab,
                                                                 people):
    name = f"again.{SECURE}"
    version = host_domain(session, dns_lab, name, SECURE, mx={f"mx-again.{SECURE}": "127.0.0.25"}, policy_id="1")
    session.add(DnsSetting(domain_id=version.domain.id, publish_mode="rfc2136", update_server="127.0.0.10",
                           update_zone=SECURE, tsig_key="stspolicy-test"))
    session.commit()
    sign_in(client, people.admin)
    with lab_netns.entered():
        post(client, f"/domains/{name}/dns/publish")
    assert (f"Published: _mta-sts.{name} TXT 'v=STSv1; id={version.policy_id}' at 127.0.0.10"
            == flash(client, f"/domains/{name}/dns"))
    answer = dns_lab.dig(f"_mta-sts.{name}", "TXT", "+short", "+norec", server=dns_lab.authoritative).strip()
    assert answer == f'"v=STSv1; id={version.policy_id}"'


def test_without_tlsrpt_rua_the_missing_record_is_shown_with_what_to_set(app, client, session, people, monkeypatch):
    configure(monkeypatch, app, TLSRPT_RUA=[])
    sign_in(client, people.viewer)
    for path in ("/domains/shared.example", "/domains/shared.example/dns"):
        row = page(client.get(path)).select_one("#tlsrpt-missing")
        assert row.select_one("code").text == "_smtp._tls.shared.example."
        assert "TLSRPT_RUA=https://localhost/tlsrpt" in row.text


def test_an_admin_chooses_the_publishing_mode_on_the_dns_page(app, client, session, people, monkeypatch):
    sign_in(client, people.editor)
    assert not page(client.get(DNS_PAGE)).select("#publish-mode-form")
    sign_in(client, people.admin)
    shown = page(client.get(DNS_PAGE))
    assert shown.select_one("#publish-mode-form input[name=mode][checked]")["value"] == "manual"
    token = csrf_token(client, DNS_PAGE)
    refused = client.post(f"{DNS_PAGE}/mode", data={"csrf_token": token, "mode": "rfc2136", "zone": "shared.example"})
    assert refused.status_code == 422
    html = page(refused)
    assert "rfc2136 needs --server, --zone and --key" in html.select_one("#error-summary").text
    assert html.select_one("body")["data-replace-url"] == DNS_PAGE
    refused = client.post(f"{DNS_PAGE}/mode", data={"csrf_token": token, "mode": "delegated"})
    assert "delegated mode needs DELEGATION_ZONE" in page(refused).select_one("#error-summary").text
    session.add(DnsSetting(domain_id=people.shared.id, publish_mode="rfc2136", update_server="192.0.2.53",
                           update_zone="shared.example", tsig_key="ourkey"))
    session.commit()
    done = client.post(f"{DNS_PAGE}/mode", data={"csrf_token": token, "mode": "manual"})
    assert done.headers["Location"] == f"{DNS_PAGE}#publishing"
    assert session.get(DnsSetting, people.shared.id).publish_mode == "manual"
    assert "set DNS publishing to manual" in page(client.get("/domains/shared.example")).select_one("#audit").text
