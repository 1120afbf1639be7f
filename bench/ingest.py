"""TLS-RPT intake: parse speed against parsedmarc, HTTP ingest rate, and memory, in one run.

    python -m bench.ingest [--seconds 10] [--workers 4]

1. Parse only, in-process: reports/s for our parser and for parsedmarc (its own virtual
   environment, .venv-interop, made by `make test`) on the same typical 1-5 KB gzip reports.
   Target: ours / parsedmarc >= 3.
2. End to end over HTTP: wrk POSTs distinct 1-5 KB reports to gunicorn with PostgreSQL
   (a fresh database on TEST_POSTGRESQL_URL's server); the baseline is a bare Flask view
   that reads the body and answers 201, under the same gunicorn. Target: >= 500 reports/s.
3. Peak RSS of a process ingesting one report with 20,000 failure details (target < 150 MiB),
   and RSS growth while it refuses a 4 MiB gzip that expands to 4 GiB (target < 50 MiB).
"""

import argparse
import contextlib
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from .common import require

ROOT = Path(__file__).resolve().parent.parent
INTEROP_PYTHON = ROOT / ".venv-interop" / "bin" / "python"
POSTGRESQL_URL = os.environ.get("TEST_POSTGRESQL_URL", "postgresql://postgres@127.0.0.1:5432/test")
MiB = 1024 * 1024


def typical_report(number: int, details: int = 8) -> dict:
    """A report like the big senders' daily ones: one sts block, a handful of failure details."""
    return {
        "organization-name": "Bench Sender Inc.",
        "date-range": {"start-datetime": "2026-11-01T00:00:00Z", "end-datetime": "2026-11-01T23:59:59Z"},
        "contact-info": "smtp-tls-reporting@sender.example",
        "report-id": f"2026-11-01T00:00:00Z_bench-{number}",
        "policies": [{
            "policy": {
                "policy-type": "sts",
                "policy-string": ["version: STSv1", "mode: enforce", "mx: mx1.example.com", "mx: mx2.example.com",
                                  "max_age: 604800"],
                "policy-domain": "example.com",
                "mx-host": ["mx1.example.com", "mx2.example.com"],
            },
            "summary": {"total-successful-session-count": 5000 + number, "total-failure-session-count": details},
            "failure-details": [
                {
                    "result-type": "certificate-expired" if n % 2 else "validation-failure",
                    "sending-mta-ip": f"192.0.2.{n % 250 + 1}",
                    "receiving-mx-hostname": f"mx{n % 2 + 1}.example.com",
                    "receiving-ip": f"198.51.100.{n % 250 + 1}",
                    "failed-session-count": 1,
                    "failure-reason-code": "X509_V_ERR_CERT_HAS_EXPIRED",
                }
                for n in range(details)
            ],
        }],
    }


def parse_rate_ours(bodies: list[bytes], seconds: float) -> float:
    from reports.payload import Limits, decode_body
    from reports.schema import parse_report

    limits = Limits()
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for body in bodies:
            parse_report(decode_body(body, limits)[0], limits)
        done += len(bodies)
    return done / (time.perf_counter() - started)


PARSEDMARC_LOOP = """
import sys, time, pathlib, parsedmarc
bodies = [p.read_bytes() for p in sorted(pathlib.Path(sys.argv[1]).iterdir())]
seconds = float(sys.argv[2])
done, started = 0, time.perf_counter()
while time.perf_counter() - started < seconds:
    for body in bodies:
        parsedmarc.parse_report_file(body, offline=True)
    done += len(bodies)
print(done / (time.perf_counter() - started))
"""


def parse_rate_parsedmarc(bodies: list[bytes], seconds: float) -> float:
    if not INTEROP_PYTHON.exists():
        sys.exit(f"no parsedmarc environment at {INTEROP_PYTHON}: run `make test` first")
    with tempfile.TemporaryDirectory() as folder:
        for number, body in enumerate(bodies):
            (Path(folder) / f"{number:04d}.json.gz").write_bytes(body)
        output = subprocess.run([INTEROP_PYTHON, "-c", PARSEDMARC_LOOP, folder, str(seconds)],
                                capture_output=True, text=True, check=True).stdout
    return float(output.split()[-1])


WRK_POST = """
local template = [[%(template)s]]
local counter = 0
local prefix = ""
setup = function(thread) thread:set("prefix", tostring(math.random(1, 1e9))) end
request = function()
  counter = counter + 1
  local body = template:gsub("REPORT_ID", prefix .. "-" .. counter)
  return wrk.format("POST", "/tlsrpt", {["Content-Type"] = "application/tlsrpt+json"}, body)
end
done = function(summary, latency, requests)
  io.write(string.format("BENCH requests=%%d errors=%%d p99_us=%%d\\n", summary.requests,
    summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, latency:percentile(99)))
end
"""

BARE_POST_APP = """
from flask import Flask, request
app = Flask(__name__)

@app.post("/tlsrpt")
def receive():
    request.get_data()
    return {"status": "stored"}, 201
"""


@contextlib.contextmanager
def bare_gunicorn(app_spec: str, env: dict[str, str], workers: int, pythonpath: str):
    from tests.servers import free_port, wait_for_port

    port = free_port()
    settings = os.environ | env | {
        "BIND": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers), "GUNICORN_ACCESS_LOG": "",
        "PYTHONPATH": pythonpath,
    }
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", app_spec], cwd=ROOT,
                               env=settings, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port("127.0.0.1", port, process=process)
        time.sleep(5)  # every worker has imported Flask (ours are awaited by their log lines)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait()


def wrk_post(url: str, seconds: int, connections: int) -> tuple[float, float, int]:
    import re

    template = json.dumps(typical_report(0)).replace("2026-11-01T00:00:00Z_bench-0", "REPORT_ID")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_POST % {"template": template})
    try:
        output = subprocess.run(
            [require("wrk", "wrk"), "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url],
            capture_output=True, text=True, check=True).stdout
    finally:
        Path(script.name).unlink()
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    figures = dict(re.findall(r"(\w+)=(\d+)", output.split("BENCH", 1)[1]))
    return rate, int(figures["p99_us"]) / 1000, int(figures["errors"])


MEMORY_CHILD = """
import resource, sys
from stspolicy import create_app
from stspolicy.domains import add_domain
from stspolicy.extensions import db
from stspolicy.policy import make_policy

def rss_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

url, what = sys.argv[1], sys.argv[2]
app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TLSRPT_RATE_LIMIT": "1000000 per minute"})
client = app.test_client()
with app.app_context():
    add_domain(db.session, f"{what}.example", make_policy("enforce", ["mx1.example.com"], 604800), actor="bench")
    db.session.remove()
with open(sys.argv[3], "rb") as file:
    body = file.read()
expected = 201 if what == "details" else 413
client.post("/tlsrpt", data=b"", headers={"Content-Type": "application/tlsrpt+gzip"})  # warm the path
before = rss_mib()
response = client.post("/tlsrpt", data=body, headers={"Content-Type": "application/tlsrpt+gzip"})
assert response.status_code == expected, (response.status_code, response.get_data())
print(len(body), before, peak_mib())
"""


def memory_body(what: str) -> bytes:
    """Made here, not in the measured process, so that only receiving it counts there."""
    if what == "details":
        document = typical_report(1, details=20000)
        document["policies"][0]["policy"]["policy-domain"] = "details.example"
        return gzip.compress(json.dumps(document).encode())
    # 64 gzip members of 64 MiB of zeros each (RFC 1952 allows several): 4 GiB once expanded.
    return gzip.compress(bytes(64 * MiB), 9) * 64


def memory(url: str, what: str) -> tuple[int, float, float]:
    with tempfile.NamedTemporaryFile(suffix=".gz") as body:
        body.write(memory_body(what))
        body.flush()
        output = subprocess.run([sys.executable, "-c", MEMORY_CHILD, url, what, body.name], cwd=ROOT,
                                capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})
    if output.returncode:
        sys.exit(output.stderr[-2000:])
    size, before, peak = output.stdout.split()
    return int(size), float(before), float(peak)


@contextlib.contextmanager
def postgresql_database():
    from tests import databases

    url = databases.create_postgresql_database(f"stspolicy_bench_{uuid.uuid4().hex[:10]}")
    try:
        databases.upgrade(url)
        yield url
    finally:
        databases.drop_postgresql_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    require("wrk", "wrk")

    bodies = [gzip.compress(json.dumps(typical_report(n, details=2 + n % 20)).encode()) for n in range(50)]
    sizes = sorted(len(gzip.decompress(body)) for body in bodies)
    print(f"typical reports: 50, JSON {sizes[0]}..{sizes[-1]} bytes, gzip {min(map(len, bodies))}.."
          f"{max(map(len, bodies))} bytes")
    ours, theirs = [], []
    for _ in range(3):  # alternate, so that load from elsewhere hits both alike; best of three each
        ours.append(parse_rate_ours(bodies, args.seconds / 3))
        theirs.append(parse_rate_parsedmarc(bodies, args.seconds / 3))
    print(f"parse only: stspolicy {max(ours):8.0f} reports/s, parsedmarc {max(theirs):8.0f} reports/s, "
          f"ratio {max(ours) / max(theirs):.1f}   (target >= 3)", flush=True)

    with postgresql_database() as url:
        settings = {"DATABASE_URL": url, "SECRET_KEY": "bench", "TLSRPT_RATE_LIMIT": "100000000 per minute"}
        from tests.test_live_workers import host_domains

        host_domains(settings, ("example.com", "enforce", ["mx1.example.com", "mx2.example.com"]))
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "bare_post.py").write_text(BARE_POST_APP)
            with bare_gunicorn("bare_post:app", settings, args.workers, folder) as base:
                wrk_post(base, 2, args.connections)
                bare = wrk_post(base, args.seconds, args.connections)
        from tests.servers import gunicorn

        with gunicorn(settings, workers=args.workers) as base:
            wrk_post(base, 2, args.connections)
            http = wrk_post(base, args.seconds, args.connections)
        print(f"HTTP ingest (gunicorn {args.workers} workers, PostgreSQL): stspolicy {http[0]:6.0f} reports/s "
              f"(p99 {http[1]:.1f} ms, errors {http[2]}); bare Flask POST {bare[0]:6.0f} req/s; "
              f"ratio {http[0] / bare[0]:.2f}   (target >= 500 reports/s)", flush=True)

        size, before, peak = memory(url, "details")
        print(f"20,000 failure details ({size / MiB:.1f} MiB gzip): peak RSS {peak:.0f} MiB "
              f"(before {before:.0f} MiB)   (target < 150 MiB)", flush=True)
        size, before, peak = memory(url, "bomb")
        print(f"gzip bomb ({size / MiB:.1f} MiB, 4 GiB expanded) refused: RSS growth {peak - before:.1f} MiB "
              f"(peak {peak:.0f} MiB)   (target < 50 MiB)")


if __name__ == "__main__":
    main()
