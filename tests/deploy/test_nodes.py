"""Two serving nodes driven by one PostgreSQL, end to end, with real parts in the lab's network namespace.

Each node is the shipped nginx configuration on an address of its own (127.0.0.21 and .22, ports
443 and 80) with its own `flask node sync` writing its policy, certificate and ACME folders. The
application (gunicorn, in the namespace so that it writes `_mta-sts` to the lab's Knot by RFC
2136) and a private PostgreSQL (over its unix socket, stopped and started by the test) are
shared; `mta-sts.<domain>` has both addresses, so pebble and postfix-mta-sts-resolver reach
either node. A policy saved in the admin pages is served by both before the id changes in DNS;
a node whose sync is killed holds the id back and shows as silent, then catches up; a node
restarted while PostgreSQL is down serves its last files.
"""

import contextlib
import http.cookiejar
import json
import re
import ssl
import sys
import time
import urllib.parse
import urllib.request

import pytest

from stspolicy.policies.rules import make_policy, render_policy
from tests import databases
from tests.conftest import app_settings
from tests.deploy.test_end_to_end import RESOLVE, as_resolver_reads
from tests.factories import PASSWORD
from tests.lab.dns import SECURE
from tests.support.nginx import NginxLayout, layout_folder, request, running_nginx, write_config
from tests.support.pebble import running_pebble
from tests.support.servers import (
    ROOT,
    app_environment,
    controlled_postgresql,
    gunicorn,
    start_node_sync,
    stop_process,
)

pytestmark = pytest.mark.slow

DOMAIN = f"nodes.{SECURE}"
POLICY_HOST = f"mta-sts.{DOMAIN}"
MX = f"mx.{DOMAIN}"
ADMIN = "admin@provider.example"
NODE_TIMING = {"NODE_HEARTBEAT_SECONDS": "0.5", "NODE_SILENT_SECONDS": "3", "NODE_RECONCILE_SECONDS": "60"}
WAIT = 60  # seconds any wait below may take before the test gives up: a bound on hanging, not a speed check


def policy_body(max_age: int) -> bytes:
    return render_policy(make_policy("testing", [MX], max_age)).encode()


class Node:
    """One serving node: nginx with the shipped configuration, and its `flask node sync`."""

    def __init__(self, name: str, address: str, folder, netns, database_url: str, roots):
        self.name, self.netns, self.roots = name, netns, roots
        self.layout = NginxLayout(folder, address, 443, 80)
        write_config(self.layout)
        self.settings = app_settings(database_url, NODE_NAME=name, POLICY_FILES_DIR=str(self.layout.policies),
                                     CERTS_DIR=str(self.layout.certs), ACME_WEBROOT=str(self.layout.webroot),
                                     **NODE_TIMING)
        self.log = folder / "sync.log"
        self.sync = None
        self._nginx = contextlib.ExitStack()

    def start_sync(self) -> None:
        self.sync = start_node_sync(self.settings, self.log)

    def kill_sync(self) -> None:
        self.sync.kill()
        self.sync.wait()

    def start_nginx(self) -> None:
        self._nginx.enter_context(running_nginx(self.layout, self.netns))

    def stop_nginx(self) -> None:
        self._nginx.close()

    def stop(self) -> None:
        self.stop_nginx()
        if self.sync is not None:
            stop_process(self.sync)

    def served(self) -> bytes | None:
        """The policy this node's nginx serves over HTTPS (trusting pebble's roots), or None."""
        try:
            with self.netns.entered():
                answer = request(self.layout.address, 443, POLICY_HOST, ca=self.roots)
        except (OSError, ssl.SSLError):
            return None
        return answer.body if answer.status == 200 else None


class AdminPages:
    """An admin signed in to the application's pages over HTTP, as a browser is."""

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self._post("/login", "/login", {"email": ADMIN, "password": PASSWORD})

    def _post(self, form_page: str, action: str, fields: dict) -> None:
        with self.opener.open(self.base_url + form_page, timeout=30) as response:
            token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"|name="csrf_token" value="([^"]+)"',
                              response.read().decode())
        data = urllib.parse.urlencode({"csrf_token": token.group(1) or token.group(2), **fields}).encode()
        with self.opener.open(self.base_url + action, data=data, timeout=30) as response:
            assert response.status == 200 and "/login" not in response.url, response.url

    def save_policy(self, max_age: int) -> float:
        """Save the domain's policy with a new max_age from its page; when the answer came (monotonic)."""
        self._post(f"/domains/{DOMAIN}", f"/domains/{DOMAIN}/policy",
                   {"mode": "testing", "mx-0": MX, "max_age": str(max_age)})
        return time.monotonic()


def sts_record(dns_lab) -> str:
    return dns_lab.dig(f"_mta-sts.{DOMAIN}", "TXT", "+short", "+norec", server=dns_lab.authoritative).strip()


def follow(dns_lab, nodes: list[Node], body: bytes, old_record: str, since: float) -> dict[str, float]:
    """Watch DNS and the nodes until all have the change: seconds from `since` until each had it.

    DNS is looked at first in each round, so a record seen new while a node is seen old
    means the id changed before that node served the policy.
    """
    seen: dict[str, float] = {}
    deadline = time.monotonic() + WAIT
    while len(seen) < len(nodes) + 1:
        assert time.monotonic() < deadline, f"not everywhere after {WAIT}s: {seen}"
        dns_new = sts_record(dns_lab) != old_record
        moment = time.monotonic() - since
        if dns_new:
            seen.setdefault("dns", moment)
        for node in nodes:
            if node.served() == body:
                seen.setdefault(node.name, time.monotonic() - since)
            else:
                assert not dns_new, f"_mta-sts named the new policy before {node.name} served it: {seen}"
        time.sleep(0.02)
    return seen


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


@pytest.fixture
def cluster(lab_netns, dns_lab, test_ca, tmp_path):
    """PostgreSQL, pebble, the application and two nodes, each started; yields what the test drives."""
    with contextlib.ExitStack() as stack:
        postgresql = stack.enter_context(controlled_postgresql(over_unix_socket=True))
        databases.upgrade(postgresql.url)
        pebble = stack.enter_context(running_pebble(tmp_path / "pebble", 80, test_ca,
                                                    dns_server=f"{dns_lab.resolver}:53", netns=lab_netns))
        roots = tmp_path / "roots.pem"
        with lab_netns.entered():
            roots.write_bytes(pebble.root_pem())
        tsig = dns_lab.tsig
        settings = app_settings(
            postgresql.url, SNAPSHOT_REFRESH_SECONDS="0.2", DNS_TIMEOUT="3",
            DNS_TSIG_KEYS=f"{tsig.name.rstrip('.')}:{tsig.algorithm}:{tsig.secret}",
            ACME_DIRECTORY_URL=pebble.directory_url, ACME_CA_BUNDLE=str(pebble.ca_bundle),
            CERTS_DIR=str(tmp_path / "app-certs"), ACME_WEBROOT=str(tmp_path / "app-acme"), **NODE_TIMING)
        nodes = []
        for name, address in (("node-a", "127.0.0.21"), ("node-b", "127.0.0.22")):
            node = Node(name, address, stack.enter_context(layout_folder()), lab_netns, postgresql.url, roots)
            stack.callback(node.stop)
            node.start_sync()
            node.start_nginx()
            nodes.append(node)

        def flask(*args, input=None):
            result = lab_netns.run(sys.executable, "-m", "flask", "--app", "wsgi", *args, cwd=ROOT, input=input,
                                   env=app_environment(settings), check=False, timeout=180)
            assert result.returncode == 0, result.stdout + result.stderr
            return result.stdout

        dns_lab.set_records(SECURE, f"{POLICY_HOST}.", "A", ["127.0.0.21", "127.0.0.22"], flush=False)
        dns_lab.set_records(SECURE, f"{DOMAIN}.", "MX", [f"10 {MX}."])
        flask("user", "create", ADMIN, "--role", "admin", "--password-stdin", input=PASSWORD + "\n")
        flask("domain", "add", DOMAIN, "--mode", "testing", "--mx", MX, "--max-age", "86400")
        flask("dns", "mode", DOMAIN, "rfc2136", "--server", dns_lab.authoritative, "--zone", SECURE,
              "--key", tsig.name.rstrip("."))
        base_url = stack.enter_context(gunicorn(settings, workers=1, netns=lab_netns))
        yield nodes, flask, AdminPages(base_url), postgresql, roots


def resolve(netns, roots, last_known_id=None) -> dict:
    """What postfix-mta-sts-resolver makes of the domain, through the lab's DNS and either node."""
    result = netns.run(sys.executable, "-c", RESOLVE, DOMAIN, *([last_known_id] if last_known_id else []),
                       env={"SSL_CERT_FILE": str(roots), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
                       check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def current_id(flask) -> str:
    return json.loads(flask("domain", "show", DOMAIN, "--json"))["policy_id"]


def node_states(flask) -> dict[str, str]:
    return {node["name"]: node["state"] for node in json.loads(flask("node", "list", "--json"))}


def test_two_nodes_serve_every_change_before_its_id_is_published_and_a_node_that_was_down_catches_up(
        cluster, lab_netns, dns_lab):
    (node_a, node_b), flask, admin, postgresql, roots = cluster
    timeline = []

    # A certificate from pebble, whose http-01 request reached one node or the other, is served by both.
    assert "mta-sts.nodes.example.test: issued" in flask("cert", "issue", DOMAIN)
    wait_for(lambda: node_a.served() == node_b.served() == policy_body(86400), "both nodes serve over TLS")
    first_id = current_id(flask)
    dns_lab.flush()
    assert resolve(lab_netns, roots) == {"status": "VALID", "id": first_id,
                                         "policy": as_resolver_reads("testing", [MX], 86400)}

    # A policy saved in the admin pages reaches both nodes, and only then its id reaches DNS.
    saved = admin.save_policy(604800)
    seen = follow(dns_lab, [node_a, node_b], policy_body(604800), f'"v=STSv1; id={first_id}"', saved)
    second_id = current_id(flask)
    assert sts_record(dns_lab) == f'"v=STSv1; id={second_id}"' != f'"v=STSv1; id={first_id}"'
    timeline.append(f"save -> served by node-a {seen['node-a']:.3f}s, node-b {seen['node-b']:.3f}s, "
                    f"id in DNS {seen['dns']:.3f}s")
    dns_lab.flush()
    assert resolve(lab_netns, roots, first_id) == {"status": "VALID", "id": second_id,
                                                   "policy": as_resolver_reads("testing", [MX], 604800)}

    # With node-a's nginx down, the client gets the policy from node-b.
    node_a.stop_nginx()
    assert resolve(lab_netns, roots, first_id)["status"] == "VALID"
    node_a.start_nginx()

    # node-b's sync is killed: its nginx goes on serving the old policy, the next id is held back.
    node_b.kill_sync()
    saved = admin.save_policy(2592000)
    wait_for(lambda: node_a.served() == policy_body(2592000), "node-a serves the change")
    third_id = current_id(flask)
    wait_for(lambda: node_states(flask)["node-b"] == "silent", "node-b is called out as silent")
    held = flask("dns", "publish-pending")
    assert "is not served by node(s) node-b (silent) yet" in held, held
    assert sts_record(dns_lab) == f'"v=STSv1; id={second_id}"'
    assert node_b.served() == policy_body(604800)
    timeline.append(f"node-b killed: id held back {time.monotonic() - saved:.1f}s, node-b silent")

    # node-b's sync comes back: it catches up, then the id is published.
    restarted = time.monotonic()
    node_b.start_sync()
    seen = follow(dns_lab, [node_a, node_b], policy_body(2592000), f'"v=STSv1; id={second_id}"', restarted)
    assert sts_record(dns_lab) == f'"v=STSv1; id={third_id}"'
    timeline.append(f"node-b's sync started (a new process) -> serves the change {seen['node-b']:.3f}s, "
                    f"id in DNS {seen['dns']:.3f}s")
    assert node_states(flask) == {"node-a": "current", "node-b": "current"}

    # PostgreSQL stops; node-a restarts (its nginx and its sync) and serves its last files.
    postgresql.stop()
    node_a.stop()
    node_a.start_nginx()
    node_a.start_sync()
    assert node_a.served() == node_b.served() == policy_body(2592000)
    assert "database unreachable, serving the files as they are" in node_a.log.read_text()

    # PostgreSQL is back: the syncs reconnect and listen again, and the next change reaches both.
    postgresql.start()
    wait_for(lambda: node_states(flask) == {"node-a": "current", "node-b": "current"}, "both nodes are back")
    saved = admin.save_policy(86400 * 7 + 1)
    seen = follow(dns_lab, [node_a, node_b], policy_body(86400 * 7 + 1), f'"v=STSv1; id={third_id}"', saved)
    assert sts_record(dns_lab) == f'"v=STSv1; id={current_id(flask)}"'
    timeline.append(f"after PostgreSQL's restart: save -> node-a {seen['node-a']:.3f}s, node-b "
                    f"{seen['node-b']:.3f}s, id in DNS {seen['dns']:.3f}s")
    print("\n" + "\n".join(timeline))
