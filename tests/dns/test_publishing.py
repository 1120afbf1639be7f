"""Automatic publishing of the `_mta-sts` id by RFC 2136 to Knot, and delegated mode (RFC 8461 section 8.2)."""

import json
import threading
import time
import urllib.request
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from stspolicy.accounts.service import set_grant
from stspolicy.accounts.tokens import create_token
from stspolicy.app import create_app
from stspolicy.base.settings import current_settings
from stspolicy.dns import publish as publishing
from stspolicy.dns.models import DnsObservation, DnsSetting
from stspolicy.dns.publish import claim_job
from stspolicy.extensions import db, utcnow
from stspolicy.policies.queries import current_version, get_domain
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from stspolicy.propagation import publish_pending
from tests import databases
from tests.conftest import app_settings
from tests.factories import make_user, sign_in
from tests.lab.dns import INSECURE, SECURE
from tests.lab.fixtures import host_domain
from tests.support.config import configure
from tests.support.servers import gunicorn
from tests.web.test_admin_pages import page, policy_form, post


def authoritative_txt(dns_lab, name):
    """The TXT at `name` as Knot itself answers (kdig, no cache)."""
    return dns_lab.dig(name, "TXT", "+short", "+norec", server=dns_lab.authoritative).strip()


def sts_findings(result):
    return [(f["level"], f["code"]) for f in json.loads(result.output)[0]["findings"] if f["code"].startswith(
        ("sts-", "delegation"))]


def rfc2136(in_lab, name, *extra):
    return in_lab("dns", "mode", name, "rfc2136", "--server", "127.0.0.10", "--zone", SECURE,
                  "--key", "stspolicy-test", *extra)


def test_rfc2136_mode_publishes_the_id_and_every_change_updates_it(in_lab, session, dns_lab):
    name = f"pub.{SECURE}"
    host_domain(session, dns_lab, name, SECURE, mx={f"mx-pub.{SECURE}": "127.0.0.25"}, policy_id="1")
    result = rfc2136(in_lab, name)
    assert result.exit_code == 0, result.output
    first = current_version(session, get_domain(session, name)).policy_id
    assert f'published: _mta-sts.{name} TXT \'v=STSv1; id={first}\' at 127.0.0.10' in result.output
    assert authoritative_txt(dns_lab, f"_mta-sts.{name}") == f'"v=STSv1; id={first}"'

    result = in_lab("domain", "update", name, "--mode", "testing")
    assert result.exit_code == 0, result.output
    second = current_version(session, get_domain(session, name)).policy_id
    assert second != first
    assert authoritative_txt(dns_lab, f"_mta-sts.{name}") == f'"v=STSv1; id={second}"'
    dns_lab.flush()
    assert sts_findings(in_lab("dns", "check", "--json", name)) == [("ok", "sts-id-current")]
    kinds = [o.kind for o in session.query(DnsObservation).order_by(DnsObservation.id)]
    assert kinds == ["publish", "publish", "check"]


def test_the_record_is_written_with_the_ttl_the_records_show(in_lab, lab_app, session, dns_lab, monkeypatch):
    """What `dns records` tells the owner to publish by hand is what RFC 2136 publishing writes, TTL included."""
    configure(monkeypatch, lab_app, DNS_RECORD_TTL=120)
    name = f"ttl.{SECURE}"
    host_domain(session, dns_lab, name, SECURE, mx={f"mx-ttl.{SECURE}": "127.0.0.25"})
    assert rfc2136(in_lab, name).exit_code == 0
    policy_id = current_version(session, get_domain(session, name)).policy_id
    shown = in_lab("dns", "records", name).output
    assert f'_mta-sts.{name}. 120 IN TXT "v=STSv1; id={policy_id}"' in shown
    assert f"_smtp._tls.{name}. 86400 IN TXT " in shown
    answer = dns_lab.dig(f"_mta-sts.{name}", "TXT", "+noall", "+answer", "+norec", server=dns_lab.authoritative)
    assert answer.split()[1] == "120"


def test_the_id_is_published_only_once_the_new_policy_is_served(in_lab, client, session, dns_lab, monkeypatch):
    """RFC 8461 section 8.1: at the moment the TXT record is written, the new body is already served."""
    name = f"order.{SECURE}"
    host_domain(session, dns_lab, name, SECURE, mx={f"mx-order.{SECURE}": "127.0.0.25"})
    assert rfc2136(in_lab, name).exit_code == 0
    served_when_written = []
    real = publishing.replace_txt

    def replace_txt_noting_what_is_served(*args, **kwargs):
        response = client.get("/.well-known/mta-sts.txt", headers={"Host": f"mta-sts.{name}"})
        served_when_written.append((args[3], response.get_data(as_text=True)))
        return real(*args, **kwargs)

    monkeypatch.setattr(publishing, "replace_txt", replace_txt_noting_what_is_served)
    assert in_lab("domain", "update", name, "--max-age", "604800").exit_code == 0
    version = current_version(session, get_domain(session, name))
    assert served_when_written == [(f"v=STSv1; id={version.policy_id}", version.policy_text)]


def test_a_refused_update_fails_loudly_and_is_recorded(in_lab, lab_app, session, dns_lab, monkeypatch):
    name = f"refused.{SECURE}"
    host_domain(session, dns_lab, name, SECURE, mx={f"mx-refused.{SECURE}": "127.0.0.25"})
    assert rfc2136(in_lab, name).exit_code == 0
    before = authoritative_txt(dns_lab, f"_mta-sts.{name}")
    wrong = {"stspolicy-test": ("hmac-sha256", "d3Jvbmcgc2VjcmV0IHdyb25nIHNlY3JldCB3cm9uZyE=")}
    configure(monkeypatch, lab_app, DNS_TSIG_KEYS=wrong)
    result = in_lab("domain", "update", name, "--mode", "testing")
    version = current_version(session, get_domain(session, name))
    assert result.exit_code == 1
    assert f"policy id {version.policy_id} is served, but _mta-sts.{name} was not updated" in result.output
    assert "signature" in result.output  # TSIG refused by Knot
    assert authoritative_txt(dns_lab, f"_mta-sts.{name}") == before
    last = session.query(DnsObservation).order_by(DnsObservation.id.desc()).first()
    assert (last.kind, last.status, last.policy_id) == ("publish", "problems", version.policy_id)


def test_delegated_domain_is_kept_current_in_our_zone(in_lab, lab_app, session, dns_lab, monkeypatch):
    configure(monkeypatch, lab_app, DELEGATION_ZONE=SECURE, DELEGATION_SERVER="127.0.0.10",
              DELEGATION_TSIG_KEY="stspolicy-test")
    name = f"customer.{INSECURE}"
    target = f"_mta-sts.{name}.{SECURE}"
    host_domain(session, dns_lab, name, INSECURE, mx={f"mx-customer.{INSECURE}": "127.0.0.25"}, sts=False)

    result = in_lab("dns", "mode", name, "delegated")
    assert result.exit_code == 0, result.output
    assert f"_mta-sts.{name}. 3600 IN CNAME {target}." in result.output
    assert ("error", "delegation-missing") in sts_findings(in_lab("dns", "check", "--json", name))

    dns_lab.set_records(INSECURE, f"_mta-sts.{name}.", "CNAME", [f"{target}."])  # the customer, once
    assert sts_findings(in_lab("dns", "check", "--json", name)) == [("ok", "sts-id-current")]
    assert in_lab("domain", "update", name, "--mode", "testing").exit_code == 0
    dns_lab.flush()
    assert sts_findings(in_lab("dns", "check", "--json", name)) == [("ok", "sts-id-current")]
    version = current_version(session, get_domain(session, name))
    assert authoritative_txt(dns_lab, target) == f'"v=STSv1; id={version.policy_id}"'


@pytest.mark.parametrize(("args", "message"), [
    (("rfc2136",), "rfc2136 needs --server, --zone and --key"),
    (("rfc2136", "--server", "127.0.0.10", "--zone", "other.test", "--key", "stspolicy-test"),
     "is not inside zone other.test"),
    (("rfc2136", "--server", "127.0.0.10", "--zone", SECURE, "--key", "nokey"), "no TSIG key 'nokey'"),
    (("delegated",), "delegated mode needs DELEGATION_ZONE"),
])
def test_publishing_settings_are_checked(in_lab, session, dns_lab, args, message):
    host_domain(session, dns_lab, f"settings.{SECURE}", SECURE, mx={f"mx-settings.{SECURE}": "127.0.0.25"})
    result = in_lab("dns", "mode", f"settings.{SECURE}", *args)
    assert result.exit_code == 1 and message in result.output


def test_publish_in_manual_mode_says_to_publish_by_hand(in_lab, session, dns_lab):
    host_domain(session, dns_lab, f"manual.{SECURE}", SECURE, mx={f"mx-manual.{SECURE}": "127.0.0.25"})
    result = in_lab("dns", "publish", f"manual.{SECURE}")
    assert result.exit_code == 1 and "is in manual mode" in result.output


# A change made in the web: the request never waits; the id goes to DNS once every worker serves the policy


def rfc2136_setting(session, version):
    session.add(DnsSetting(domain_id=version.domain.id, publish_mode="rfc2136", update_server="127.0.0.10",
                           update_zone=SECURE, tsig_key="stspolicy-test"))
    session.commit()


def test_a_policy_saved_in_the_form_returns_at_once_and_its_id_is_written_when_due(lab_app, lab_netns, client,
                                                                                  session, dns_lab, people,
                                                                                  monkeypatch):
    configure(monkeypatch, lab_app, SNAPSHOT_REFRESH_SECONDS=3600)  # workers serve a change 2 hours later
    name = f"form.{SECURE}"
    version = host_domain(session, dns_lab, name, SECURE, mx={f"mx-form.{SECURE}": "127.0.0.25"}, policy_id="1")
    rfc2136_setting(session, version)
    set_grant(session, people.editor, version.domain, "editor", actor="test")
    sign_in(client, people.editor)
    # Outside the lab's network: a DNS update made in the request could not reach the server.
    response = post(client, f"/domains/{name}/policy", policy_form(mx=(f"mx-form.{SECURE}",), max_age="86400"))
    assert response.headers["Location"] == f"/domains/{name}"
    new = current_version(session, get_domain(session, name))
    job = session.query(DnsObservation).one()
    assert (job.kind, job.status, job.policy_id) == ("publish", "pending", new.policy_id)
    shown = page(client.get(f"/domains/{name}"))
    assert f"Published policy id {new.policy_id}: _mta-sts.{name} gets policy id" in shown.select_one(".flash").text
    assert shown.select_one("#publishing-now") and not shown.select_one("#publish-failure")
    assert page(client.get(f"/domains/{name}/dns")).select_one("#publishing-now")
    assert page(client.get("/")).find("span", class_="badge warn", string="publishing")
    assert authoritative_txt(dns_lab, f"_mta-sts.{name}") == '"v=STSv1; id=1"'

    with lab_netns.entered():
        outcomes = publish_pending(session, current_settings(), utcnow())
        assert [o.state for o in outcomes] == ["waiting"]  # not served by every worker yet
        assert authoritative_txt(dns_lab, f"_mta-sts.{name}") == '"v=STSv1; id=1"'
        [outcome] = publish_pending(session, current_settings(), new.created_at + timedelta(hours=2))
    assert outcome.state == "published"
    assert authoritative_txt(dns_lab, f"_mta-sts.{name}") == f'"v=STSv1; id={new.policy_id}"'
    assert (job.status, job.policy_id) == ("ok", new.policy_id)
    shown = page(client.get(f"/domains/{name}"))
    assert not shown.select_one("#publishing-now") and not shown.select_one("#publish-failure")


def test_a_policy_changed_through_the_api_returns_at_once_with_the_update_pending(lab_app, client, session, dns_lab,
                                                                                 people, monkeypatch):
    configure(monkeypatch, lab_app, SNAPSHOT_REFRESH_SECONDS=3600)
    name = f"api.{SECURE}"
    version = host_domain(session, dns_lab, name, SECURE, mx={f"mx-api.{SECURE}": "127.0.0.25"}, policy_id="1")
    rfc2136_setting(session, version)
    set_grant(session, people.editor, version.domain, "editor", actor="test")
    token = create_token(session, people.editor, "test", actor="test")[1]
    response = client.patch(f"/api/v1/domains/{name}", headers={"Authorization": f"Bearer {token}"},
                            json={"max_age": 604800})
    assert response.status_code == 200
    job = session.query(DnsObservation).one()
    assert (job.kind, job.status, job.policy_id) == ("publish", "pending", response.get_json()["policy_id"])
    assert authoritative_txt(dns_lab, f"_mta-sts.{name}") == '"v=STSv1; id=1"'


def test_of_two_processes_claiming_one_pending_update_only_one_gets_it(new_database):
    url = new_database()
    databases.upgrade(url)
    app = create_app(app_settings(url))
    with app.app_context():
        version = add_domain(db.session, "claimed.example", make_policy("testing", ["mx.claimed.example"], 86400),
                             actor="test")
        db.session.add(DnsSetting(domain_id=version.domain.id, publish_mode="rfc2136", update_server="127.0.0.1:9",
                                  update_zone="claimed.example", tsig_key="no-such-key"))
        job = DnsObservation(domain_id=version.domain.id, kind="publish", status="pending",
                             policy_id=version.policy_id, findings=[], answers=[])
        db.session.add(job)
        db.session.commit()
        claim = (job.id, job.domain_id, version.policy_id, utcnow())
        db.session.commit()  # this session reads again after the claims, not in a snapshot taken before
        first, second = Session(db.engine), Session(db.engine)
        assert claim_job(first, *claim)  # not committed yet: the row stays locked
        took = []
        other = threading.Thread(target=lambda: took.append(claim_job(second, *claim)))
        other.start()
        other.join(0.5)
        assert other.is_alive()  # the second process waits for the first one's claim
        first.commit()
        other.join()
        second.commit()
        assert took == [False]
        assert publish_pending(db.session, current_settings(), claim[3]) == []  # being written, by the first
        # A claim whose process died while writing is taken over later.
        [outcome] = publish_pending(db.session, current_settings(), claim[3] + timedelta(minutes=10))
        assert outcome.state == "failed" and "no TSIG key 'no-such-key'" in outcome.detail
        first.close()
        second.close()
        databases.release_connections()


def test_a_worker_writes_the_id_of_a_web_change_once_every_worker_serves_it(dns_lab, lab_netns, tmp_path):
    """Under gunicorn: the API answers at once, and the worker's own timer writes the id when due."""
    url = f"sqlite:///{tmp_path / 'stspolicy.db'}"  # reachable from inside the lab's network namespace
    databases.upgrade(url)
    tsig = dns_lab.tsig
    settings = app_settings(url, SNAPSHOT_REFRESH_SECONDS="2",
                            DNS_TSIG_KEYS=f"{tsig.name.rstrip('.')}:{tsig.algorithm}:{tsig.secret}")
    name = f"timer.{SECURE}"
    app = create_app(settings)
    with app.app_context():
        version = host_domain(db.session, dns_lab, name, SECURE, mx={f"mx-timer.{SECURE}": "127.0.0.25"},
                              policy_id="1")
        rfc2136_setting(db.session, version)
        admin = make_user(db.session, "admin@provider.example", "admin")
        token = create_token(db.session, admin, "test", actor="test")[1]
        databases.release_connections()
    with gunicorn(settings, workers=2, netns=lab_netns) as base_url:
        request = urllib.request.Request(
            f"{base_url}/api/v1/domains/{name}", method="PATCH", data=json.dumps({"max_age": 604800}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            policy_id = json.load(response)["policy_id"]
        assert authoritative_txt(dns_lab, f"_mta-sts.{name}") == '"v=STSv1; id=1"'
        with app.app_context():
            assert publishing_attempt(policy_id) == "pending"  # due 2 x 2 seconds after the change
            deadline = time.monotonic() + 30
            while publishing_attempt(policy_id) != "ok":
                assert time.monotonic() < deadline, "the worker did not write the new id"
                time.sleep(0.2)
            databases.release_connections()
        assert authoritative_txt(dns_lab, f"_mta-sts.{name}") == f'"v=STSv1; id={policy_id}"'


def publishing_attempt(policy_id):
    """The status of the one publishing attempt, as another process has stored it by now."""
    try:
        [attempt] = db.session.query(DnsObservation).all()
        assert attempt.policy_id == policy_id
        return attempt.status
    finally:
        db.session.remove()
