"""Report review at scale: the pages over a year of reports for 1,000 domains on PostgreSQL.

    python -m bench.dashboard [--domains 1000] [--days 365] [--requests 40] [--workers 2] [--keep]
    python -m bench.dashboard --database URL    # measure again on a database that --keep kept

Fills a fresh database on TEST_POSTGRESQL_URL's server by COPY: `--domains` domains with two
policy versions each (the second adds mx3, half a year ago), for each day about 8 reports per
domain from Google-, Microsoft-, Mail.ru- and tlsrpt-reporter-shaped senders (Microsoft and
tlsrpt-reporter send `tlsa` blocks under the MX host names of the domains with DANE), about
1,000,000 failure details, weekly DNS checks with a certificate renewal and a TLSA change, and
each finding kind planted on its own domains. The daily rollups are then built by migration
0016's own backfill, as on an upgrade.

Then gunicorn serves the app and one signed-in admin asks, in turn, for: a domain's dashboard
over the year, the overview of all domains, a domain's reports filtered by result type and
organisation over the year (the table behind a failure row, read from the detail rows), one
report, and the API tokens page as the trivial baseline. Prints p50 and p95 of each.
Target: p95 under 300 ms for each.
"""

import argparse
import contextlib
import hashlib
import json
import random
import re
import statistics
import time
import urllib.request
import zlib
from datetime import UTC, date, datetime, timedelta
from datetime import time as day_time
from http.cookiejar import CookieJar

import psycopg
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import insert, text

from bench.common import APP_LOADED, ROOT, gunicorn
from bench.ingest import postgresql_database
from stspolicy.accounts.service import create_user
from stspolicy.app import create_app
from stspolicy.dns.models import DnsObservation, MxObservation
from stspolicy.extensions import db
from stspolicy.policies.models import Domain, PolicyVersion
from stspolicy.policies.rules import make_policy, render_policy

PASSWORD = "dashboard bench password"  # noqa: S105
TARGET_MS = 300
ROLLUPS_REVISION = "0016"  # review_rollups_by_hosted_domain: its backfill builds the rollups
CHUNK = 25  # domains generated and copied per transaction

# Each finding kind planted on the domains whose index leaves this remainder modulo 10.
PLANTED = {0: "stale-sts-policy", 1: "unknown-sts-policy", 2: "mx-not-in-policy", 3: "tlsa-mismatch",
           4: "dnssec-invalid", 5: "starttls-not-supported", 6: "certificate-problem", 7: "policy-fetch-failure"}
DANE_REMAINDERS = {3, 4, 8}  # these domains publish TLSA records: DANE senders report tlsa blocks for them
REPORTERS = [f"mail.operator-{n}.example" for n in range(16)]  # tlsrpt-reporter: organisations named after hosts
NOISE = ["validation-failure", "certificate-host-mismatch", "certificate-not-trusted", "starttls-not-supported",
         "sts-webpki-invalid"]


def domain_name(index: int) -> str:
    return f"d{index:04d}.example"


def versions_of(index: int, start: datetime, days: int) -> list[dict]:
    name = domain_name(index)
    first = make_policy("testing", [f"mx1.{name}", f"mx2.{name}"], 604800)
    second = make_policy("enforce", [f"mx1.{name}", f"mx2.{name}", f"mx3.{name}"], 604800)
    return [{"policy": first, "created_at": start - timedelta(days=30)},
            {"policy": second, "created_at": start + timedelta(days=days // 2, hours=index % 24)}]


def policy_lines(policy) -> list[str]:
    return render_policy(policy).rstrip("\r\n").split("\r\n")


class Generator:
    """The rows of a domain's year of reports, deterministic per domain."""

    def __init__(self, start: date, days: int):
        self.start, self.days = start, days
        self.report_id = self.block_id = self.detail_id = 0
        self.detail_count = 0

    def domain_rows(self, index: int, domain_id: int, version_ids: list[int], versions: list[dict]):
        rng = random.Random(index)
        name = domain_name(index)
        kind = PLANTED.get(index % 10)
        dane = index % 10 in DANE_REMAINDERS
        # Planted failures: 14 days, after the second version, ending at the latest today.
        window = rng.randrange(self.days // 2 + 1, max(self.days // 2 + 2, self.days - 13)) if kind else -1
        switch = versions[1]["created_at"].date()
        reports, blocks, details = [], [], []
        for offset in range(self.days):
            day = self.start + timedelta(days=offset)
            planted = kind if window <= offset < window + 14 else None
            current = 1 if day >= switch else 0
            senders = ["Google Inc.", "Microsoft Corporation"]
            if rng.random() < 0.6:
                senders.append("Mail.ru")
            senders += rng.sample(REPORTERS, 5)
            for organization in senders:
                report_blocks = self._blocks(rng, name, organization, dane, planted, current, versions)
                self.report_id += 1
                begin = datetime.combine(day, day_time(), UTC)
                end = begin + (timedelta(days=1) if organization == "Mail.ru" else timedelta(hours=23, minutes=59,
                                                                                               seconds=59))
                identifier = f"{begin:%Y-%m-%dT%H:%M:%SZ}_{name}_{self.report_id}"
                document = {"organization-name": organization, "date-range": {
                    "start-datetime": begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end-datetime": end.strftime("%Y-%m-%dT%H:%M:%SZ")},
                    "contact-info": "tlsrpt@sender.example", "report-id": identifier,
                    "policies": [block["json"] for block in report_blocks]}
                data = json.dumps(document).encode()
                compressor = zlib.compressobj(1, zlib.DEFLATED, 31)
                raw = compressor.compress(data) + compressor.flush()
                received = end + timedelta(hours=rng.randrange(1, 10), minutes=rng.randrange(60))
                reports.append((self.report_id, organization, identifier, "tlsrpt@sender.example", begin, end,
                                "mail" if organization != "Microsoft Corporation" else "https", None, received, raw,
                                hashlib.sha256(data).hexdigest(), "[]", None))
                for position, block in enumerate(report_blocks):
                    self.block_id += 1
                    version = version_ids[block["version"]] if block["version"] is not None else None
                    blocks.append((self.block_id, self.report_id, position, block["type"], block["domain"],
                                   json.dumps(block["strings"]), json.dumps(block["mx"]), block["successful"],
                                   block["failed"], domain_id, version,
                                   "matched" if version else ("matches-none-of-ours" if block["type"] == "sts"
                                                              else "not-compared")))
                    for detail in block["details"]:
                        self.detail_id += 1
                        details.append((self.detail_id, self.block_id, *detail))
        self.detail_count += len(details)
        return reports, blocks, details

    def _blocks(self, rng, name, organization, dane, planted, current, versions) -> list[dict]:
        mx_hosts = [f"mx1.{name}", f"mx2.{name}"]
        tlsa_sender = dane and organization not in ("Google Inc.", "Mail.ru")
        applied = current
        if planted == "stale-sts-policy" and organization == REPORTERS[3]:
            applied = 0  # still applies the superseded version
        strings = policy_lines(versions[applied]["policy"])
        version = applied
        if planted == "unknown-sts-policy" and organization == "Microsoft Corporation":
            strings = ["version: STSv1", "mode: enforce", "mx: mail.elsewhere.example", "max_age: 86400"]
            version = None
        result = []
        targets = [("tlsa", host) for host in mx_hosts] if tlsa_sender else [("sts", name)]
        for policy_type, policy_domain in targets:
            successful = rng.randrange(50, 2000) // len(targets)
            details = self._details(rng, name, organization, policy_type, planted)
            failed = sum(detail[1] for detail in details)
            if organization == "Mail.ru" and details:
                failed += 1  # Mail.ru's total can differ from the sum of its details
            result.append({
                "type": policy_type, "domain": policy_domain, "successful": successful, "failed": failed,
                "details": details, "version": version if policy_type == "sts" else None,
                "strings": strings if policy_type == "sts" else ["3 1 1 " + "ab" * 32],
                "mx": mx_hosts if policy_type == "sts" else [],
                "json": {"policy": {"policy-type": policy_type, "policy-domain": policy_domain,
                                    "policy-string": strings if policy_type == "sts" else ["3 1 1 " + "ab" * 32]},
                         "summary": {"total-successful-session-count": successful,
                                     "total-failure-session-count": failed},
                         "failure-details": [_detail_json(detail) for detail in details]},
            })
        return result

    def _details(self, rng, name, organization, policy_type, planted) -> list[tuple]:
        details = []
        if rng.random() < 0.2:  # the noise of every day: a sender's own trouble
            details.append(self._detail(rng, rng.choice(NOISE), f"mx{rng.randrange(1, 3)}.{name}"))
        big = organization in ("Google Inc.", "Microsoft Corporation") or organization == REPORTERS[1]
        if planted and big:
            result_type, mx = {
                "mx-not-in-policy": ("validation-failure", f"mx9.{name}"),
                "tlsa-mismatch": ("tlsa-invalid", f"mx1.{name}"),
                "dnssec-invalid": ("dnssec-invalid", f"mx1.{name}"),
                "starttls-not-supported": ("starttls-not-supported", f"mx2.{name}"),
                "certificate-problem": ("certificate-expired", f"mx2.{name}"),
            }.get(planted, (None, None))
            if result_type and (policy_type == "tlsa") == (planted in ("tlsa-mismatch", "dnssec-invalid")):
                details += [self._detail(rng, result_type, mx) for _ in range(rng.randrange(4, 9))]
        if planted == "policy-fetch-failure" and organization == "Mail.ru":
            details += [("sts-policy-fetch-error", rng.randrange(1, 20), None, None, None, None, None,
                         "bad https response code: 404") for _ in range(3)]
        return details

    @staticmethod
    def _detail(rng, result_type: str, mx: str) -> tuple:
        return (result_type, rng.randrange(1, 30), f"192.0.2.{rng.randrange(1, 255)}",
                f"198.51.100.{rng.randrange(1, 255)}", mx, None, None, None)


def _detail_json(detail: tuple) -> dict:
    result_type, count, sending, receiving, mx, helo, information, reason = detail
    found = {"result-type": result_type, "failed-session-count": count}
    for key, value in (("sending-mta-ip", sending), ("receiving-ip", receiving), ("receiving-mx-hostname", mx),
                       ("failure-reason-code", reason)):
        if value:
            found[key] = value
    return found


REPORT_COLUMNS = ("id, organization_name, report_id, contact_info, start_datetime, end_datetime, source, "
                  "source_detail, received_at, raw_gzip, sha256, notes, dkim_result")
BLOCK_COLUMNS = ("id, report_row_id, position, policy_type, policy_domain, policy_strings, mx_hosts, "
                 "successful_session_count, failed_session_count, domain_id, policy_version_id, policy_match")
DETAIL_COLUMNS = ("id, report_policy_id, result_type, failed_session_count, sending_mta_ip, receiving_ip, "
                  "receiving_mx_hostname, receiving_mx_helo, additional_information, failure_reason_code")


# What storage.rollup_counts adds per report, for all the copied reports at once (in shard 0: readers sum shards).
INTAKE_ROLLUPS = """
INSERT INTO report_daily_rollup (day, policy_domain, policy_type, result_type, mx_host, shard, session_count)
SELECT day, policy_domain, policy_type, result_type, mx_host, 0, sum(sessions) FROM (
    SELECT (r.start_datetime AT TIME ZONE 'UTC')::date AS day, coalesce(p.policy_domain, '') AS policy_domain,
           p.policy_type, outcome.result_type, '' AS mx_host, outcome.sessions
    FROM report r JOIN report_policy p ON p.report_row_id = r.id,
         LATERAL (VALUES ('success', p.successful_session_count), ('failure', p.failed_session_count))
             AS outcome (result_type, sessions)
    UNION ALL
    SELECT (r.start_datetime AT TIME ZONE 'UTC')::date, coalesce(p.policy_domain, ''), p.policy_type, d.result_type,
           coalesce(d.receiving_mx_hostname, ''), d.failed_session_count
    FROM report r JOIN report_policy p ON p.report_row_id = r.id JOIN failure_detail d ON d.report_policy_id = p.id
) AS counted
GROUP BY day, policy_domain, policy_type, result_type, mx_host
"""


def fill(url: str, domains: int, days: int) -> None:
    today = datetime.now(UTC).date()
    start = today - timedelta(days=days)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "DATABASE_TIMEOUT_SECONDS": "0"})
    with app.app_context():
        create_user(db.session, "admin@provider.example", PASSWORD, "admin", actor="bench")
        first_day = datetime.combine(start, day_time(), UTC)
        versions = {index: versions_of(index, first_day, days) for index in range(domains)}
        rows = []
        for index in range(domains):
            domain = Domain(name=domain_name(index), created_at=versions[index][0]["created_at"])
            domain.versions = [PolicyVersion(policy_id=f"{index}v{n}", mode=v["policy"].mode,
                                             mx_patterns=list(v["policy"].mx_patterns), max_age=v["policy"].max_age,
                                             policy_text=render_policy(v["policy"]), created_at=v["created_at"],
                                             created_by="bench") for n, v in enumerate(versions[index])]
            rows.append(domain)
        db.session.add_all(rows)
        db.session.commit()
        ids = {domain.name: (domain.id, [version.id for version in domain.versions]) for domain in rows}
        _dns_checks(start, days, ids)
        db.session.remove()
        db.engine.dispose()
    generator = Generator(start, days)
    began = time.perf_counter()
    with psycopg.connect(url) as connection:
        for first in range(0, domains, CHUNK):
            chunk = [generator.domain_rows(index, *ids[domain_name(index)], versions[index])
                     for index in range(first, min(first + CHUNK, domains))]
            with connection.cursor() as cursor:
                for table, columns, part in (("report", REPORT_COLUMNS, 0), ("report_policy", BLOCK_COLUMNS, 1),
                                             ("failure_detail", DETAIL_COLUMNS, 2)):
                    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                        for rows_of_domain in chunk:
                            for row in rows_of_domain[part]:
                                copy.write_row(row)
            connection.commit()
            done = min(first + CHUNK, domains)
            print(f"\r  copied {done}/{domains} domains: {generator.report_id:,} reports, "
                  f"{generator.detail_count:,} failure details, {time.perf_counter() - began:.0f} s", end="",
                  flush=True)
        print()
        for table in ("report", "report_policy", "failure_detail"):
            connection.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}")  # noqa: S608
        connection.commit()
    began = time.perf_counter()
    _backfill(url)
    print(f"  rollups built by migration {ROLLUPS_REVISION}'s backfill in {time.perf_counter() - began:.0f} s",
          flush=True)
    began = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(INTAKE_ROLLUPS)
    print(f"  the intake's own daily rollups (what alert rules read) in {time.perf_counter() - began:.0f} s",
          flush=True)
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
        connection.execute("CHECKPOINT")  # the fill's writes flushed now, not during the measurement
        sizes = connection.execute(
            "SELECT relname, n_live_tup FROM pg_stat_user_tables WHERE relname IN ('report', 'report_policy', "
            "'failure_detail', 'report_domain', 'report_daily_total', 'report_daily_failure') ORDER BY relname"
        ).fetchall()
    print("  rows: " + ", ".join(f"{name} {count:,}" for name, count in sizes), flush=True)


def one_report(url: str) -> tuple[str, int]:
    """A domain with a planted certificate problem, and its latest report with failure details."""
    with psycopg.connect(url) as connection:
        return domain_name(6), connection.execute(
            "SELECT r.id FROM report r JOIN report_policy p ON p.report_row_id = r.id JOIN failure_detail d "
            "ON d.report_policy_id = p.id WHERE p.policy_domain = %s ORDER BY r.id DESC LIMIT 1",
            (domain_name(6),)).fetchone()[0]


def _dns_checks(start: date, days: int, ids: dict) -> None:
    """A weekly `dns check` of every domain: a certificate renewed on mx2 mid-way, the TLSA record of
    mx1 changed on the DANE domains."""
    observations, hosts = [], []
    for name, (domain_id, _) in ids.items():
        index = int(name[1:5])
        for week in range(days // 7):
            observations.append({"domain_id": domain_id, "observed_at": datetime.combine(
                start + timedelta(days=7 * week + 3), day_time(9), UTC), "kind": "check", "status": "ok",
                "policy_id": f"{index}v1", "findings": [], "answers": []})
    rows = db.session.execute(insert(DnsObservation).returning(DnsObservation.id, DnsObservation.domain_id,
                                                                DnsObservation.observed_at), observations).all()
    names = {domain_id: name for name, (domain_id, _) in ids.items()}
    for observation_id, domain_id, observed_at in rows:
        name = names[domain_id]
        half = (observed_at.date() - start).days > days // 2
        for number in (1, 2):
            tlsa = ["3 1 1 " + ("cd" if half and number == 1 and int(name[1:5]) % 10 in DANE_REMAINDERS else "ab") * 32]
            hosts.append({"observation_id": observation_id, "host": f"mx{number}.{name}", "preference": 10 * number,
                          "address": f"198.51.100.{number}", "tlsa_name": f"_25._tcp.mx{number}.{name}",
                          "tlsa_state": "secure", "tlsa_records": tlsa, "tlsa_match": None, "starttls": True,
                          "tls_version": "TLSv1.3", "certificate_sha256": ("22" if half and number == 2 else "11") * 32,
                          "spki_sha256": "33" * 32, "not_after": observed_at + timedelta(days=60), "names": [],
                          "covers_host": True})
    db.session.execute(insert(MxObservation), hosts)
    db.session.commit()


def _backfill(url: str) -> None:
    """The rollups migration's backfill over the copied reports: the rollups as an upgrade builds them."""
    migration = ScriptDirectory(str(ROOT / "migrations")).get_revision(ROLLUPS_REVISION).module
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "DATABASE_TIMEOUT_SECONDS": "0"})
    with app.app_context(), db.engine.begin() as connection:
        for table in ("report_domain", "report_daily_total", "report_daily_failure", "report_result_type_seen"):
            connection.execute(text(f"DELETE FROM {table}"))  # noqa: S608 (our table names)
        with Operations.context(MigrationContext.configure(connection)):
            migration._backfill()
        db.engine.dispose()


def signed_in(base_url: str):
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
    login = opener.open(base_url + "/login", timeout=60).read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login).group(1)
    form = f"csrf_token={token}&email=admin%40provider.example&password={PASSWORD.replace(' ', '+')}".encode()
    opener.open(base_url + "/login", data=form, timeout=60).read()
    return opener


def timed(opener, url: str) -> float:
    began = time.perf_counter()
    with opener.open(url, timeout=120) as answer:
        answer.read()
        if answer.status != 200:
            raise SystemExit(f"{url}: HTTP {answer.status}")
    return (time.perf_counter() - began) * 1000


def measure(base_url: str, pages: dict[str, list[str]], requests: int) -> dict[str, list[float]]:
    """Each page `requests` times after two warm-up requests, the pages in turn so that they share the
    machine's ups and downs."""
    opener = signed_in(base_url)
    for urls in pages.values():
        for url in urls[:2]:
            timed(opener, base_url + url)
    figures: dict[str, list[float]] = {label: [] for label in pages}
    for n in range(requests):
        for label, urls in pages.items():
            figures[label].append(timed(opener, base_url + urls[n % len(urls)]))
    return figures


def percentile(values: list[float], share: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(share * 100) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="Keep the database filled (its URL is printed).")
    parser.add_argument("--database", help="Measure on a database filled and kept by an earlier run.")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        url = args.database or stack.enter_context(postgresql_database(keep=args.keep))
        if not args.database:
            print(f"filling PostgreSQL: {args.domains} domains, {args.days} days", flush=True)
            began = time.perf_counter()
            fill(url, args.domains, args.days)
            print(f"  filled in {time.perf_counter() - began:.0f} s", flush=True)
        if args.keep:
            print(f"  kept: measure again with --database {url}", flush=True)
        report_domain, report_id = one_report(url)
        today = datetime.now(UTC).date()
        year = f"since={today - timedelta(days=args.days - 1)}&until={today}"
        sample = [domain_name(index) for index in random.Random(1).sample(range(args.domains),
                                                                           min(20, args.domains))]
        pages = {
            "domain dashboard, a year": [f"/domains/{name}/review?{year}" for name in sample],
            f"overview, {args.domains} domains": ["/reports"],
            "reports filtered, a year": [f"/domains/{name}/reports?{year}&result_type=validation-failure"
                                         f"&org=Google+Inc." for name in sample],
            "one report": [f"/domains/{report_domain}/reports/{report_id}"],
            "trivial page (API tokens)": ["/tokens"],
        }
        settings = {"DATABASE_URL": url, "SECRET_KEY": "bench"}
        with gunicorn("wsgi:app", settings, args.workers, loaded=APP_LOADED) as (base_url, _):
            figures = measure(base_url, pages, args.requests)
        print(f"\n{args.requests} requests each, one client, gunicorn {args.workers} workers:")
        for label, values in figures.items():
            p95 = percentile(values, 0.95)
            verdict = "" if label.startswith("trivial") else f"   {'ok' if p95 < TARGET_MS else 'OVER'} " \
                                                             f"(target p95 < {TARGET_MS} ms)"
            print(f"  {label:<30} p50 {statistics.median(values):7.1f} ms   p95 {p95:7.1f} ms{verdict}")


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
