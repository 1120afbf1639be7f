"""The systemd units we ship are valid, and what they run exists in this checkout."""

import shutil
import subprocess
import sys

import pytest

from .servers import ROOT

UNITS = ["stspolicy.service", "stspolicy-maintenance.service", "stspolicy-maintenance.timer",
         "stspolicy-dns-check.service", "stspolicy-dns-check.timer", "stspolicy-mtail.service"]


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
    for command in ("db", "policy-files", "cert", "dns"):
        assert f"flask --app wsgi {command} " in text
        assert f"  {command} " in help_text
