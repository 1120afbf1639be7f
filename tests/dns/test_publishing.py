"""Automatic publishing of the `_mta-sts` id by RFC 2136 to Knot, and delegated mode (RFC 8461 section 8.2)."""

import json

import pytest

from stspolicy.dns import publish as publishing
from stspolicy.dns.models import DnsObservation
from stspolicy.policies.queries import current_version, get_domain
from tests.lab.dns import INSECURE, SECURE
from tests.support.dns_support import host_domain


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
    monkeypatch.setitem(lab_app.config, "DNS_RECORD_TTL", 120)
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
    monkeypatch.setitem(lab_app.config, "DNS_TSIG_KEYS", wrong)
    result = in_lab("domain", "update", name, "--mode", "testing")
    version = current_version(session, get_domain(session, name))
    assert result.exit_code == 1
    assert f"policy id {version.policy_id} is served, but _mta-sts.{name} was not updated" in result.output
    assert "signature" in result.output  # TSIG refused by Knot
    assert authoritative_txt(dns_lab, f"_mta-sts.{name}") == before
    last = session.query(DnsObservation).order_by(DnsObservation.id.desc()).first()
    assert (last.kind, last.status, last.policy_id) == ("publish", "problems", version.policy_id)


def test_delegated_domain_is_kept_current_in_our_zone(in_lab, lab_app, session, dns_lab, monkeypatch):
    monkeypatch.setitem(lab_app.config, "DELEGATION_ZONE", SECURE)
    monkeypatch.setitem(lab_app.config, "DELEGATION_SERVER", "127.0.0.10")
    monkeypatch.setitem(lab_app.config, "DELEGATION_TSIG_KEY", "stspolicy-test")
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
