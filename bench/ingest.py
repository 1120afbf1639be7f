"""TLS-RPT intake: parse speed against parsedmarc, HTTP ingest rate, and memory, in one run.

    python -m bench.ingest [--seconds 10] [--workers 4] [--connections 16]

1. Parse only: reports per CPU second for our parser and for parsedmarc (its own virtual
   environment, .venv-interop, made by `make test`) on the same typical 1-5 KB gzip reports,
   each in a process of its own, in 20 alternating slices; best slice of each.
   Target: ours / parsedmarc >= 3.
2. End to end over HTTP: wrk POSTs pre-made distinct 1-5 KB reports (every other one gzip)
   to gunicorn with PostgreSQL (a fresh database on TEST_POSTGRESQL_URL's server); the
   baseline is a bare Flask view that reads the body and answers 201, under the same
   gunicorn settings. Target: >= 500 reports/s. Printed with the CPU each request cost the
   gunicorn workers, the PostgreSQL backends and wrk, and where the workers' share goes
   (measured in-process, one thread: parsing, a stored POST through the WSGI app, a refused one).
3. Peak RSS of a process ingesting one report with 20,000 failure details (target < 150 MiB),
   and RSS growth while it refuses a 4 MiB gzip that expands to 4 GiB (target < 50 MiB).
"""

import argparse
import contextlib
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    APP_LOADED,
    BARE_APP_LOADED,
    WRK_DONE,
    cpu_seconds,
    gunicorn,
    require,
    with_children,
    wrk_figures,
)

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


PARSE_LOOP = """
def rates(parse, bodies):
    # Reports per CPU second of this process, for each `seconds` read from stdin.
    import sys, time
    for line in sys.stdin:
        done, started = 0, time.process_time()
        while time.process_time() - started < float(line):
            for body in bodies:
                parse(body)
            done += len(bodies)
        print(done / (time.process_time() - started), flush=True)
"""
PARSE_OURS = PARSE_LOOP + """
import pathlib, sys
from reports.parsing.body import Limits, decode_body
from reports.parsing.schema import parse_report
limits = Limits()
rates(lambda body: parse_report(decode_body(body, limits)[0], limits),
      [p.read_bytes() for p in sorted(pathlib.Path(sys.argv[1]).iterdir())])
"""
PARSE_PARSEDMARC = PARSE_LOOP + """
import pathlib, sys, parsedmarc
rates(lambda body: parsedmarc.parse_report_file(body, offline=True),
      [p.read_bytes() for p in sorted(pathlib.Path(sys.argv[1]).iterdir())])
"""


def parse_rates(bodies: list[bytes], seconds: float, slices: int = 20) -> tuple[float, float]:
    """Best reports per CPU second of our parser and of parsedmarc, in short alternating slices.

    CPU seconds, not wall time, and slices of a fraction of a second: the other load on a
    shared machine comes and goes, and neither parser should be timed only while it is there.
    """
    if not INTEROP_PYTHON.exists():
        sys.exit(f"no parsedmarc environment at {INTEROP_PYTHON}: run `make test` first")
    with tempfile.TemporaryDirectory() as folder:
        for number, body in enumerate(bodies):
            (Path(folder) / f"{number:04d}.json.gz").write_bytes(body)
        parsers = [subprocess.Popen([python, "-c", code, folder], cwd=ROOT, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})
                   for python, code in ((sys.executable, PARSE_OURS), (INTEROP_PYTHON, PARSE_PARSEDMARC))]
        best = [0.0, 0.0]
        try:
            for _ in range(slices):
                for index, parser in enumerate(parsers):
                    parser.stdin.write(f"{seconds / slices}\n")
                    parser.stdin.flush()
                    best[index] = max(best[index], float(parser.stdout.readline()))
        finally:
            for parser in parsers:
                parser.stdin.close()
                parser.wait()
    return best[0], best[1]


WRK_POST = """
local bodies, next_body = {}, 0
local media_types = {g = "application/tlsrpt+gzip", j = "application/tlsrpt+json"}
local created = 0
setup = function(thread) thread:set("id", created); created = created + 1 end
init = function(args)
  -- args: the file of bodies (per body: g or j, its length, a newline, the body) and the number of threads
  local file = assert(io.open(args[1], "rb"))
  local data = file:read("*a")
  file:close()
  local position, number, threads = 1, 0, tonumber(args[2])
  while position <= #data do
    local newline = data:find("\\n", position, true)
    local length = tonumber(data:sub(position + 1, newline - 1))
    if number % threads == id then
      table.insert(bodies, {media_types[data:sub(position, position)], data:sub(newline + 1, newline + length)})
    end
    position, number = newline + length + 1, number + 1
  end
end
request = function()
  next_body = next_body % #bodies + 1
  local body = bodies[next_body]
  return wrk.format("POST", "/tlsrpt", {["Content-Type"] = body[1]}, body[2])
end
response = function(status, headers, body)
  if status > 299 then io.write(string.format("REFUSED %d %s\\n", status, body:sub(1, 300))) end
end
""" + WRK_DONE

BARE_POST_APP = f"""
import sys
from flask import Flask, request
app = Flask(__name__)

@app.post("/tlsrpt")
def receive():
    request.get_data()
    return {{"status": "stored"}}, 201

print({BARE_APP_LOADED!r}, file=sys.stderr, flush=True)
"""

WRK_THREADS = 2


def write_bodies(path: Path, first: int, count: int) -> None:
    """`count` distinct typical reports (2 to 21 failure details), every other one gzip."""
    with open(path, "wb") as file:
        for number in range(first, first + count):
            body = json.dumps(typical_report(number, details=2 + number % 20)).encode()
            kind = b"g" if number % 2 else b"j"
            if kind == b"g":
                body = gzip.compress(body)
            file.write(kind + str(len(body)).encode() + b"\n" + body)


@dataclass
class HttpRun:
    rate: float
    p99_ms: float
    requests: int
    app_ms: float  # CPU per request: the gunicorn master and workers
    database_ms: float  # the PostgreSQL backends serving the database
    wrk_ms: float
    cores: float  # CPU of all three per second of the run: how much of the machine they got
    busiest: float  # the busiest worker's share of the workers' CPU

    def __str__(self) -> str:
        return (f"{self.rate:6.0f} reports/s (p99 {self.p99_ms:.0f} ms); CPU per report: "
                f"workers {self.app_ms:.2f} ms, PostgreSQL {self.database_ms:.2f} ms, wrk {self.wrk_ms:.2f} ms; "
                f"{self.cores:.2f} cores busy, {self.busiest:.0%} of the workers' CPU in the busiest")


def wrk_post(url: str, bodies: Path, seconds: int, connections: int, master_pid: int,
             database_url: str | None = None) -> HttpRun:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_POST)
    backends = database_backends(database_url) if database_url else []
    app_before, database_before = cpu_seconds(with_children(master_pid)), cpu_seconds(backends)
    wrk_before, started = resource.getrusage(resource.RUSAGE_CHILDREN), time.monotonic()
    try:
        output = subprocess.run(
            [require("wrk", "wrk"), f"-t{WRK_THREADS}", f"-c{connections}", f"-d{seconds}s", "-s", script.name, url,
             "--", str(bodies), str(WRK_THREADS)],
            capture_output=True, text=True, check=True).stdout
    finally:
        Path(script.name).unlink()
    elapsed, wrk_after = time.monotonic() - started, resource.getrusage(resource.RUSAGE_CHILDREN)
    backends = database_backends(database_url) if database_url else []
    app_after = cpu_seconds(with_children(master_pid))  # workers started meanwhile count whole
    app_cpu = _spent(app_before, app_after)
    busiest = max((seconds - app_before.get(pid, 0.0) for pid, seconds in app_after.items() if pid != master_pid),
                  default=0.0) / max(app_cpu, 1e-9)  # a worker's; the master holds the recycled workers' CPU
    database_cpu = _spent(database_before, cpu_seconds(backends))
    wrk_cpu = wrk_after.ru_utime + wrk_after.ru_stime - wrk_before.ru_utime - wrk_before.ru_stime
    rate, requests, p99_ms = wrk_figures(output)
    per_request = 1000 / max(requests, 1)
    return HttpRun(rate, p99_ms, requests, app_cpu * per_request, database_cpu * per_request,
                   wrk_cpu * per_request, (app_cpu + database_cpu + wrk_cpu) / elapsed, busiest)


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent since `before`; a process started meanwhile counts whole."""
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())


def database_backends(url: str) -> list[int]:
    """The PostgreSQL server processes serving the database at `url` (this machine's server)."""
    import psycopg
    from sqlalchemy.engine import make_url

    name = make_url(url).database
    with psycopg.connect(make_url(url).set(database="postgres").render_as_string(hide_password=False),
                         autocommit=True) as connection:
        return [row[0] for row in connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", (name,))]


SPLIT_CHILD = """
import io, json, sys, time
sys.path.insert(0, sys.argv[2])
from bench.ingest import typical_report
from reports.parsing.body import decode_body
from reports.parsing.schema import parse_report
from stspolicy.app import create_app

app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": "bench", "TLSRPT_RATE_LIMIT": "100000000 per minute"})
limits = app.extensions["tlsrpt_settings"].limits
count = int(sys.argv[3])
bodies = iter([json.dumps(typical_report(number, details=2 + number % 20)).encode()
               for number in range(10_000_000, 10_000_000 + 5 * count)])

def cpu_ms(step):
    for _ in range(count // 10):
        step(next(bodies))
    started = time.process_time()
    for _ in range(count):
        step(next(bodies))
    return (time.process_time() - started) / count * 1000

def post(body):
    # What gunicorn hands the application, no more: a test client's own work is not the application's.
    answers = []
    app({"REQUEST_METHOD": "POST", "PATH_INFO": "/tlsrpt", "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000",
         "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http",
         "CONTENT_TYPE": "application/tlsrpt+json", "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body)},
        lambda status, headers: answers.append(status))
    return answers[0]

def stored(body):
    assert post(body).startswith("201 "), "not stored"

def refused(body):
    assert post(b"{}").startswith("400 "), "not refused"

print(cpu_ms(lambda body: parse_report(decode_body(body, limits)[0], limits)), cpu_ms(stored), cpu_ms(refused))
"""


def cpu_split(url: str, count: int = 500) -> tuple[float, ...]:
    """CPU ms per report in one process and thread: parse; a stored POST through the WSGI app; a refused one."""
    output = subprocess.run([sys.executable, "-c", SPLIT_CHILD, url, str(ROOT), str(count)], cwd=ROOT,
                            capture_output=True, text=True, env=os.environ | {"PYTHONPATH": str(ROOT)})
    if output.returncode:
        sys.exit(output.stderr[-2000:])
    return tuple(float(value) for value in output.stdout.split())


MEMORY_CHILD = """
import resource, sys
from stspolicy.app import create_app
from stspolicy.policies.service import add_domain
from stspolicy.extensions import db
from stspolicy.policies.rules import make_policy

def rss_mib():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024

def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

url, what = sys.argv[1], sys.argv[2]
app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "TLSRPT_RATE_LIMIT": "1000000 per minute",
                  "TLSRPT_FAILURE_DETAIL_LIMIT": "100000000 per hour"})
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
        document = typical_report(99_999_999, details=20000)
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
def postgresql_database(keep: bool = False):
    """A migrated database of its own on TEST_POSTGRESQL_URL's server, dropped afterwards unless `keep`."""
    from tests import databases

    url = databases.create_postgresql_database(f"stspolicy_bench_{uuid.uuid4().hex[:10]}")
    try:
        databases.upgrade(url)
        yield url
    finally:
        if not keep:
            databases.drop_postgresql_database(url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    require("wrk", "wrk")

    bodies = [gzip.compress(json.dumps(typical_report(n, details=2 + n % 20)).encode()) for n in range(50)]
    sizes = sorted(len(gzip.decompress(body)) for body in bodies)
    print(f"typical reports: 50, JSON {sizes[0]}..{sizes[-1]} bytes, gzip {min(map(len, bodies))}.."
          f"{max(map(len, bodies))} bytes")
    ours, theirs = parse_rates(bodies, args.seconds)
    print(f"parse only: stspolicy {ours:8.0f} reports per CPU second, parsedmarc {theirs:8.0f}, "
          f"ratio {ours / theirs:.1f}   (target >= 3)", flush=True)

    with postgresql_database() as url, tempfile.TemporaryDirectory() as folder:
        settings = {"DATABASE_URL": url, "SECRET_KEY": "bench", "TLSRPT_RATE_LIMIT": "100000000 per minute",
                    "TLSRPT_FAILURE_DETAIL_LIMIT": "100000000 per hour"}
        from tests.policies.test_live_workers import host_domains

        host_domains(settings, ("example.com", "enforce", ["mx1.example.com", "mx2.example.com"]))
        (Path(folder) / "bare_post.py").write_text(BARE_POST_APP)
        count = 1500 * args.seconds
        print(f"HTTP: {count} distinct reports per round, every other one gzip; gunicorn {args.workers} workers; "
              f"wrk {WRK_THREADS} threads, {args.connections} connections; best of {args.rounds} rounds, "
              f"alternating; load average before: {os.getloadavg()[0]:.1f}", flush=True)
        runs: dict[str, list[HttpRun]] = {"bare": [], "ours": []}
        for round_number in range(args.rounds):
            warm, measured = Path(folder) / "warm", Path(folder) / "measured"
            first = round_number * (count + 3000)
            write_bodies(warm, first, 3000)
            write_bodies(measured, first + 3000, count)
            for label, spec, pythonpath, database, loaded in (
                    ("bare", "bare_post:app", Path(folder), None, BARE_APP_LOADED),
                    ("ours", "wsgi:app", ROOT, url, APP_LOADED)):
                with gunicorn(spec, settings, args.workers, pythonpath, loaded) as (base, pid):
                    wrk_post(base, warm, 2, args.connections, pid, database)
                    runs[label].append(wrk_post(base, measured, args.seconds, args.connections, pid, database))
                print(f"  round {round_number + 1} {label}: {runs[label][-1]}", flush=True)
        bare = max(runs["bare"], key=lambda run: run.rate)
        http = max(runs["ours"], key=lambda run: run.rate)
        print(f"HTTP ingest, best round: stspolicy {http.rate:.0f} reports/s, bare Flask POST {bare.rate:.0f} req/s"
              f"   (target >= 500 reports/s)", flush=True)
        if http.requests > count:
            print(f"  ({http.requests - count} reports sent twice, answered as duplicates)")
        parse, stored, refused = cpu_split(url)
        print(f"  where a worker's CPU goes, in one thread: a stored POST {stored:.2f} ms through the WSGI app, "
              f"of which parsing {parse:.2f} ms (the rest: linking, SQLAlchemy, psycopg, the intake front; "
              f"a refused POST costs {refused:.2f} ms); gunicorn's share is the rest of the workers' figure",
              flush=True)

        size, before, peak = memory(url, "details")
        print(f"20,000 failure details ({size / MiB:.1f} MiB gzip): peak RSS {peak:.0f} MiB "
              f"(before {before:.0f} MiB)   (target < 150 MiB)", flush=True)
        size, before, peak = memory(url, "bomb")
        print(f"gzip bomb ({size / MiB:.1f} MiB, 4 GiB expanded) refused: RSS growth {peak - before:.1f} MiB "
              f"(peak {peak:.0f} MiB)   (target < 50 MiB)")


if __name__ == "__main__":
    main()
