"""The policy files nginx serves follow every change, from any process, byte for byte."""

import json
import os
import subprocess
import sys

import pytest

from stspolicy.base.settings import current_settings
from stspolicy.policies.files import sync_policy_files
from stspolicy.policies.queries import get_domain
from stspolicy.policies.rules import make_policy, render_policy
from stspolicy.policies.service import add_domain, remove_domain, update_policy
from stspolicy.propagation import propagate
from tests import databases
from tests.conftest import app_settings
from tests.support.config import configure
from tests.support.servers import ROOT, app_environment, flask


@pytest.fixture
def policy_dir(app, tmp_path, monkeypatch):
    root = tmp_path / "policies"
    configure(monkeypatch, app, POLICY_FILES_DIR=root)
    return root


def host(session, name, mode="enforce", mx=("mx.example.com",), max_age=604800):
    version = add_domain(session, name, make_policy(mode, list(mx), max_age), actor="test")
    propagate(session, current_settings(), version.domain.name, version, wait=True)
    return version


def change(session, name, **fields):
    version = update_policy(session, get_domain(session, name), actor="test", **fields)
    propagate(session, current_settings(), name, version, wait=True)


def remove(session, name, **options):
    removal = remove_domain(session, get_domain(session, name), actor="test", **options)
    propagate(session, current_settings(), name, removal.version, wait=True)


def test_adding_a_domain_writes_exactly_its_policy_bytes(session, policy_dir):
    version = host(session, "example.com")
    assert (policy_dir / "example.com.txt").read_bytes() == version.policy_text.encode()
    assert (policy_dir / "example.com.txt").read_bytes() == render_policy(
        make_policy("enforce", ["mx.example.com"], 604800)
    ).encode()
    assert oct((policy_dir / "example.com.txt").stat().st_mode & 0o777) == "0o644"


def test_an_update_replaces_the_file_and_leaves_no_temporary_file(session, policy_dir):
    host(session, "example.com")
    change(session, "example.com", mode="testing")
    assert b"mode: testing\r\n" in (policy_dir / "example.com.txt").read_bytes()
    assert sorted(path.name for path in policy_dir.iterdir()) == [".lock", "example.com.txt"]


def test_every_version_gets_a_later_modification_second_for_nginx_etags(session, policy_dir):
    host(session, "example.com", mx=("mx1.example.com",))
    path = policy_dir / "example.com.txt"
    seconds = [int(path.stat().st_mtime)]
    for mx in ("mx2.example.com", "mx3.example.com"):  # same length, written within the same second
        change(session, "example.com", mx_patterns=[mx])
        seconds.append(int(path.stat().st_mtime))
    assert seconds[0] < seconds[1] < seconds[2]


def test_removal_serves_mode_none_then_deletes_the_file(session, policy_dir):
    host(session, "example.com")
    host(session, "example.org")
    remove(session, "example.com")
    assert b"mode: none\r\n" in (policy_dir / "example.com.txt").read_bytes()
    remove(session, "example.com", force=True)
    assert not (policy_dir / "example.com.txt").exists()
    assert (policy_dir / "example.org.txt").exists()


def test_idn_domain_file_is_named_by_its_a_label(session, policy_dir):
    host(session, "bücher.example", mx=["mx.bücher.example"])
    assert b"mx: mx.xn--bcher-kva.example\r\n" in (policy_dir / "xn--bcher-kva.example.txt").read_bytes()


def test_full_sync_repairs_files_and_removes_only_unhosted_policy_files(app, session, policy_dir):
    host(session, "example.com")
    host(session, "example.org")
    (policy_dir / "example.com.txt").write_bytes(b"tampered")
    (policy_dir / "example.org.txt").unlink()
    (policy_dir / "gone.example.txt").write_bytes(b"version: STSv1\r\n")
    (policy_dir / "README").write_text("not ours to remove")
    result = sync_policy_files(policy_dir)
    assert (result.written, result.removed, result.unchanged) == (2, 1, 0)
    assert (policy_dir / "example.com.txt").read_bytes().startswith(b"version: STSv1\r\nmode: enforce\r\n")
    assert (policy_dir / "example.org.txt").exists()
    assert not (policy_dir / "gone.example.txt").exists()
    assert (policy_dir / "README").exists()
    assert sync_policy_files(policy_dir) == type(result)(written=0, removed=0, unchanged=2)


def test_unchanged_policy_files_are_not_rewritten(session, policy_dir):
    host(session, "example.com")
    path = policy_dir / "example.com.txt"
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    sync_policy_files(policy_dir)
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_cli_sync_reports_counts_and_refuses_without_a_directory(app, cli, session, policy_dir, monkeypatch):
    host(session, "example.com")
    (policy_dir / "example.com.txt").unlink()
    result = cli("policy-files", "sync")
    assert result.exit_code == 0
    assert result.output == f"{policy_dir}: 1 written, 0 removed, 0 unchanged\n"
    configure(monkeypatch, app, POLICY_FILES_DIR=None)
    result = cli("policy-files", "sync")
    assert result.exit_code == 1
    assert "POLICY_FILES_DIR is not set" in result.output


@pytest.mark.slow  # `flask` in processes of its own
def test_a_change_from_another_process_reaches_the_file(new_database, tmp_path):
    url = new_database()
    databases.upgrade(url)
    settings = app_settings(url, POLICY_FILES_DIR=str(tmp_path / "policies"))
    assert flask(settings, "domain", "add", "example.com", "--mx", "mx.example.com").returncode == 0
    assert flask(settings, "domain", "update", "example.com", "--mode", "enforce").returncode == 0
    assert b"mode: enforce\r\n" in (tmp_path / "policies" / "example.com.txt").read_bytes()


@pytest.mark.slow  # `flask` in processes of its own
def test_unwritable_directory_fails_the_command_but_keeps_the_change(new_database, tmp_path):
    url = new_database()
    databases.upgrade(url)
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings = app_settings(url, POLICY_FILES_DIR=str(blocker / "policies"))
    result = flask(settings, "domain", "add", "example.com", "--mx", "mx.example.com")
    assert result.returncode == 1
    assert "the change is saved but its policy file" in result.stderr
    assert "flask policy-files sync" in result.stderr
    assert flask(app_settings(url), "domain", "show", "example.com").returncode == 0


CHANGER = """
import sys
from sqlalchemy.exc import OperationalError
from stspolicy.app import create_app
from stspolicy.policies.queries import get_domain
from stspolicy.policies.service import update_policy
from stspolicy.propagation import propagate
from stspolicy.base.settings import current_settings
from stspolicy.extensions import db
app = create_app()
with app.app_context():
    for n in range(int(sys.argv[1])):
        while True:
            try:
                version = update_policy(db.session, get_domain(db.session, "example.com"),
                                        max_age=str(1000 + n * 2 + int(sys.argv[2])), actor="test")
                propagate(db.session, current_settings(), "example.com", version, wait=True)
                break
            except OperationalError:  # SQLite refuses a second writer at once ("database is locked")
                db.session.rollback()
"""


@pytest.mark.slow  # `flask` in processes of its own
def test_concurrent_writers_leave_the_latest_policy_in_the_file(new_database, tmp_path):
    url = new_database()
    databases.upgrade(url)
    settings = app_settings(url, POLICY_FILES_DIR=str(tmp_path / "policies"))
    assert flask(settings, "domain", "add", "example.com", "--mx", "mx.example.com").returncode == 0
    writers = [
        subprocess.Popen([sys.executable, "-c", CHANGER, "15", str(parity)], cwd=ROOT, env=app_environment(settings))
        for parity in (0, 1)
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    shown = flask(settings, "domain", "show", "example.com", "--json")
    assert shown.returncode == 0
    assert (tmp_path / "policies" / "example.com.txt").read_bytes() == json.loads(shown.stdout)["policy_text"].encode()
