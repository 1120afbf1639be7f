import pytest

from tests.lab.alert_receivers import smtp_server
from tests.reports.alerts import craft


@pytest.fixture
def alert_settings(app):
    """The alert settings of the test app, with links to https://admin.provider.example."""
    return craft.settings(app, base_url="https://admin.provider.example")


@pytest.fixture
def mailbox(tmp_path, test_ca):
    """A real SMTP server on loopback (STARTTLS and AUTH) and what it received."""
    with smtp_server(tmp_path, test_ca) as box:
        yield box
