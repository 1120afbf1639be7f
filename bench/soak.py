"""Soak: 60 s of mixed load on gunicorn with PostgreSQL while clients send report bodies a byte at a time.

    python -m bench.soak [--seconds 60] [--domains 200] [--slow-clients 32] [--workers 2]

Hosts `--domains` domains in a fresh database on TEST_POSTGRESQL_URL's server, then runs at once:
wrk fetching policies with a random `Host: mta-sts.<domain>`; report POSTs (new reports,
resends of acknowledged ones, and forgeries reusing an acknowledged report id with other
content); a signed-in admin viewing the domain list and domain pages; and `--slow-clients`
connections each sending a report body one byte every 2 s (a new one whenever the server
ends one). Before that, the same wrk alone for a baseline p99 in the same run.

Prints the 5xx count, reports acknowledged against stored (lost = acknowledged, not stored),
and the policy fetch p99 under load against the baseline.
Target: 0 5xx, 0 lost, policy p99 under 50 ms while the slow-body attack runs.
"""

import argparse
import copy
import itertools
import json
import random
import re
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from http.cookiejar import CookieJar
from pathlib import Path

from flask_migrate import upgrade
from sqlalchemy import select

from bench.common import APP_LOADED, WRK_DONE, WRK_SCRIPT, gunicorn, require
from reports.models import Report
from stspolicy.accounts.service import create_user
from stspolicy.app import create_app
from stspolicy.extensions import db
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from tests import databases
from tests.support.reportdata import report

PASSWORD = "soak test password"  # noqa: S105


def run_wrk(url: str, hosts: list[str], seconds: int, connections: int) -> dict:
    """wrk's figures of a run, errors included (they are part of what a soak measures)."""
    script_text = WRK_SCRIPT % {"hosts": ", ".join(f'"{host}"' for host in hosts),
                                "path": "/.well-known/mta-sts.txt", "done": WRK_DONE}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(script_text)
    try:
        output = subprocess.run([require("wrk", "wrk"), "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s",
                                 "-s", script.name, url], capture_output=True, text=True, check=True).stdout
    finally:
        Path(script.name).unlink()
    figures = {name: int(value) for name, value in re.findall(r"(\w+)=(\d+)", output.split("BENCH", 1)[1])}
    figures["rate"] = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    return figures


class Mixed:
    """Report senders, a dashboard reader and slow-body clients, in threads until `stop`."""

    def __init__(self, url: str, domains: list[str], slow_clients: int):
        self.url, self.domains, self.stop = url, domains, threading.Event()
        self.address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
        self.statuses: list[int] = []
        self.acknowledged: set[tuple[str, str]] = set()
        self.counts = {"new": 0, "resent": 0, "forged": 0, "dashboard": 0, "slow ended by the server": 0}
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._send_reports, args=(seed,), daemon=True) for seed in range(2)]
        self._threads.append(threading.Thread(target=self._view_dashboard, daemon=True))
        self._threads += [threading.Thread(target=self._send_slowly, daemon=True) for _ in range(slow_clients)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _record(self, status: int) -> None:
        with self._lock:
            self.statuses.append(status)

    def _send_reports(self, seed: int) -> None:
        chooser = random.Random(seed)
        sent: list[dict] = []
        while not self.stop.is_set():
            roll = chooser.random()
            if sent and roll < 0.2:
                kind, document = "resent", chooser.choice(sent)
            elif sent and roll < 0.3:  # an acknowledged report's key, with other figures
                kind, document = "forged", copy.deepcopy(chooser.choice(sent))
                document["policies"][0]["summary"]["total-failure-session-count"] = 999_999
            else:
                domain = chooser.choice(self.domains)
                kind, document = "new", report(**{"report-id": str(uuid.uuid4())})
                document["policies"][0]["policy"]["policy-domain"] = domain
                document["policies"][0]["policy"]["policy-string"] = [
                    "version: STSv1", "mode: enforce", f"mx: mx1.{domain}", f"mx: mx2.{domain}", "max_age: 604800"]
                document["policies"][0]["policy"]["mx-host"] = [f"mx1.{domain}"]
                document["policies"][0]["failure-details"][0]["receiving-mx-hostname"] = f"mx1.{domain}"
            status = self._post(json.dumps(document).encode())
            self._record(status)
            with self._lock:
                self.counts[kind] += 1
                if 200 <= status < 300:  # 202: a forged copy, kept beside the report it claims to be
                    self.acknowledged.add((document["organization-name"], document["report-id"]))
                    if kind == "new":
                        sent.append(document)

    def _post(self, body: bytes) -> int:
        request = urllib.request.Request(self.url + "/tlsrpt", data=body,  # noqa: S310 (loopback http)
                                         headers={"Content-Type": "application/tlsrpt+json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
                return answer.status
        except urllib.error.HTTPError as error:
            with error:
                return error.code
        except OSError:
            return 0  # no answer

    def _view_dashboard(self) -> None:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        login = opener.open(self.url + "/login", timeout=30).read().decode()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login).group(1)
        form = f"csrf_token={token}&email=soak%40provider.example&password={PASSWORD.replace(' ', '+')}".encode()
        opener.open(self.url + "/login", data=form, timeout=30).read()
        for page in itertools.cycle(["/"] + [f"/domains/{name}" for name in self.domains[:20]]):
            if self.stop.is_set():
                return
            try:
                with opener.open(self.url + page, timeout=30) as answer:
                    answer.read()
                    status = answer.status
            except urllib.error.HTTPError as error:
                status = error.code
            except OSError:
                status = 0
            self._record(status)
            with self._lock:
                self.counts["dashboard"] += 1

    def _send_slowly(self) -> None:
        head = (b"POST /tlsrpt HTTP/1.1\r\nHost: reports.example\r\nContent-Type: application/tlsrpt+json\r\n"
                b"Content-Length: 100000\r\n\r\n{")
        while not self.stop.is_set():
            try:
                with socket.create_connection(self.address, timeout=5) as sock:
                    sock.sendall(head)
                    sock.settimeout(2)
                    while not self.stop.is_set():
                        try:
                            if not sock.recv(100):
                                break
                            with self._lock:
                                self.counts["slow ended by the server"] += 1
                            break
                        except TimeoutError:
                            sock.sendall(b" ")
            except OSError:
                time.sleep(0.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--domains", type=int, default=200)
    parser.add_argument("--slow-clients", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    require("wrk", "wrk")

    url = databases.create_postgresql_database(f"stspolicy_soak_{uuid.uuid4().hex[:12]}")
    try:
        settings = {"DATABASE_URL": url, "SECRET_KEY": "soak", "SNAPSHOT_REFRESH_SECONDS": "1",
                    "TLSRPT_DKIM": "off", "TLSRPT_RATE_LIMIT": "1000000 per minute",
                    "TLSRPT_FAILURE_DETAIL_LIMIT": "100000000 per hour",
                    "GUNICORN_REQUEST_READ_SECONDS": "30"}
        app = create_app(settings)
        domains = [f"customer{n}.example" for n in range(args.domains)]
        with app.app_context():
            upgrade()
            for name in domains:
                add_domain(db.session, name, make_policy("enforce", [f"mx1.{name}", f"mx2.{name}"], 604800),
                           actor="soak")
            create_user(db.session, "soak@provider.example", PASSWORD, "admin", actor="soak")
            databases.release_connections()
        hosts = [f"mta-sts.{name}" for name in domains]

        with gunicorn("wsgi:app", settings, args.workers, loaded=APP_LOADED) as (base_url, _):
            run_wrk(base_url, hosts, 2, args.connections)  # warm up
            baseline = run_wrk(base_url, hosts, 15, args.connections)
            with Mixed(base_url, domains, args.slow_clients) as mixed:
                time.sleep(2)  # the slow clients hold their connections
                loaded = run_wrk(base_url, hosts, args.seconds, args.connections)

        with app.app_context():
            stored = {(row.organization_name, row.report_id) for row in db.session.execute(
                select(Report.organization_name, Report.report_id))}
            databases.release_connections()
    finally:
        databases.drop_postgresql_database(url)

    server_errors = sum(1 for status in mixed.statuses if status >= 500)
    no_answer = sum(1 for status in mixed.statuses if status == 0)
    lost = mixed.acknowledged - stored
    print(f"load: {loaded['requests']} policy fetches ({loaded['rate']:.0f}/s), "
          + ", ".join(f"{count} {kind}" for kind, count in mixed.counts.items())
          + f", {args.slow_clients} slow-body clients throughout")
    print(f"5xx: {server_errors} (+{no_answer} without an answer) of {len(mixed.statuses)} reports and pages; "
          f"policy fetches not 2xx: {loaded['status']}, timed out: {loaded['timeout']}, "
          f"socket errors: {loaded['connect'] + loaded['read'] + loaded['write']}")
    print(f"reports acknowledged {len(mixed.acknowledged)}, stored {len(stored)}, lost {len(lost)}")
    print(f"policy p99: {loaded['p99_us'] / 1000:.2f} ms under load and attack, {baseline['p99_us'] / 1000:.2f} ms "
          f"alone (ratio {loaded['p99_us'] / max(baseline['p99_us'], 1):.2f})   (target: under 50 ms)")


if __name__ == "__main__":
    main()
