"""End to end with real parts: a real MTA-STS client fetches what the admin set, through edits and outages.

Inside the lab's network namespace: Knot serving DNSSEC-signed zones behind the validating
unbound; nginx with the shipped configuration on 127.0.0.20:443 and :80; pebble issuing
the certificates through the real ACME flow (http-01 via nginx's webroot, names resolved
by unbound). gunicorn and a private PostgreSQL (reached over its unix socket, so from any
namespace) run the application. The client is postfix-mta-sts-resolver, which insists on
port 443 and the system resolver: hence the namespace and its resolv.conf.
"""

import contextlib
import json
import sys

import pytest

from stspolicy.policies.rules import make_policy, render_policy
from tests import databases
from tests.conftest import app_settings
from tests.lab.dns import INSECURE, SECURE
from tests.support.nginx import NginxLayout, layout_folder, running_nginx, write_config
from tests.support.pebble import running_pebble
from tests.support.servers import ROOT, app_environment, gunicorn, private_postgresql

NGINX_ADDRESS = "127.0.0.20"
ONE = f"e2e-one.{SECURE}"  # signed zone
TWO = f"e2e-two.{INSECURE}"  # unsigned zone: MTA-STS does not need DNSSEC
THREE = f"e2e-three.{SECURE}"  # first fetched while gunicorn and PostgreSQL are down
UNHOSTED = f"e2e-none.{SECURE}"  # publishes MTA-STS records pointing at us, but we do not host it

RESOLVE = """
import asyncio, json, sys
from postfix_mta_sts_resolver.resolver import STSResolver

async def main():
    resolver = STSResolver(loop=asyncio.get_running_loop(), timeout=10)
    status, found = await resolver.resolve(sys.argv[1], (sys.argv[2:] or [None])[0])
    print(json.dumps({"status": status.name, "id": found and found[0], "policy": found and found[1]}))

asyncio.run(main())
"""


def as_resolver_reads(mode, mx, max_age):
    return {"version": "STSv1", "mode": mode, "mx": mx, "max_age": max_age}


@pytest.fixture
def lab_site(lab_netns, dns_lab, test_ca, tmp_path):
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(layout_folder())
        layout = NginxLayout(folder, NGINX_ADDRESS, 443, 80)
        write_config(layout)
        stack.enter_context(running_nginx(layout, lab_netns))
        pebble = stack.enter_context(running_pebble(
            tmp_path / "pebble", 80, test_ca, dns_server=f"{dns_lab.resolver}:53", netns=lab_netns))
        yield layout, pebble


def publish(dns_lab, domain, policy_id):
    """What the admin publishes for a domain: the _mta-sts id and the policy host's address."""
    zone = domain.split(".", 1)[1]
    label = domain.split(".")[0]
    dns_lab.set_records(zone, f"mta-sts.{label}", "A", [NGINX_ADDRESS], flush=False)
    dns_lab.set_records(zone, f"_mta-sts.{label}", "TXT", [f'"v=STSv1; id={policy_id};"'])


def test_a_real_mta_sts_client_gets_what_the_admin_set_through_edits_and_outages(lab_netns, dns_lab, lab_site,
                                                                                  tmp_path):
    layout, pebble = lab_site
    with lab_netns.entered():
        (tmp_path / "roots.pem").write_bytes(pebble.root_pem())

    def fetch(domain, last_known_id=None):
        result = lab_netns.run(sys.executable, "-c", RESOLVE, domain, *([last_known_id] if last_known_id else []),
                               env={"SSL_CERT_FILE": str(tmp_path / "roots.pem"), "PATH": "/usr/bin:/bin",
                                    "PYTHONPATH": str(ROOT)}, check=False)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    with private_postgresql(over_unix_socket=True) as (url, stop_postgresql), contextlib.ExitStack() as app:
        databases.upgrade(url)
        settings = app_settings(
            url, SNAPSHOT_REFRESH_SECONDS="1", POLICY_FILES_DIR=str(layout.policies), CERTS_DIR=str(layout.certs),
            ACME_WEBROOT=str(layout.webroot), ACME_DIRECTORY_URL=pebble.directory_url,
            ACME_CA_BUNDLE=str(pebble.ca_bundle),
        )

        def flask(*args):
            result = lab_netns.run(sys.executable, "-m", "flask", "--app", "wsgi", *args, cwd=ROOT,
                                   env=app_environment(settings), check=False, timeout=180)
            assert result.returncode == 0, result.stdout + result.stderr
            return result.stdout

        app.enter_context(gunicorn(settings, workers=2, unix_socket=str(layout.gunicorn_socket)))

        # The admin hosts two domains, publishes their records, and certificates are issued by ACME.
        flask("domain", "add", ONE, "--mode", "enforce", "--mx", f"mx1.{ONE}", "--mx", f"mx2.{ONE}",
              "--max-age", "604800")
        flask("domain", "add", TWO, "--mode", "testing", "--mx", f"*.mx.{TWO}", "--max-age", "86400")
        flask("domain", "add", THREE, "--mode", "enforce", "--mx", f"mx.{THREE}", "--max-age", "31557600")
        ids = {domain: json.loads(flask("domain", "show", domain, "--json"))["policy_id"]
               for domain in (ONE, TWO, THREE)}
        for domain, policy_id in ids.items():
            publish(dns_lab, domain, policy_id)
        publish(dns_lab, UNHOSTED, "20260101000000")
        renewed = flask("cert", "renew")
        assert all(f"mta-sts.{domain}: issued" in renewed for domain in (ONE, TWO, THREE)), renewed

        expected = {
            ONE: as_resolver_reads("enforce", [f"mx1.{ONE}", f"mx2.{ONE}"], 604800),
            TWO: as_resolver_reads("testing", [f"*.mx.{TWO}"], 86400),
            THREE: as_resolver_reads("enforce", [f"mx.{THREE}"], 31557600),
        }
        for domain in (ONE, TWO):
            assert fetch(domain) == {"status": "VALID", "id": ids[domain], "policy": expected[domain]}
        assert (layout.policies / f"{ONE}.txt").read_bytes() == render_policy(
            make_policy("enforce", [f"mx1.{ONE}", f"mx2.{ONE}"], 604800)).encode()

        # A domain we do not host gets no policy: no certificate, the handshake is aborted.
        assert fetch(UNHOSTED) == {"status": "FETCH_ERROR", "id": None, "policy": None}

        # After an edit the client sees the new id, and fetches the new policy.
        flask("domain", "update", ONE, "--mode", "testing")
        new_id = json.loads(flask("domain", "show", ONE, "--json"))["policy_id"]
        assert new_id != ids[ONE]
        publish(dns_lab, ONE, new_id)
        assert fetch(ONE, ids[ONE]) == {
            "status": "VALID", "id": new_id, "policy": as_resolver_reads("testing", [f"mx1.{ONE}", f"mx2.{ONE}"],
                                                                         604800)}
        ids[ONE], expected[ONE]["mode"] = new_id, "testing"

        # gunicorn and PostgreSQL stop: every hosted domain's policy is still fetched, also one
        # that nobody fetched before.
        app.close()
        stop_postgresql()
        for domain in (ONE, TWO, THREE):
            assert fetch(domain) == {"status": "VALID", "id": ids[domain], "policy": expected[domain]}
