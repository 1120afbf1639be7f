import pytest

from tests.reports.alerts import craft


@pytest.fixture
def alert_settings(app):
    """The alert settings of the test app, with links to https://admin.provider.example."""
    return craft.settings(app, base_url="https://admin.provider.example")
