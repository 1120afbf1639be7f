"""End to end with the real sender side, sys4 tlsrpt-reporter: its reports reach us by HTTPS and by mail.

tlsrpt-collectd receives session results the way Postfix's libtlsrpt sends them, and
tlsrpt-reportd builds the RFC 8460 report and delivers it to both rua destinations:
HTTPS POST (with curl, as its documentation configures it) to gunicorn serving TLS, and
mail through a sendmail script that pipes the message into `flask report ingest-mail`.
"""

import json
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from reports.models import Report
from tests import databases
from tests.conftest import app_settings
from tests.policies.test_live_workers import host_domains
from tests.support.servers import ROOT, app_environment, gunicorn

pytestmark = pytest.mark.slow  # gunicorn serving TLS and the sender's daemons

BIN = Path(sys.executable).parent
# The policy the test domain is hosted with.
STS = ["version: STSv1", "mode: enforce", "mx: mx1.example.test", "mx: mx2.example.test", "max_age: 604800"]


def datagrams(rua: str) -> list[dict]:
    """Session results in libtlsrpt's datagram format ("dpv" 1): 5 good and 2 failed STS sessions."""
    def sts(failed, details=()):
        return {"policy-type": 2, "policy-string": STS, "policy-domain": "example.test",
                "mx-host": ["mx1.example.test", "mx2.example.test"], "f": int(failed), "t": len(details),
                "failure-details": list(details)}

    mismatch = {"c": 202, "s": "192.0.2.1", "r": "198.51.100.26", "n": "mx2.example.test", "h": "mx2.example.test"}
    return ([{"dpv": "1", "d": "example.test", "pr": rua, "policies": [sts(False)]}] * 5
            + [{"dpv": "1", "d": "example.test", "pr": rua, "policies": [sts(True, [mismatch])]}] * 2)


def write_script(path: Path, text: str) -> Path:
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)
    return path


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise TimeoutError(f"{what} after {timeout}s")


def test_reports_from_tlsrpt_reporter_arrive_by_https_and_by_mail(tmp_path, test_ca):
    collectd, reportd = BIN / "tlsrpt-collectd", BIN / "tlsrpt-reportd"
    if not collectd.exists():
        pytest.skip("tlsrpt-reporter is not installed (requirements-dev.txt)")
    url = f"sqlite:///{tmp_path / 'stspolicy.db'}"
    databases.upgrade(url)
    settings = app_settings(url)
    host_domains(settings, ("example.test", "enforce", ["mx1.example.test", "mx2.example.test"]))
    cert, key = test_ca.write_server(tmp_path / "pki", "server", *test_ca.issue("localhost", "127.0.0.1"))
    ca_file = test_ca.write_root(tmp_path / "pki" / "ca.pem")
    work = Path(tempfile.mkdtemp(prefix="tlsrpt-"))  # unix socket paths must stay short
    http_log, mail_log = work / "http.log", work / "mail.log"
    post = write_script(work / "post.sh", (
        f"code=$(curl --silent --cacert {ca_file} --header 'Content-Type: application/tlsrpt+gzip' "
        f'--data-binary @- --output /dev/null --write-out "%{{http_code}}" "$1")\n'
        f'echo "$code" >> {http_log}\ncase "$code" in 20?) exit 0;; *) exit 1;; esac\n'))
    sendmail = write_script(work / "sendmail.sh", (
        f"cd {ROOT} && {shlex.quote(sys.executable)} -m flask --app wsgi report ingest-mail >> {mail_log} 2>&1\n"
        f'status=$?\necho "exit $status" >> {mail_log}\nexit $status\n'))
    processes = []
    try:
        with gunicorn(settings, workers=1, extra_args=("--certfile", str(cert), "--keyfile", str(key))) as base:
            rua = f"v=TLSRPTv1; rua={base.replace('http://', 'https://')}/tlsrpt,mailto:tlsrpt@example.test"
            config = work / "tlsrpt.cfg"
            config.write_text(REPORTER_CONFIG.format(work=work, bin=BIN, post=post, sendmail=sendmail))
            env = app_environment(settings)
            processes.append(subprocess.Popen([collectd, "--config_file", config], env=env, cwd=work,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_for(lambda: (work / "collectd.socket").exists(), 10, "collectd did not open its socket")
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sender:
                for datagram in datagrams(rua):
                    sender.sendto(json.dumps(datagram).encode(), str(work / "collectd.socket"))
            time.sleep(2)  # collectd commits after its 1 s socket timeout
            processes[0].send_signal(signal.SIGUSR2)  # the package's development hook: today becomes yesterday
            time.sleep(1)
            processes.append(subprocess.Popen([reportd, "--config_file", config], env=env, cwd=work,
                                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_for(lambda: http_log.exists() and mail_log.exists() and "exit" in mail_log.read_text(), 60,
                     "reportd did not deliver by both HTTPS and mail")
        http_codes = http_log.read_text().split()
        mail_lines = mail_log.read_text()
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)
    assert set(http_codes) <= {"200", "201"}, http_codes
    assert "exit 0" in mail_lines, mail_lines
    # Both deliveries carry the same report: one stored it, the other found it stored.
    assert ("201" in http_codes) != ("stored: MTA-STS Test Sender" in mail_lines), (http_codes, mail_lines)
    engine = create_engine(url)
    try:
        with Session(engine) as session:
            report = session.scalars(select(Report)).one()
            assert report.organization_name == "MTA-STS Test Sender"
            assert [(p.policy_type, p.policy_domain, p.successful_session_count, p.failed_session_count,
                     p.policy_match) for p in report.policies] == [("sts", "example.test", 5, 2, "matched")]
    finally:
        engine.dispose()


REPORTER_CONFIG = """
[tlsrpt_collectd]
storage = sqlite://{work}/collectd.sqlite
socketname = {work}/collectd.socket
logfilename = {work}/collectd.log
log_level = info
sockettimeout = 1
max_uncommited_datagrams = 1

[tlsrpt_fetcher]
storage = sqlite://{work}/collectd.sqlite
logfilename = {work}/fetcher.log
log_level = info

[tlsrpt_reportd]
organization_name = MTA-STS Test Sender
contact_info = postmaster@sender.test
sender_address = tlsrpt-noreply@sender.test
dbname = {work}/reportd.sqlite
logfilename = {work}/reportd.log
log_level = info
fetchers = {bin}/tlsrpt-fetcher --config_file {work}/tlsrpt.cfg
http_script = {post}
sendmail_script = {sendmail}
interval_main_loop = 1
spread_out_delivery = 1
min_wait_delivery = 0
max_wait_delivery = 1
max_retries_domainlist = 2
min_wait_domainlist = 0
max_wait_domainlist = 1
max_retries_domaindetails = 2
min_wait_domaindetails = 0
max_wait_domaindetails = 1
"""
