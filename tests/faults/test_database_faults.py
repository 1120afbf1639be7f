"""Faults under load, against gunicorn and a PostgreSQL of our own: the server stopped, frozen
(SIGSTOP: it answers nothing, its connections stay open) and restarted, and a worker killed
with SIGKILL in the middle of a report.

Each asserts: every acknowledged report is stored exactly once, whatever was refused (503 or
no answer) is stored once its sender tries again, and every policy fetch was answered.
"""

import itertools
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
from sqlalchemy import create_engine, func, select, text

from reports.models import FailureDetail, Report, ReportPolicy
from tests import databases
from tests.conftest import app_settings
from tests.policies.test_live_workers import host_domains
from tests.support.reportdata import encode, gz, report
from tests.support.servers import controlled_postgresql, get, gunicorn

pytestmark = pytest.mark.slow  # starts real servers

DOMAINS = [f"d{n}.example" for n in range(20)]


def post_report(base_url: str, body: bytes, timeout: float = 15) -> int | None:
    """The HTTP status, or None when no answer came (the connection broke or timed out)."""
    kind = "application/tlsrpt+gzip" if body[:2] == b"\x1f\x8b" else "application/tlsrpt+json"
    request = urllib.request.Request(base_url + "/tlsrpt", data=body, headers={"Content-Type": kind})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        with error:
            return error.code
    except (urllib.error.URLError, OSError):
        return None


class Load:
    """Report uploads (unique report ids) and policy fetches from threads until stopped."""

    def __init__(self, base_url: str, senders: int = 3, fetchers: int = 2):
        self.base_url, self.stopping = base_url, threading.Event()
        self.answers: dict[str, list] = {}
        self.fetches: list = []
        self._ids = itertools.count()
        self._threads = [threading.Thread(target=self._send, daemon=True) for _ in range(senders)]
        self._threads += [threading.Thread(target=self._fetch, daemon=True) for _ in range(fetchers)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for thread in self._threads:
            thread.join(timeout=60)

    def _send(self):
        while not self.stopping.is_set():
            report_id = f"fault-{next(self._ids)}"
            status = post_report(self.base_url, encode(report(**{"report-id": report_id})), timeout=8)
            self.answers.setdefault(report_id, []).append(status)

    def _fetch(self):
        for domain in itertools.cycle(DOMAINS):
            if self.stopping.is_set():
                return
            try:
                status = get(self.base_url + "/.well-known/mta-sts.txt", f"mta-sts.{domain}", timeout=3)[0]
            except OSError as error:
                status = f"no answer: {error}"
            self.fetches.append(status)

    def retry_unacknowledged(self) -> None:
        """What a sender does: send again whatever got no 2xx, until it gets one."""
        for report_id, statuses in self.answers.items():
            while statuses[-1] not in (200, 201):
                statuses.append(post_report(self.base_url, encode(report(**{"report-id": report_id}))))


def stored_reports(url: str) -> list[str]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            return list(connection.scalars(select(Report.report_id)))
    finally:
        engine.dispose()


def assert_exactly_once(load: Load, url: str) -> None:
    unexpected = {status for statuses in load.answers.values() for status in statuses} - {201, 200, 503, None}
    assert not unexpected, unexpected
    load.retry_unacknowledged()
    stored = stored_reports(url)
    assert len(stored) == len(set(stored)), "a report was stored twice"
    assert set(stored) == set(load.answers), "acknowledged and stored differ"
    assert all(statuses.count(201) <= 1 for statuses in load.answers.values())


def test_fault_postgresql_stopped_frozen_and_restarted_under_load_loses_nothing():
    with controlled_postgresql() as postgresql:
        databases.upgrade(postgresql.url)
        settings = app_settings(postgresql.url, SNAPSHOT_REFRESH_SECONDS="1", DATABASE_TIMEOUT_SECONDS="2",
                                TLSRPT_ACCEPT_UNHOSTED="true")
        host_domains(settings, *((name, "enforce", [f"mx.{name}"]) for name in DOMAINS))
        with gunicorn(settings, workers=2) as base_url, Load(base_url) as load:
            time.sleep(2)
            postgresql.stop()
            time.sleep(3)
            postgresql.start()
            time.sleep(2)
            postgresql.freeze()
            time.sleep(10)  # longer than a sender waits for an answer
            postgresql.thaw()
            time.sleep(3)
        sent = len(load.answers)
        refused = sum(1 for statuses in load.answers.values() if statuses[0] != 201)
        assert sent > 20 and refused > 0, (sent, refused)  # the load ran, and the faults were felt
        assert all(None not in statuses for statuses in load.answers.values()), "a sender got no answer"
        assert set(load.fetches) == {200}, {status for status in load.fetches if status != 200}
        with gunicorn(settings, workers=1) as base_url:
            load.base_url = base_url
            assert_exactly_once(load, postgresql.url)


def test_fault_a_worker_killed_in_the_middle_of_a_report_stores_it_once_when_sent_again(tmp_path):
    with controlled_postgresql() as postgresql:
        databases.upgrade(postgresql.url)
        settings = app_settings(postgresql.url, TLSRPT_ACCEPT_UNHOSTED="true")
        details = [{"result-type": "certificate-expired", "sending-mta-ip": f"192.0.2.{n % 250 + 1}",
                    "receiving-mx-hostname": f"mx{n}.example.com", "failed-session-count": 1} for n in range(40_000)]
        big = report(**{"report-id": "killed-mid-report"})
        big["policies"][0]["failure-details"] = details
        big["policies"][0]["summary"]["total-failure-session-count"] = len(details)
        body = gz(big)
        pid_file = tmp_path / "gunicorn.pid"
        with gunicorn(settings, workers=1, extra_args=("--pid", str(pid_file))) as base_url:
            master = pid_file.read_text().strip()
            worker = int(subprocess.run(["pgrep", "-P", master], capture_output=True, text=True).stdout.split()[0])
            answer: list = []
            sender = threading.Thread(target=lambda: answer.append(post_report(base_url, body, timeout=60)))
            sender.start()
            _wait_for_active_query(postgresql.url)
            os.kill(worker, signal.SIGKILL)
            sender.join(timeout=60)
            assert answer == [None]  # never acknowledged
            _wait_for_policies(base_url)
            assert _counts(postgresql.url) == (0, 0, 0)  # nothing half-stored
            assert post_report(base_url, body, timeout=60) == 201
            assert post_report(base_url, body, timeout=60) == 200
            assert _counts(postgresql.url) == (1, 1, len(details))


def _wait_for_active_query(url: str) -> None:
    """Until the worker is storing the report: a statement on the reports' tables is running."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with engine.connect() as connection:
                active = connection.scalar(text(
                    "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query ILIKE '%failure_detail%'"))
            if active:
                return
            time.sleep(0.01)
        raise TimeoutError("the worker never began storing the report")
    finally:
        engine.dispose()


def _wait_for_policies(base_url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            get(base_url + "/.well-known/mta-sts.txt", "mta-sts.unknown.example", timeout=2)
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError("no worker came back")


def _counts(url: str) -> tuple[int, int, int]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as connection:
            return tuple(connection.scalar(select(func.count()).select_from(model))
                         for model in (Report, ReportPolicy, FailureDetail))
    finally:
        engine.dispose()
