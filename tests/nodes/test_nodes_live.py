"""Serving nodes with real processes: `flask node sync` woken by PostgreSQL, and the `_mta-sts` id held back by a
silent node (the lab's Knot). Two nodes behind nginx, end to end, are in tests/deploy/test_nodes.py."""

import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from stspolicy.app import create_app
from stspolicy.base.settings import current_settings
from stspolicy.dns.models import PENDING
from stspolicy.extensions import db, utcnow
from stspolicy.nodes.models import ServingNode
from stspolicy.nodes.service import record_sync, serving_revision
from stspolicy.policies.queries import get_domain
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain, update_policy
from stspolicy.propagation import propagate, publish_pending
from tests import databases
from tests.conftest import app_settings
from tests.dns.test_publishing import authoritative_txt, rfc2136
from tests.lab.dns import SECURE
from tests.lab.fixtures import host_domain
from tests.support.config import configure
from tests.support.servers import start_node_sync, stop_process


@pytest.fixture
def postgresql_url():
    """A database of our own on the shared PostgreSQL, whichever engine the suite runs on: LISTEN needs it."""
    url = databases.create_postgresql_database(f"stspolicy_test_{uuid.uuid4().hex[:12]}")
    databases.upgrade(url)
    yield url
    databases.drop_postgresql_database(url)


def wait_until(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def test_a_node_applies_a_commit_when_notified_long_before_its_next_heartbeat(postgresql_url, tmp_path):
    settings = app_settings(postgresql_url, POLICY_FILES_DIR=str(tmp_path / "policies"), NODE_NAME="node-a",
                            NODE_HEARTBEAT_SECONDS="120", NODE_SILENT_SECONDS="300")
    node = start_node_sync(settings, tmp_path / "node.log")
    app = create_app(settings)
    try:
        with app.app_context():
            # Only the database changes (no propagate): the node alone writes the file.
            add_domain(db.session, "example.com", make_policy("testing", ["mx.example.com"], 86400), actor="test")
            revision = serving_revision(db.session)
            db.session.commit()
            wait_until((tmp_path / "policies" / "example.com.txt").exists, 60,
                       "the node did not write the file: it was not notified (its next heartbeat is in 120 s)")
            wait_until(lambda: db.session.scalar(select(ServingNode.applied_revision)) == revision
                       and db.session.commit() is None, 60, "the node did not record what it applied")
            assert db.session.scalar(select(ServingNode.name)) == "node-a"
    finally:
        stop_process(node)
        with app.app_context():
            databases.release_connections()
    assert (tmp_path / "policies" / "example.com.txt").read_bytes().startswith(b"version: STSv1\r\nmode: testing")


def test_a_silent_node_holds_the_id_back_until_it_serves_the_change(in_lab, lab_app, lab_netns, session, dns_lab,
                                                                   monkeypatch):
    name = f"held.{SECURE}"
    host_domain(session, dns_lab, name, SECURE, mx={f"mx-held.{SECURE}": "127.0.0.25"}, policy_id="1")
    assert rfc2136(in_lab, name).exit_code == 0
    first = authoritative_txt(dns_lab, f"_mta-sts.{name}")
    configure(monkeypatch, lab_app, NODE_HEARTBEAT_SECONDS=0.2, NODE_SILENT_SECONDS=0.5)
    settings = current_settings()
    version = update_policy(session, get_domain(session, name), mode="none", actor="test")
    revision, now = serving_revision(session), utcnow()
    record_sync(session, "node-a", revision, policies=1, certificates=0, started_at=now, now=now)
    record_sync(session, "node-b", revision - 1, policies=1, certificates=0, started_at=now,
                now=now - timedelta(minutes=5))

    with lab_netns.entered():
        job = propagate(session, settings, name, version, wait=True)  # a silent node: left to publish-pending
        assert job.status == PENDING and job.serving_revision == revision
        [held] = publish_pending(session, settings, utcnow())
    assert (held.state, held.detail) == ("waiting", f"policy id {version.policy_id} is not served by node(s) "
                                                    "node-b (silent) yet")
    assert authoritative_txt(dns_lab, f"_mta-sts.{name}") == first

    record_sync(session, "node-b", revision, policies=1, certificates=0, started_at=now, now=utcnow())
    with lab_netns.entered():
        [written] = publish_pending(session, settings, utcnow())
    assert written.state == "published", written.detail
    assert authoritative_txt(dns_lab, f"_mta-sts.{name}") == f'"v=STSv1; id={version.policy_id}"'
