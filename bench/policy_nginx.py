"""Policy fetches per second through the production nginx config vs nginx serving one static file.

    python -m bench.policy_nginx [--domains 200] [--seconds 10] [--rounds 3] [--connections 16]

Hosts the domains in a fresh SQLite database (the service writes their policy files), then
runs one nginx with (a) the shipped nginx/stspolicy.conf on port 443: certificate by SNI
name, policy file chosen by Host, fetch log; and (b) a bare server on port 8443 serving the
same policy bytes from one static file with the same certificate. wrk sends HTTPS requests
with a random `Host: mta-sts.<domain>` to each in turn, rounds alternating so drift hits
both. Everything runs in a private network namespace (so 443 is free and the names resolve
through its hosts file): run as root. Target: production / static >= 0.9.
"""

import argparse
import contextlib
import os
import ssl
import statistics
import sys
import tempfile
from pathlib import Path

from flask_migrate import upgrade

from bench.common import require, summarize, wrk
from stspolicy.app import create_app
from stspolicy.base.settings import current_settings
from stspolicy.extensions import db
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from stspolicy.propagation import propagate
from tests.lab.netns import Netns, available
from tests.lab.pki import TestCA
from tests.support.nginx import NginxLayout, layout_folder, request, running_nginx, write_config

PATH = "/.well-known/mta-sts.txt"
STATIC = """
    server {{
        listen 127.0.0.1:8443 ssl;
        ssl_certificate     {pem};
        ssl_certificate_key {pem};
        ssl_protocols TLSv1.2 TLSv1.3;
        location = {path} {{
            alias {file};
            default_type text/plain;
        }}
    }}
"""


def host_domains(layout: NginxLayout, domains: list[str], folder: Path) -> None:
    app = create_app({"DATABASE_URL": f"sqlite:///{folder}/bench.db", "SECRET_KEY": "bench",
                      "POLICY_FILES_DIR": str(layout.policies)})
    with app.app_context():
        upgrade()
        for name in domains:
            version = add_domain(db.session, name, make_policy("enforce", [f"mx1.{name}", f"mx2.{name}"], 604800),
                                 actor="bench")
            propagate(db.session, current_settings(), name, version, wait=True)
        db.engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=200)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    require("wrk", "wrk")
    if reason := available():
        sys.exit(f"bench.policy_nginx: {reason}")

    domains = [f"customer{n}.example" for n in range(args.domains)]
    hosts = [f"mta-sts.{name}" for name in domains]
    with layout_folder() as folder, tempfile.TemporaryDirectory() as scratch, contextlib.ExitStack() as stack:
        layout = NginxLayout(folder, "127.0.0.1", 443, 80)
        first = hosts[0]
        pem = layout.certs / f"{first}.pem"
        static_file = folder / "static-policy.txt"
        write_config(layout, extra_http=STATIC.format(pem=pem, path=PATH, file=static_file))
        host_domains(layout, domains, Path(scratch))
        static_file.write_bytes((layout.policies / f"{domains[0]}.txt").read_bytes())
        ca = TestCA()
        ca.write_bundle(pem, *ca.issue(first))

        netns = Netns(name=f"stsbench-{os.getpid()}")
        stack.callback(netns.close)
        (netns.etc / "hosts").write_text(f"127.0.0.1\tlocalhost {first}\n")
        nginx = stack.enter_context(running_nginx(layout, netns))
        with netns.entered():  # both answer, with the policy of the Host asked for
            for port in (443, 8443):
                answer = request("127.0.0.1", port, first, PATH, sni=first, tls=_unverified())
                assert answer.status == 200 and answer.body == static_file.read_bytes(), (port, answer)
            assert b"customer7.example" in request("127.0.0.1", 443, hosts[7], PATH, sni=first,
                                                   tls=_unverified()).body

        targets = {"static file": f"https://{first}:8443", "production": f"https://{first}:443"}
        results: dict[str, list] = {label: [] for label in targets}
        cpu_per_request: dict[str, list[float]] = {label: [] for label in targets}
        workers = _children(nginx.pid)
        for round_number in range(args.rounds):
            for label, url in targets.items():
                prefix = tuple(netns.command())
                wrk(url, hosts, PATH, seconds=2, connections=args.connections, prefix=prefix)  # warm up
                cpu_before = _cpu_seconds(workers)
                result = wrk(url, hosts, PATH, seconds=args.seconds, connections=args.connections, prefix=prefix)
                cpu = _cpu_seconds(workers) - cpu_before
                cpu_per_request[label].append(cpu / result.requests * 1e6)
                print(f"round {round_number + 1}  {label:<12} {result}   nginx CPU "
                      f"{cpu_per_request[label][-1]:5.1f} us/request", flush=True)
                results[label].append(result)

    summarize(results, "production", "static file", 0.9)
    paired = [ours.requests_per_second / static.requests_per_second
              for ours, static in zip(results["production"], results["static file"], strict=True)]
    print(f"median of the {len(paired)} rounds' ratios = {statistics.median(paired):.2f}")
    # On a shared machine the CPU time nginx spends per request is steadier than the rate.
    ours, static = (statistics.median(cpu_per_request[label]) for label in ("production", "static file"))
    print(f"nginx CPU per request (median): production {ours:.1f} us, static file {static:.1f} us; "
          f"ratio static / production = {static / ours:.2f}   (target >= 0.9)")


def _children(pid: int) -> list[int]:
    """nginx's worker processes (the children of its master)."""
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of `pids` so far (fields 14 and 15 of /proc/<pid>/stat)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


if __name__ == "__main__":
    main()
