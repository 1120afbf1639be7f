"""`flask alerts run` for timers (exit 0 when it ran, 75 when the database or a channel is unavailable)
and `flask alerts list` for people."""

import json
from datetime import timedelta

from stspolicy.app import create_app
from stspolicy.extensions import utcnow
from tests.conftest import app_settings
from tests.lab.alert_receivers import SMTP_PASSWORD, SMTP_USER, smtp_server
from tests.reports.alerts.craft import checked, mx_seen
from tests.support.servers import free_port


def expiring_mx(session, domain):
    checked(session, domain, utcnow() - timedelta(minutes=5),
            [mx_seen("mx1.shared.example", not_after=utcnow() + timedelta(days=3))])


def relay(monkeypatch, app, port, cafile=""):
    for name, value in {"ALERT_SMTP_HOST": "localhost", "ALERT_SMTP_PORT": port, "ALERT_SMTP_USER": SMTP_USER,
                        "ALERT_SMTP_PASSWORD": SMTP_PASSWORD, "ALERT_SMTP_CAFILE": cafile,
                        "ALERT_MAIL_FROM": "alerts@provider.example", "ALERT_SMTP_TIMEOUT": 5}.items():
        monkeypatch.setitem(app.config, name, value)


def test_a_run_with_nothing_wrong_exits_0_and_says_what_it_did(cli, people):
    result = cli("alerts", "run", "--no-digest")
    assert result.exit_code == 0, result.output
    assert "0 signals" in result.output and "queued 0 notices" in result.output


def test_a_run_whose_relay_is_down_exits_75_and_the_next_one_sends(app, cli, session, people, monkeypatch, tmp_path,
                                                                  test_ca):
    expiring_mx(session, people.shared)
    relay(monkeypatch, app, free_port())
    down = cli("alerts", "run", "--no-digest")
    assert down.exit_code == 75 and "not sent now: SMTP localhost" in down.output
    with smtp_server(tmp_path, test_ca) as box:
        relay(monkeypatch, app, box.port, str(box.cafile))
        # The pause after a failure has not passed: the notices wait.
        assert cli("alerts", "run", "--no-digest").exit_code == 0 and box.messages == []
        from sqlalchemy import update

        from reports.alerts.models import Delivery

        session.execute(update(Delivery).values(next_attempt_at=utcnow()))
        session.commit()
        back = cli("alerts", "run", "--no-digest")
        assert back.exit_code == 0 and "sent 3" in back.output
        assert len(box.messages) == 3


def test_a_run_exits_75_while_the_database_is_unreachable():
    app = create_app(app_settings("postgresql://postgres@127.0.0.1:1/unreachable"))
    with app.app_context():
        result = app.test_cli_runner().invoke(args=["alerts", "run"])
    assert result.exit_code == 75 and "database unavailable" in result.output


def test_list_shows_open_incidents_as_text_and_json(cli, session, people):
    expiring_mx(session, people.shared)
    cli("alerts", "run", "--no-digest")
    text = cli("alerts", "list")
    assert "open" in text.output and "certificate-expiry" in text.output and "shared.example" in text.output
    [incident] = json.loads(cli("alerts", "list", "--json").output)
    assert incident["rule"] == "certificate-expiry" and incident["resolved_at"] is None
    assert [d["domain"] for d in incident["domains"]] == ["shared.example"]
    assert "mx1.shared.example" in incident["title"]


def test_list_says_so_when_there_is_no_incident(cli, people):
    assert cli("alerts", "list").output == "no incidents\n"
