"""Reports refused by the intake reach an admin's alert: counted per day from the intake's Prometheus
files (each run adds what grew), set against the reports stored."""

import subprocess
import sys
from datetime import timedelta

from reports.alerts.models import RefusalDay
from reports.alerts.refusals import counter_totals, record_refusals, refusal_signals
from tests.reports.alerts.craft import NOW, block, day, report

# What a gunicorn worker does when it refuses reports: count them in the multiprocess files.
WORKER = """
import sys
from stspolicy.base.counters import record_report_refused
for _ in range(int(sys.argv[1])):
    record_report_refused("mail", sys.argv[2], 0.01)
"""


def refuse(folder, count: int, reason: str) -> None:
    folder.mkdir(exist_ok=True)
    subprocess.run([sys.executable, "-c", WORKER, str(count), reason], check=True, timeout=60,
                   env={"PROMETHEUS_MULTIPROC_DIR": str(folder), "PATH": "/usr/bin:/bin"})


def test_refusals_counted_by_workers_are_added_per_day_once(session, tmp_path):
    refuse(tmp_path, 3, "malformed")
    refuse(tmp_path, 2, "dkim")
    assert counter_totals(tmp_path) == {("mail", "malformed"): 3, ("mail", "dkim"): 2}
    record_refusals(session, counter_totals(tmp_path), NOW.date())
    record_refusals(session, counter_totals(tmp_path), NOW.date())  # nothing new since
    refuse(tmp_path, 1, "malformed")
    record_refusals(session, counter_totals(tmp_path), NOW.date())
    counts = {row.reason: row.refused_count for row in session.query(RefusalDay)}
    assert counts == {"malformed": 4, "dkim": 2}


def test_counters_that_restarted_from_zero_count_as_new(session, tmp_path):
    refuse(tmp_path / "before", 5, "malformed")
    record_refusals(session, counter_totals(tmp_path / "before"), NOW.date())
    refuse(tmp_path / "after", 2, "malformed")  # the service restarted: its files were cleared
    record_refusals(session, counter_totals(tmp_path / "after"), NOW.date() + timedelta(days=1))
    assert [row.refused_count for row in session.query(RefusalDay).order_by(RefusalDay.day)] == [5, 2]


def test_many_refusals_against_few_stored_reports_are_a_signal_and_few_are_not(session, app, people, alert_settings,
                                                                              tmp_path):
    for n in range(20):
        report(session, f"Sender {n}", day(1), [block("shared.example", 10)])
    refuse(tmp_path, 1, "malformed")
    refuse(tmp_path, 40, "unhosted")  # not the intake's fault
    record_refusals(session, counter_totals(tmp_path), NOW.date())
    assert refusal_signals(session, NOW, alert_settings) == []
    refuse(tmp_path, 4, "dkim")
    record_refusals(session, counter_totals(tmp_path), NOW.date())
    [signal] = refusal_signals(session, NOW, alert_settings)
    assert signal.rule == "reports-refused" and signal.parts == ()
    assert signal.lines[0] == "5 reports refused and 20 stored (20.0 % refused)"
