"""Interop: parsedmarc reads the same counts as we store, on every real sample."""

import json
import os
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from reports.channels.mail import ingest_message
from reports.ingest import Settings, ingest_report
from reports.models import FailureDetail, Report
from tests.support.reportdata import SAMPLE_COUNTS, SAMPLES

ROOT = Path(__file__).resolve().parent.parent.parent
# parsedmarc's pins clash with ours, so it lives in a virtual environment of its own (`make test` builds it).
INTEROP_PYTHON = Path(os.environ.get("INTEROP_PYTHON", ROOT / ".venv-interop" / "bin" / "python"))


@pytest.fixture(scope="module")
def parsedmarc_reads():
    if not INTEROP_PYTHON.exists():
        pytest.skip(f"no parsedmarc environment at {INTEROP_PYTHON}: run `make test` (it builds .venv-interop)")
    paths = [str(SAMPLES / name) for name in sorted(SAMPLE_COUNTS)]
    result = subprocess.run([str(INTEROP_PYTHON), str(ROOT / "tests" / "interop" / "parsedmarc_counts.py"), *paths],
                            capture_output=True, text=True, timeout=120, check=True)
    return {Path(line["file"]).name: line for line in map(json.loads, result.stdout.splitlines())}


@pytest.mark.parametrize("name", sorted(SAMPLE_COUNTS))
def test_stored_counts_equal_parsedmarcs(parsedmarc_reads, session, name):
    theirs = parsedmarc_reads[name]
    raw = (SAMPLES / name).read_bytes()
    settings = Settings(accept_unhosted=True, dkim="off")
    if name.endswith(".eml"):
        assert ingest_message(session, raw, settings, source="file").ok
    else:
        ingest_report(session, raw, settings, source="file")
    stored = session.scalars(select(Report)).one()
    ours = []
    for block in stored.policies:
        details = session.scalars(select(FailureDetail).where(FailureDetail.report_policy_id == block.id)).all()
        ours.append([block.policy_type, block.policy_domain, block.successful_session_count,
                     block.failed_session_count, len(details), sum(d.failed_session_count for d in details)])
    assert theirs["report_type"] == "smtp_tls"
    assert (stored.organization_name, stored.report_id) == (theirs["organization_name"], theirs["report_id"])
    assert ours == theirs["policies"]
