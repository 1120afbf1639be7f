"""Alert rules at scale: a run of `flask alerts run` over 1,000 domains and 30 days of reports on PostgreSQL.

    python -m bench.alerts [--domains 1000] [--days 30] [--rounds 3]
    python -m bench.alerts --dashboard [--domains 1000] [--days 365]   # over the dashboard bench's data
    python -m bench.alerts --database URL    # over a database `bench.dashboard --keep` filled

Fills a fresh database on TEST_POSTGRESQL_URL's server with generate_series: `--domains` domains,
each with its own MX and one of ten provider MX hosts; three organisations report on each every day
(about 3 x domains x days reports), a tenth of their blocks with a failure of the sender's own; the
domains of provider 0 fail certificate-expired for Google and Microsoft over the last three days, those
of provider 1 starttls-not-supported for Mail.ru over the last two, and one domain in a hundred sends
mail to an MX its policy does not list; a DNS check per domain and day over the last 16 days; the daily
rollups summed from the reports as the intake writes them. With --dashboard, `bench.dashboard.fill`
fills it instead: a year of about 8 reports per domain and day, with its findings planted over the year.

Then, best of `--rounds`, one after the other in the same run:
- the rules: every rule of every domain (gathering the facts, evaluating), in rules per second;
- the trivial baseline: one threshold rule per domain over the rollups of the last two days;
- a whole run (storing the findings, the rules, incidents and notices) once its incidents are open;
- the page query: the open findings of every domain (`open_findings`) against correlating the reports
  of the last 30 days again (`load_findings`), which pages would do without the stored findings.
"""

import argparse
import contextlib
import statistics
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from bench import dashboard
from bench.ingest import postgresql_database
from reports.alerts.facts import gather
from reports.alerts.rules import RULES, evaluate
from reports.alerts.service import run
from reports.alerts.settings import alert_settings
from reports.review.finding_queries import load_findings
from reports.review.finding_store import open_findings, refresh_findings
from stspolicy.app import create_app
from stspolicy.extensions import db
from stspolicy.policies.queries import list_domains

FILL = [
    # Domains, each with its own MX and a provider's.
    """INSERT INTO domain (name, created_at)
       SELECT format('d%s.example', lpad(n::text, 4, '0')), :start - interval '60 days'
       FROM generate_series(0, :domains - 1) AS n""",
    """INSERT INTO policy_version (domain_id, policy_id, mode, mx_patterns, max_age, policy_text, created_at,
                                  created_by)
       SELECT id, '2026010100000000', 'testing',
              json_build_array('mx1.' || name, format('mx.provider-%s.example', substr(name, 2, 4)::int % 10)),
              604800, 'version: STSv1', :start - interval '60 days', 'bench'
       FROM domain""",
    # Three organisations report on every domain every day: report_id is organisation|domain|day.
    """INSERT INTO report (organization_name, report_id, contact_info, start_datetime, end_datetime, source,
                          received_at, raw_gzip, sha256, notes, copy_number, standing)
       SELECT o.name, o.name || '|' || d.name || '|' || g.day, 'tlsrpt@sender.example',
              :start + g.day * interval '1 day', :start + g.day * interval '1 day' + interval '23:59:59', 'mail',
              :start + (g.day + 1) * interval '1 day', '\\x00'::bytea,
              md5(o.name || d.name || g.day) || md5(d.name || g.day || o.name), '[]', 1, 'counted'
       FROM domain d CROSS JOIN generate_series(0, :days - 1) AS g(day)
       CROSS JOIN (VALUES ('Google Inc.'), ('Microsoft Corporation'), ('Mail.ru')) AS o(name)""",
    """INSERT INTO report_policy (report_row_id, position, policy_type, policy_domain, policy_strings, mx_hosts,
                                 successful_session_count, failed_session_count, domain_id, policy_version_id,
                                 policy_match)
       SELECT r.id, 0, 'sts', d.name, '["version: STSv1", "mode: testing"]', pv.mx_patterns,
              200 + r.id % 800, 0, d.id, pv.id, 'matched'
       FROM report r JOIN domain d ON d.name = split_part(r.report_id, '|', 2)
       JOIN policy_version pv ON pv.domain_id = d.id""",
    # The senders' own trouble: a tenth of the blocks, on the domain's own MX.
    """INSERT INTO failure_detail (report_policy_id, result_type, failed_session_count, sending_mta_ip,
                                  receiving_ip, receiving_mx_hostname)
       SELECT p.id, 'validation-failure', 1 + p.id % 3, '192.0.2.1', '198.51.100.1', 'mx1.' || p.policy_domain
       FROM report_policy p WHERE p.id % 10 = 0""",
    # The causes: an expired certificate at provider 0, no STARTTLS at provider 1, an MX the policy lacks.
    """INSERT INTO failure_detail (report_policy_id, result_type, failed_session_count, sending_mta_ip,
                                  receiving_ip, receiving_mx_hostname)
       SELECT p.id, c.result_type, 5 + p.id % 20, '192.0.2.2', '198.51.100.2', c.mx
       FROM report_policy p JOIN report r ON r.id = p.report_row_id
       CROSS JOIN LATERAL (VALUES
           (substr(p.policy_domain, 2, 4)::int % 10 = 0 AND r.organization_name <> 'Mail.ru'
            AND r.start_datetime >= :now - interval '3 days', 'certificate-expired', 'mx.provider-0.example'),
           (substr(p.policy_domain, 2, 4)::int % 10 = 1 AND r.organization_name = 'Mail.ru'
            AND r.start_datetime >= :now - interval '2 days', 'starttls-not-supported', 'mx.provider-1.example'),
           (substr(p.policy_domain, 2, 4)::int % 100 = 3 AND r.organization_name = 'Google Inc.',
            'validation-failure', 'mx9.' || p.policy_domain)
       ) AS c(planted, result_type, mx)
       WHERE c.planted""",
    """UPDATE report_policy p SET failed_session_count = f.failed
       FROM (SELECT report_policy_id, sum(failed_session_count) AS failed FROM failure_detail
             GROUP BY report_policy_id) AS f
       WHERE f.report_policy_id = p.id""",
    # The rollups, as the intake adds them up (shard 0).
    """INSERT INTO report_daily_rollup (day, policy_domain, policy_type, result_type, mx_host, shard, session_count)
       SELECT r.start_datetime::date, p.policy_domain, p.policy_type, s.result_type, '', 0, sum(s.sessions)
       FROM report_policy p JOIN report r ON r.id = p.report_row_id
       CROSS JOIN LATERAL (VALUES ('success', p.successful_session_count),
                                  ('failure', p.failed_session_count)) AS s(result_type, sessions)
       GROUP BY 1, 2, 3, 4""",
    """INSERT INTO report_daily_rollup (day, policy_domain, policy_type, result_type, mx_host, shard, session_count)
       SELECT r.start_datetime::date, p.policy_domain, p.policy_type, f.result_type,
              coalesce(f.receiving_mx_hostname, ''), 0, sum(f.failed_session_count)
       FROM failure_detail f JOIN report_policy p ON p.id = f.report_policy_id JOIN report r ON r.id = p.report_row_id
       GROUP BY 1, 2, 3, 4, 5""",
    # A DNS check per domain and day over the last 16 days, seeing both MX hosts well.
    """INSERT INTO dns_observation (domain_id, observed_at, kind, status, policy_id, findings, answers)
       SELECT d.id, :now - g.ago * interval '1 day' - interval '1 hour', 'check', 'ok', '2026010100000000',
              json_build_array(json_build_object('level', 'ok', 'code', 'sts-id-current',
                                                 'subject', '_mta-sts.' || d.name, 'message', 'current')), '[]'
       FROM domain d CROSS JOIN generate_series(0, 15) AS g(ago)""",
    """INSERT INTO mx_observation (observation_id, host, preference, address, tlsa_name, tlsa_state, tlsa_records,
                                  starttls, tls_version, certificate_sha256, spki_sha256, not_after, names,
                                  covers_host)
       SELECT o.id, m.host, m.preference, '192.0.2.25', '_25._tcp.' || m.host, 'insecure', '[]', true, 'TLSv1.3',
              md5(m.host) || md5(m.host), md5(m.host || 'key') || md5(m.host || 'key'), :now + interval '60 days',
              json_build_array(m.host), true
       FROM dns_observation o JOIN domain d ON d.id = o.domain_id
       CROSS JOIN LATERAL (VALUES ('mx1.' || d.name, 10),
                                  (format('mx.provider-%s.example', substr(d.name, 2, 4)::int % 10), 20))
           AS m(host, preference)""",
    "ANALYZE",
]

BASELINE = text("""
    SELECT policy_domain, sum(session_count) FILTER (WHERE result_type = 'failure'),
           sum(session_count) FILTER (WHERE result_type IN ('success', 'failure'))
    FROM report_daily_rollup WHERE day >= :since AND result_type IN ('success', 'failure')
    GROUP BY policy_domain""")


def fill(session, domains: int, days: int, now: datetime) -> None:
    start = datetime.combine((now - timedelta(days=days - 1)).date(), datetime.min.time(), UTC)
    for statement in FILL:
        session.execute(text(statement), {"domains": domains, "days": days, "start": start, "now": now})
        session.commit()


def best(rounds: int, action) -> tuple[float, object]:
    """The shortest of `rounds` timings of `action()`, with its last result."""
    timings, result = [], None
    for _ in range(rounds):
        began = time.perf_counter()
        result = action()
        timings.append(time.perf_counter() - began)
    return min(timings), result


def baseline(session, now: datetime) -> int:
    """A trivial rule per domain: its share of failed sessions over two days above 5 %."""
    rows = session.execute(BASELINE, {"since": (now - timedelta(days=1)).date()}).all()
    return sum(1 for _, failed, total in rows if total and failed * 100 > 5 * total)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--domains", type=int, default=1000)
    parser.add_argument("--days", type=int, help="30 days of reports, 365 with --dashboard")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dashboard", action="store_true", help="Fill with the dashboard bench's data.")
    parser.add_argument("--database", help="Measure on a database bench.dashboard --keep filled.")
    args = parser.parse_args()
    days = args.days or (365 if args.dashboard else 30)
    now = datetime.now(UTC).replace(microsecond=0)
    with contextlib.ExitStack() as stack:
        url = args.database or stack.enter_context(postgresql_database())
        app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "DATABASE_TIMEOUT_SECONDS": "0"})
        stack.enter_context(app.app_context())
        session = db.session
        began = time.perf_counter()
        if args.dashboard and not args.database:
            dashboard.fill(url, args.domains, days)
        elif not args.database:
            fill(session, args.domains, days, now)
        counts = session.execute(text("SELECT (SELECT count(*) FROM domain), (SELECT count(*) FROM report), "
                                      "(SELECT count(*) FROM failure_detail), (SELECT count(*) FROM mx_observation)"
                                      )).one()
        print(f"filled in {time.perf_counter() - began:.0f} s: {counts[0]:,} domains, {counts[1]:,} reports, "
              f"{counts[2]:,} failure details, {counts[3]:,} MX observations", flush=True)
        measure(session, alert_settings(app.config), now, args.rounds)
        session.remove()
        db.engine.dispose()


def measure(session, settings, now: datetime, rounds: int) -> None:
    domains = list_domains(session)
    names = [domain.name for domain in domains]
    stored, found = best(1, lambda: refresh_findings(session, now))
    print(f"first refresh of the stored findings (last 3 days): {stored:.2f} s, {found}", flush=True)
    opened = run(session, now, settings, digest=False)
    print(f"first run: {opened.line()}", flush=True)

    rules = len(domains) * len(RULES)
    ours, signals = best(rounds, lambda: [s for facts in gather(session, domains, now)
                                          for s in evaluate(facts, now, settings.base_url)])
    trivial, flagged = best(rounds, lambda: baseline(session, now))
    print(f"rules: {rules / ours:10,.0f} rules/s ({len(RULES)} rules x {len(domains)} domains in {ours:.2f} s, "
          f"{len(signals)} signals)")
    by_rule = Counter(signal.rule for signal in signals)
    print("signals by rule: " + ", ".join(f"{rule} {count:,}" for rule, count in by_rule.most_common()))
    print(f"baseline: {len(domains) / trivial:7,.0f} rules/s (one threshold over the rollups per domain in "
          f"{trivial:.3f} s, {flagged} domains over it)")
    print(f"ratio baseline/ours per rule: {(len(domains) / trivial) / (rules / ours):.1f}")
    whole, outcome = best(rounds, lambda: run(session, now, settings, digest=False))
    print(f"whole run (findings stored, rules, incidents): {whole:.2f} s, {rules / whole:,.0f} rules/s; "
          f"{outcome.line()}", flush=True)

    page, open_now = best(rounds * 5, lambda: open_findings(session, names))
    live, correlated = best(1, lambda: load_findings(session, names, since=now - timedelta(days=30), until=now))
    print(f"open findings of {len(names)} domains: {page * 1000:.1f} ms ({len(open_now)} findings); "
          f"load_findings over 30 days: {live:.2f} s ({len(correlated)} findings); ratio {live / page:,.0f}")
    one = statistics.median(best(1, lambda name=name: open_findings(session, [name]))[0] for name in names[:50])
    print(f"open findings of one domain: median {one * 1000:.2f} ms")


if __name__ == "__main__":
    main()
