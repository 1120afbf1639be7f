"""The import contracts in pyproject.toml (run by `make lint`) hold, and a change that breaks one fails them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint_imports(root: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([LINT_IMPORTS, "--no-cache", *args], cwd=root, env={"PYTHONPATH": str(root)},
                          capture_output=True, text=True, timeout=120)


def test_the_code_keeps_every_contract():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(("contract", "module", "line"), [
    ("layers", "stspolicy/policies/rules.py", "import stspolicy.dns.publish"),  # the core reaching up
    ("layers", "reports/models.py", "import reports.cli"),
    ("pure-core", "reports/parsing/body.py", "import socket"),
    ("pure-core", "stspolicy/dns/findings.py", "from stspolicy.dns import resolver"),  # dnspython, indirectly
    ("reports-in-one-place", "stspolicy/dns/check.py", "import reports.models"),
])
def test_an_import_against_a_contract_fails_it(tmp_path, contract, module, line):
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    for package in ("stspolicy", "reports"):
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "templates", "static"))
    with open(tmp_path / module, "a") as file:
        file.write(f"\n{line}\n")
    result = lint_imports(tmp_path, "--contract", contract)
    assert result.returncode == 1
    assert "BROKEN" in result.stdout and "1 broken" in result.stdout
