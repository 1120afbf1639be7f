"""Under CI=true a skipped test fails the run: in CI a skip means a missing package, not an option."""

import os

import pytest

_skipped: list[str] = []


def pytest_runtest_logreport(report):
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session, exitstatus):
    if os.environ.get("CI") == "true" and _skipped and not hasattr(session.config, "workerinput"):
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.write_line(f"CI=true and {len(_skipped)} test(s) were skipped: failing the run", red=True)
        for nodeid in _skipped:
            reporter.write_line(f"  skipped: {nodeid}", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
