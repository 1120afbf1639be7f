"""From a committed policy change to the policy file on every serving node, vs PostgreSQL's own NOTIFY round trip.

    python -m bench.node_propagation [--domains 10000] [--nodes 2] [--edits 50]

A private PostgreSQL hosts `--domains` domains; `--nodes` processes of `flask node sync`
(as each node's service runs them) write policy files into folders of their own. Each edit
is a policy change committed in this process; its latency is the time until the new bytes
are in the file on every node (what nginx serves: it opens the file on each request),
polled every millisecond. The baseline, measured in the same run on the same server, is a
bare NOTIFY from one connection to a LISTEN on another: the floor of anything PostgreSQL
wakes. Also the time of one node's full reconcile of all domains, files absent and present.
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import psycopg
from flask_migrate import upgrade

from stspolicy.app import create_app
from stspolicy.base.settings import current_settings
from stspolicy.extensions import db
from stspolicy.node_sync import NodeFiles
from stspolicy.policies.queries import get_domain
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain, update_policy
from tests.conftest import app_settings
from tests.support.servers import controlled_postgresql, start_node_sync, stop_process


def notify_round_trips(url: str, count: int) -> list[float]:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as listener, psycopg.connect(conninfo, autocommit=True) as sender:
        listener.execute("LISTEN bench")
        times = []
        for _ in range(count):
            start = time.perf_counter()
            sender.execute("NOTIFY bench")
            next(listener.notifies(timeout=5))
            times.append(time.perf_counter() - start)
    return times


def host(app, domains: int) -> None:
    with app.app_context():
        upgrade()
        for n in range(domains):
            add_domain(db.session, f"d{n}.example.net", make_policy("testing", [f"mx.d{n}.example.net"], 86400),
                       actor="bench")
        db.session.remove()


def full_reconciles(app, folder: Path) -> tuple[float, float]:
    """Seconds for one node's full reconcile into an empty folder, then into the same folder again."""
    with app.app_context():
        files = NodeFiles(current_settings())
        start = time.perf_counter()
        files.apply(db.session, full=True)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        files.apply(db.session, full=True)
        warm = time.perf_counter() - start
        db.session.remove()
    return cold, warm


def propagations(app, folders: list[Path], edits: int) -> list[float]:
    """Seconds from each commit until every node's file holds the new policy."""
    times = []
    with app.app_context():
        for n in range(edits):
            name = f"d{n % 100}.example.net"
            version = update_policy(db.session, get_domain(db.session, name), max_age=86400 + n + 1, actor="bench")
            body = version.policy_text.encode("ascii")
            committed = time.perf_counter()
            pending = [folder / f"{name}.txt" for folder in folders]
            while pending:
                pending = [path for path in pending if path.read_bytes() != body]
                if time.perf_counter() - committed > 30:
                    raise SystemExit(f"not on every node after 30 s: {pending}")
                time.sleep(0.001)
            times.append(time.perf_counter() - committed)
        db.session.remove()
    return times


def quantiles(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]
    return (f"median {statistics.median(ordered) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   "
            f"max {ordered[-1] * 1000:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--domains", type=int, default=10000)
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--edits", type=int, default=50)
    options = parser.parse_args()
    print(f"load average at start: {' '.join(f'{load:.2f}' for load in os.getloadavg())}")
    with controlled_postgresql(over_unix_socket=True) as postgresql, tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        app = create_app(app_settings(postgresql.url))
        started = time.perf_counter()
        host(app, options.domains)
        print(f"{options.domains} domains hosted in {time.perf_counter() - started:.1f} s")
        scratch = create_app(app_settings(postgresql.url, POLICY_FILES_DIR=str(root / "scratch")))
        cold, warm = full_reconciles(scratch, root / "scratch")
        print(f"full reconcile of {options.domains} domains: {cold:.2f} s into an empty folder, "
              f"{warm:.2f} s with every file in place")
        folders = [root / f"node-{n}" for n in range(options.nodes)]
        nodes = [start_node_sync(app_settings(postgresql.url, NODE_NAME=f"node-{n}", POLICY_FILES_DIR=str(path)),
                                 root / f"node-{n}.log", timeout=600) for n, path in enumerate(folders)]
        try:
            baseline = notify_round_trips(postgresql.url, options.edits)
            ours = propagations(app, folders, options.edits)
        finally:
            for node in nodes:
                stop_process(node)
        with app.app_context():
            db.engine.dispose()
        with scratch.app_context():
            db.engine.dispose()
    print(f"NOTIFY -> LISTEN (baseline):         {quantiles(baseline)}")
    print(f"commit -> file on all {options.nodes} nodes:     {quantiles(ours)}")
    print(f"ratio of the medians: {statistics.median(ours) / statistics.median(baseline):.1f} x the NOTIFY round trip")


if __name__ == "__main__":
    main()
