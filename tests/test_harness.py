"""The rule that CI never skips: a skip fails the run under CI=true and only then."""

import os
import subprocess
import sys

import pytest

from tests.support.servers import ROOT

pytestmark = pytest.mark.slow  # pytest itself, in a process of its own


@pytest.mark.parametrize("ci, exit_code", [("true", 1), ("", 0)])
def test_a_skip_fails_the_run_only_under_ci(tmp_path, ci, exit_code):
    (tmp_path / "test_sample.py").write_text(
        "import pytest\n\n\ndef test_runs():\n    pass\n\n\n"
        "def test_needs_a_package():\n    pytest.skip('no such package')\n"
    )
    env = {**os.environ, "CI": ci, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.plugins.no_skips_in_ci", "-p", "no:cacheprovider",
         "-q", str(tmp_path / "test_sample.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == exit_code, result.stdout
    assert ("test(s) were skipped: failing the run" in result.stdout) is (ci == "true")
