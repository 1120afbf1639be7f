"""The browser tests' shared servers: one gunicorn with the seeded people, one chromium, per session."""

import pytest

from tests.support.browser import chromium, live_app


@pytest.fixture(scope="session")
def server(new_database):
    with live_app(new_database()) as (base_url, _settings):
        yield base_url


@pytest.fixture(scope="session")
def browser():
    with chromium() as browser:
        yield browser
