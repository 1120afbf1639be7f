"""The well-known endpoint under real gunicorn workers: changes spread, outages do not stop it."""

import time
import urllib.error
import urllib.request

import pytest

from stspolicy.app import create_app
from stspolicy.base.settings import current_settings
from stspolicy.extensions import db
from stspolicy.policies.rules import make_policy, render_policy
from stspolicy.policies.service import add_domain
from stspolicy.propagation import propagate
from tests import databases
from tests.conftest import app_settings
from tests.support.servers import controlled_postgresql, flask, get, gunicorn, private_postgresql, private_redis

pytestmark = pytest.mark.slow  # gunicorn workers, a private PostgreSQL and redis

PROPAGATION_BOUND = 5.0  # seconds: the promise for a change made by another process


def served(base_url: str, host: str, count: int) -> set[str]:
    """The distinct answers to `count` fetches, each on a new connection (so spread over workers)."""
    answers = set()
    for _ in range(count):
        status, body = get(base_url + "/.well-known/mta-sts.txt", host)
        answers.add(body.decode() if status == 200 else f"HTTP {status}")
    return answers


def host_domains(settings: dict[str, str], *policies: tuple[str, str, list[str]]) -> None:
    app = create_app(settings)
    with app.app_context():
        for name, mode, mx in policies:
            version = add_domain(db.session, name, make_policy(mode, mx, 604800), actor="test")
            propagate(db.session, current_settings(), name, version, wait=True)
        databases.release_connections()


def wait_until_served(base_url: str, host: str, expected: str, since: float) -> None:
    while served(base_url, host, 30) != {expected}:
        assert time.monotonic() - since < PROPAGATION_BOUND, f"{host} not updated on every worker in time"
        time.sleep(0.2)


def test_a_cli_change_reaches_every_worker_within_five_seconds(new_database):
    url = new_database()
    databases.upgrade(url)
    settings = app_settings(url, SNAPSHOT_REFRESH_SECONDS="1")
    host_domains(settings, ("example.com", "testing", ["mx.example.com"]))
    with gunicorn(settings, workers=3) as base_url:
        assert served(base_url, "mta-sts.example.com", 30) == {
            render_policy(make_policy("testing", ["mx.example.com"], 604800))
        }

        result = flask(settings, "domain", "update", "example.com", "--mode", "enforce")
        changed_at = time.monotonic()
        assert result.returncode == 0, result.stderr
        enforce = render_policy(make_policy("enforce", ["mx.example.com"], 604800))
        wait_until_served(base_url, "mta-sts.example.com", enforce, changed_at)

        host_domains(settings, ("example.org", "enforce", ["mx.example.org"]))
        added_at = time.monotonic()
        wait_until_served(
            base_url, "mta-sts.example.org", render_policy(make_policy("enforce", ["mx.example.org"], 604800)), added_at
        )


def test_policies_are_still_served_while_postgresql_is_down():
    with private_postgresql() as (url, stop_postgresql):
        databases.upgrade(url)
        settings = app_settings(url, SNAPSHOT_REFRESH_SECONDS="0.5")
        host_domains(settings, ("example.com", "enforce", ["mx.example.com"]))
        expected = {render_policy(make_policy("enforce", ["mx.example.com"], 604800))}
        with gunicorn(settings, workers=2) as base_url:
            assert served(base_url, "mta-sts.example.com", 20) == expected
            stop_postgresql()
            time.sleep(1.5)  # several refreshes fail meanwhile
            assert served(base_url, "mta-sts.example.com", 20) == expected
            assert served(base_url, "mta-sts.unknown.example", 5) == {"HTTP 404"}


def test_workers_started_while_postgresql_is_down_serve_the_policy_files_until_it_is_back(tmp_path):
    with controlled_postgresql() as postgresql:
        databases.upgrade(postgresql.url)
        settings = app_settings(postgresql.url, SNAPSHOT_REFRESH_SECONDS="0.5", POLICY_FILES_DIR=str(tmp_path))
        host_domains(settings, ("example.com", "enforce", ["mx.example.com"]))
        expected = {render_policy(make_policy("enforce", ["mx.example.com"], 604800))}
        postgresql.stop()
        with gunicorn(settings, workers=2) as base_url:
            assert served(base_url, "mta-sts.example.com", 20) == expected
            assert served(base_url, "mta-sts.unknown.example", 5) == {"HTTP 404"}
            postgresql.start()
            result = flask(settings, "domain", "update", "example.com", "--mode", "testing")
            assert result.returncode == 0, result.stderr
            changed_at = time.monotonic()
            wait_until_served(base_url, "mta-sts.example.com",
                              render_policy(make_policy("testing", ["mx.example.com"], 604800)), changed_at)


def test_with_redis_as_rate_limit_storage_a_limit_holds_across_workers(new_database):
    """With the default memory:// storage each worker counts alone (README, limits of this shape)."""
    url = new_database()
    databases.upgrade(url)
    with private_redis() as redis_url:
        storage = f"{redis_url}?socket_connect_timeout=1&socket_timeout=1"  # as the deployment guide has it
        settings = app_settings(url, TLSRPT_RATE_LIMIT="4 per minute", RATELIMIT_STORAGE_URI=storage)
        with gunicorn(settings, workers=3) as base_url:
            statuses = [post(base_url + "/tlsrpt", b"") for _ in range(12)]  # a new connection each
    assert statuses == [400] * 4 + [429] * 8


def post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/tlsrpt+json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code
