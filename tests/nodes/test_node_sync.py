"""A serving node's sync: the revision triggers raise, the files it writes, what it records, sealed keys."""

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from stspolicy.base.settings import current_settings
from stspolicy.certificates.acme import challenge_file
from stspolicy.certificates.errors import CertificateError
from stspolicy.certificates.models import AcmeAccount, AcmeChallenge, Certificate
from stspolicy.certificates.renewal import issued_certificate
from stspolicy.certificates.sealing import seal
from stspolicy.certificates.service import account_key_pem, certificate_states, reseal_keys
from stspolicy.extensions import utcnow
from stspolicy.node_sync import NodeFiles, sync_once
from stspolicy.nodes.models import ServingNode
from stspolicy.nodes.service import NodeError, node_statuses, record_sync, retire_node, serving_revision
from stspolicy.policies.queries import get_domain
from stspolicy.policies.rules import make_policy, render_policy
from stspolicy.policies.service import remove_domain, update_policy
from tests.conftest import TEST_SEALING_KEY
from tests.factories import host
from tests.lab.pki import TestCA, key_pem, pem
from tests.support.config import configure

OTHER_KEY = "Zp1sT0yoQAbZyQ5fHVNZWd6uDpuTi7mFjVAvzHBs8x0="


@pytest.fixture
def node(app, session, tmp_path, monkeypatch):
    """This test's node: its three folders, and its files as `flask node sync` keeps them."""
    configure(monkeypatch, app, POLICY_FILES_DIR=tmp_path / "policies", CERTS_DIR=tmp_path / "certs",
              ACME_WEBROOT=tmp_path / "acme", NODE_NAME="node-a", NODE_SILENT_SECONDS=60.0)
    return NodeFiles(current_settings())


def issue(session, host_name, ca=None, keys=(TEST_SEALING_KEY,)):
    """A certificate row as `flask cert issue` leaves it; the PEM that CERTS_DIR/<host>.pem must hold."""
    leaf, key = (ca or TestCA()).issue(host_name)
    chain = pem(leaf)
    row = session.scalar(select(Certificate).where(Certificate.host == host_name)) or Certificate(host=host_name)
    facts = issued_certificate(chain)
    row.serial, row.not_before, row.not_after, row.issued_at = facts.serial, facts.not_before, facts.not_after, utcnow()
    row.failures, row.fullchain_pem, row.key_sealed = 0, chain.decode(), seal(keys, key_pem(key))
    session.add(row)
    session.commit()
    return key_pem(key) + chain


def test_every_change_of_what_nodes_serve_raises_the_revision_and_an_attempt_does_not(session):
    start = serving_revision(session)
    domain = host(session, "example.com")
    after_add = serving_revision(session)
    assert after_add > start
    update_policy(session, domain, mode="enforce", enforce_confirmed=True, actor="test")
    after_update = serving_revision(session)
    assert after_update > after_add
    issue(session, "mta-sts.example.com")
    after_issue = serving_revision(session)
    assert after_issue > after_update
    row = session.scalar(select(Certificate))
    row.failures, row.last_error = 1, "a failed renewal keeps the certificate"
    session.commit()
    assert serving_revision(session) == after_issue
    session.add(AcmeChallenge(token="tok-1", validation="tok-1.thumbprint"))
    session.commit()
    assert serving_revision(session) > after_issue
    before_removal = serving_revision(session)
    remove_domain(session, domain, actor="test", force=True)
    assert serving_revision(session) > before_removal


def test_a_sync_writes_policies_keys_and_answers_and_records_the_revision(session, node, tmp_path):
    host(session, "example.com", mode="enforce")
    host(session, "example.org")
    served = issue(session, "mta-sts.example.com")
    session.add(AcmeChallenge(token="token_1-x", validation="token_1-x.thumbprint"))
    session.commit()
    settings = current_settings()
    lines = []
    assert sync_once(node, settings, utcnow(), full=True, report=lines.append)

    policies = tmp_path / "policies"
    assert (policies / "example.com.txt").read_bytes() == render_policy(
        make_policy("enforce", ["mx1.example.com", "*.mx.example.com"], 604800)).encode()
    assert sorted(path.name for path in policies.glob("*.txt")) == ["example.com.txt", "example.org.txt"]
    certificate = tmp_path / "certs" / "mta-sts.example.com.pem"
    assert certificate.read_bytes() == served and certificate.stat().st_mode & 0o777 == 0o640
    assert challenge_file(tmp_path / "acme", "token_1-x").read_text() == "token_1-x.thumbprint"
    [status] = node_statuses(session, settings.nodes, utcnow())
    assert (status.name, status.state, status.applied_revision) == ("node-a", "current", serving_revision(session))
    assert (status.policies, status.certificates, status.last_error) == (2, 1, None)
    assert lines == [f"node node-a: revision {status.applied_revision}, 4 file(s) changed, 2 policies, "
                     "1 certificates"]


def test_the_next_sync_applies_what_changed_and_removes_what_is_gone(session, node, tmp_path):
    host(session, "example.com")
    gone = host(session, "example.org")
    issue(session, "mta-sts.example.com")
    issue(session, "mta-sts.example.org")
    session.add(AcmeChallenge(token="old", validation="old.thumbprint"))
    session.commit()
    node.apply(session, full=True)

    update_policy(session, get_domain(session, "example.com"), mode="enforce", enforce_confirmed=True, actor="test")
    renewed = issue(session, "mta-sts.example.com")
    remove_domain(session, gone, actor="test", force=True)
    session.delete(session.scalar(select(Certificate).where(Certificate.host == "mta-sts.example.org")))
    session.delete(session.scalar(select(AcmeChallenge)))
    session.commit()
    applied = node.apply(session, full=False)

    assert (applied.changed, applied.policies, applied.certificates) == (5, 1, 1)
    assert b"mode: enforce" in (tmp_path / "policies" / "example.com.txt").read_bytes()
    assert not (tmp_path / "policies" / "example.org.txt").exists()
    assert (tmp_path / "certs" / "mta-sts.example.com.pem").read_bytes() == renewed
    assert not (tmp_path / "certs" / "mta-sts.example.org.pem").exists()
    assert list((tmp_path / "acme" / ".well-known" / "acme-challenge").iterdir()) == []
    assert node.apply(session, full=False).changed == 0


def test_only_a_full_reconcile_repairs_a_file_changed_behind_the_nodes_back(session, node, tmp_path):
    """Between reconciles a sync reads only the rows that changed: cheap with 100,000 domains."""
    host(session, "example.com")
    node.apply(session, full=True)
    policy = tmp_path / "policies" / "example.com.txt"
    body = policy.read_bytes()
    policy.write_bytes(b"version: STSv1\nmode: none\nmax_age: 1\n")
    (tmp_path / "policies" / "stray.example.txt").write_bytes(body)
    assert node.apply(session, full=False).changed == 0
    assert node.apply(session, full=True).changed == 2
    assert policy.read_bytes() == body and not (tmp_path / "policies" / "stray.example.txt").exists()


def test_a_certificate_not_yet_in_the_database_keeps_its_file(session, node, tmp_path):
    """Files issued before certificates were kept in the database stay served until `flask cert renew` moves them."""
    host(session, "example.com")
    session.add(Certificate(host="mta-sts.example.com", failures=0))
    session.commit()
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "mta-sts.example.com.pem").write_bytes(b"key and chain from the old layout")
    (tmp_path / "certs" / "mta-sts.unhosted.example.pem").write_bytes(b"no row any more")
    node.apply(session, full=True)
    assert (tmp_path / "certs" / "mta-sts.example.com.pem").read_bytes() == b"key and chain from the old layout"
    assert not (tmp_path / "certs" / "mta-sts.unhosted.example.pem").exists()


def test_a_key_the_node_cannot_unseal_is_recorded_and_nothing_is_claimed(session, node, tmp_path):
    host(session, "example.com")
    settings = current_settings()
    sync_once(node, settings, utcnow(), full=True, report=lambda line: None)
    applied = serving_revision(session)
    issue(session, "mta-sts.example.com", keys=(OTHER_KEY,))
    lines = []
    assert not sync_once(node, settings, utcnow(), full=False, report=lines.append)
    [status] = node_statuses(session, settings.nodes, utcnow())
    assert (status.state, status.applied_revision) == ("behind", applied)
    assert status.last_error.startswith("no key in KEY_ENCRYPTION_KEYS unseals a private key")
    assert lines == [f"node node-a: files not brought up to date: {status.last_error}"]
    assert not (tmp_path / "certs" / "mta-sts.example.com.pem").exists()


def test_keys_are_stored_sealed_and_a_new_first_key_reseals_them(app, session, monkeypatch):
    configure(monkeypatch, app, ACME_DIRECTORY_URL="https://ca.example/dir")
    settings = current_settings()
    account = account_key_pem(session, settings)
    assert account_key_pem(session, settings) == account  # made once, then reused
    served = issue(session, "mta-sts.example.com")
    row = session.scalar(select(Certificate))
    assert b"PRIVATE KEY" in served and "PRIVATE KEY" not in row.key_sealed
    assert "PRIVATE" not in session.scalar(select(AcmeAccount.key_sealed))

    configure(monkeypatch, app, KEY_ENCRYPTION_KEYS=[OTHER_KEY, TEST_SEALING_KEY])
    assert reseal_keys(session, current_settings()) == 2
    configure(monkeypatch, app, KEY_ENCRYPTION_KEYS=[OTHER_KEY])
    assert account_key_pem(session, current_settings()) == account
    configure(monkeypatch, app, KEY_ENCRYPTION_KEYS=[TEST_SEALING_KEY])
    with pytest.raises(CertificateError, match="no key in KEY_ENCRYPTION_KEYS unseals"):
        account_key_pem(session, current_settings())


def test_the_state_of_a_certificate_comes_from_the_database(app, session, node):
    host(session, "example.com")
    states = certificate_states(session, current_settings(), utcnow())
    assert [(s.host, s.state) for s in states] == [("mta-sts.example.com", "missing")]
    issue(session, "mta-sts.example.com")
    states = certificate_states(session, current_settings(), utcnow())
    assert [(s.host, s.state) for s in states] == [("mta-sts.example.com", "valid")]


def test_a_node_not_seen_is_silent_and_only_a_silent_node_can_be_retired(session, node):
    settings = current_settings().nodes
    now = utcnow()
    host(session, "example.com")
    record_sync(session, "node-a", serving_revision(session), policies=1, certificates=0, started_at=now, now=now)
    record_sync(session, "node-b", 0, policies=0, certificates=0, started_at=now, now=now - timedelta(seconds=61))
    record_sync(session, "node-c", 0, policies=0, certificates=0, started_at=now, now=now)
    assert [(s.name, s.state) for s in node_statuses(session, settings, now)] == [
        ("node-a", "current"), ("node-b", "silent"), ("node-c", "behind")]
    with pytest.raises(NodeError, match="node node-c was seen 0s ago: stop its `flask node sync` first"):
        retire_node(session, settings, "node-c", now)
    with pytest.raises(NodeError, match="no serving node 'node-x'"):
        retire_node(session, settings, "node-x", now)
    retire_node(session, settings, "node-b", now)
    assert session.scalars(select(ServingNode.name).order_by(ServingNode.name)).all() == ["node-a", "node-c"]


def test_the_commands_sync_once_list_and_retire(cli, session, node, tmp_path):
    host(session, "example.com")
    synced = cli("node", "sync", "--once")
    assert synced.exit_code == 0, synced.output
    assert synced.output.startswith(f"node node-a: revision {serving_revision(session)}, 1 file(s) changed")
    assert (tmp_path / "policies" / "example.com.txt").exists()
    listed = cli("node", "list").output.splitlines()
    assert listed[0].startswith("node-a                         current  revision ")
    assert listed[-1] == "1 node(s)"
    assert [node["state"] for node in json.loads(cli("node", "list", "--json").output)] == ["current"]
    refused = cli("node", "retire", "node-a")
    assert refused.exit_code == 1 and "stop its `flask node sync` first" in refused.output
    assert len(cli("cert", "new-key").output.strip()) == 44  # a Fernet key: urlsafe base64 of 32 bytes
