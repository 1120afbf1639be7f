"""The systemd units and the command wrapper we ship work with this checkout."""

import getpass
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from tests import databases
from tests.conftest import app_settings
from tests.support.reportdata import SAMPLES
from tests.support.servers import ROOT

pytestmark = pytest.mark.slow  # systemd-analyze and the shipped wrapper, in processes of their own

UNITS = ["stspolicy.service", "stspolicy-maintenance.service", "stspolicy-maintenance.timer",
         "stspolicy-dns-check.service", "stspolicy-dns-check.timer", "stspolicy-mtail.service",
         "stspolicy-alerts.service", "stspolicy-alerts.timer",
         "stspolicy-dane-install.service", "stspolicy-dane-install.timer", "stspolicy-node.service"]


def test_systemd_units_verify_against_this_checkout(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("needs systemd-analyze (Debian package systemd)")
    for unit in UNITS:
        text = (ROOT / "deploy" / "systemd" / unit).read_text()
        (tmp_path / unit).write_text(text.replace("/opt/stspolicy", str(ROOT)))
    result = subprocess.run([analyze, "verify", "--man=no", *(str(tmp_path / unit) for unit in UNITS)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout + result.stderr == ""


def test_units_run_commands_the_cli_has():
    text = "\n".join((ROOT / "deploy" / "systemd" / unit).read_text() for unit in UNITS)
    help_text = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "--help"], cwd=ROOT,
                               capture_output=True, text=True, timeout=60).stdout
    for command in ("db", "policy-files", "cert", "dns", "alerts", "node"):
        assert f"flask --app wsgi {command} " in text
        assert f"  {command} " in help_text


def test_the_wrapper_pipes_report_mail_in_from_any_directory_as_the_service_user(new_database, tmp_path):
    """What a Postfix pipe transport runs: `stspolicy report ingest-mail`, as the service user, from /."""
    url = new_database()
    databases.upgrade(url)
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{key}={shlex.quote(value)}\n" for key, value in
                                app_settings(url, TLSRPT_ACCEPT_UNHOSTED="true").items()))
    wrapper = {"PATH": os.environ["PATH"], "STSPOLICY_USER": getpass.getuser(), "STSPOLICY_HOME": str(ROOT),
               "STSPOLICY_ENV_FILE": str(env_file)}

    def pipe(message: bytes) -> subprocess.CompletedProcess:
        return subprocess.run([ROOT / "deploy" / "stspolicy", "report", "ingest-mail"], cwd="/", env=wrapper,
                              input=message, capture_output=True, timeout=60)

    mail = (SAMPLES / "tlsrpt-reporter-sys4.eml").read_bytes()
    stored, again, junk = pipe(mail), pipe(mail), pipe(b"Subject: hello\r\n\r\nno report here\r\n")
    assert (stored.returncode, again.returncode, junk.returncode) == (0, 0, 65), stored.stderr + junk.stderr
    assert b"stored" in stored.stdout + stored.stderr and b"duplicate" in again.stdout + again.stderr
    wrapper["STSPOLICY_ENV_FILE"] = str(tmp_path / "missing")
    unset = pipe(mail)
    assert unset.returncode == 75 and b"cannot read" in unset.stderr  # the MTA keeps the mail


def test_the_dane_hook_says_what_it_misses(tmp_path):
    """`stspolicy-dane stage` runs from certbot or acme.sh, and needs the MX host's settings."""
    (tmp_path / "env").write_text("")
    dane_env = tmp_path / "dane.env"
    hook = ROOT / "deploy" / "stspolicy-dane"
    env = {"PATH": os.environ["PATH"], "STSPOLICY_HOME": str(ROOT), "STSPOLICY_ENV_FILE": str(tmp_path / "env"),
           "DANE_ENV_FILE": str(dane_env)}

    def run(*args, **extra):
        return subprocess.run([hook, *args], env={**env, **extra}, capture_output=True, text=True, timeout=60)
    assert "cannot read" in run("stage").stderr
    dane_env.write_text("DANE_CERT_FILE=/etc/postfix/mx.pem\nDANE_KEY_FILE=/etc/postfix/mx.key\n")
    assert "set DANE_MX_HOST" in run("stage").stderr
    dane_env.write_text(dane_env.read_text() + "DANE_MX_HOST=mx1.example.com\n")
    unknown = run("stage")
    assert unknown.returncode == 2
    assert "from certbot (RENEWED_LINEAGE) or acme.sh (CERT_FULLCHAIN_PATH)" in unknown.stderr
    assert run("renew").returncode == 2
