"""`flask domain ...`: hosting domains from the command line."""

import functools
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from stspolicy.app import create_app
from stspolicy.dns.models import DnsSetting
from stspolicy.extensions import db
from stspolicy.policies.errors import DomainError
from stspolicy.policies.models import Domain, PolicyVersion
from stspolicy.policies.queries import get_domain
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain
from tests import databases
from tests.conftest import app_settings
from tests.support.config import configure
from tests.support.servers import ROOT, app_environment


def show(cli, name):
    result = cli("domain", "show", name, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_add_then_show_json_gives_policy_id_and_records(cli):
    result = cli("domain", "add", "example.com", "--mode", "testing", "--mx", "mail.example.com",
                 "--mx", "*.mx.example.net", "--max-age", "604800")
    assert result.exit_code == 0, result.output
    shown = show(cli, "example.com")
    assert shown["domain"] == "example.com"
    assert shown["mode"] == "testing"
    assert shown["mx"] == ["mail.example.com", "*.mx.example.net"]
    assert shown["max_age"] == 604800
    assert shown["policy_text"] == (
        "version: STSv1\r\nmode: testing\r\nmx: mail.example.com\r\nmx: *.mx.example.net\r\nmax_age: 604800\r\n"
    )
    assert shown["dns_records"] == [
        {"name": "_mta-sts.example.com", "type": "TXT", "value": f"v=STSv1; id={shown['policy_id']}", "ttl": 300},
        {"name": "_smtp._tls.example.com", "type": "TXT", "ttl": 86400,
         "value": "v=TLSRPTv1; rua=mailto:tlsrpt@reports.provider.example,https://reports.provider.example/tlsrpt"},
        {"name": "mta-sts.example.com", "type": "CNAME", "value": "sts.provider.example.", "ttl": 3600},
    ]
    assert shown["policy_id"] in result.output


def test_a_short_max_age_and_a_pattern_for_every_host_are_warned_about_on_stderr(cli):
    result = cli("domain", "add", "example.com", "--mx", "*.example.com", "--max-age", "3600")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "warning: max_age 3600 is below one day: RFC 8461 section 3.2 advises weeks or more, so that senders "
        "keep the policy across an attacker's blocking of its refresh",
        "warning: mx pattern *.example.com matches every host of example.com: any of them with a certificate "
        "becomes a valid MX (RFC 8461 section 10.4); list the MX hosts instead",
    ]
    assert "warning" not in result.stdout
    shown = cli("domain", "show", "example.com")
    assert shown.exit_code == 0 and len(shown.stderr.splitlines()) == 2
    updated = cli("domain", "update", "example.com", "--max-age", "604800")
    assert updated.exit_code == 0 and updated.stderr.startswith("warning: mx pattern *.example.com")
    assert show(cli, "example.com")["warnings"] == [{"field": "mx", "message": updated.stderr.strip()[9:]}]


def test_update_makes_a_new_version_with_a_greater_id(cli, session):
    cli("domain", "add", "example.com", "--mx", "mail.example.com")
    first = show(cli, "example.com")["policy_id"]
    result = cli("domain", "update", "example.com", "--mode", "enforce")
    assert result.exit_code == 0, result.output
    shown = show(cli, "example.com")
    assert shown["mode"] == "enforce" and shown["mx"] == ["mail.example.com"]
    assert shown["policy_id"] > first
    assert [v.policy_id for v in get_domain(session, "example.com").versions] == [first, shown["policy_id"]]


def test_update_that_changes_nothing_makes_no_version(cli, session):
    cli("domain", "add", "example.com", "--mx", "mail.example.com", "--mode", "testing")
    result = cli("domain", "update", "example.com", "--mode", "testing", "--mx", "MAIL.example.com")
    assert result.exit_code == 0
    assert "unchanged" in result.output
    assert session.query(PolicyVersion).count() == 1


def test_mx_option_replaces_the_list(cli):
    cli("domain", "add", "example.com", "--mx", "a.example.com", "--mx", "b.example.com")
    cli("domain", "update", "example.com", "--mx", "c.example.com")
    assert show(cli, "example.com")["mx"] == ["c.example.com"]


def test_idn_domain_is_stored_as_a_label_and_shown_as_both(cli):
    assert cli("domain", "add", "bücher.example", "--mx", "mx.bücher.example").exit_code == 0
    shown = show(cli, "BÜCHER.example.")
    assert (shown["domain"], shown["domain_unicode"]) == ("xn--bcher-kva.example", "bücher.example")
    assert shown["mx"] == ["mx.xn--bcher-kva.example"]
    assert "xn--bcher-kva.example (bücher.example)" in cli("domain", "show", "xn--bcher-kva.example").output


@pytest.mark.parametrize(
    "args, message",
    [
        (["domain", "add", "example.com", "--mx", "a.*.example.com"],
         "invalid mx pattern 'a.*.example.com': a wildcard may only be the whole leftmost label"),
        (["domain", "add", "example.com"], "mode testing needs at least one mx pattern"),
        (["domain", "add", "example.com", "--mx", "mx.example.com", "--max-age", "31557601"],
         "invalid max_age 31557601: must be between 0 and 31557600"),
        (["domain", "add", "example.com", "--mx", "mx.example.com", "--max-age", "week"],
         "invalid max_age 'week': not a non-negative integer"),
        (["domain", "add", "exa_mple.com", "--mx", "mx.example.com"], "invalid domain name 'exa_mple.com'"),
        (["domain", "add", "hosted.example", "--mx", "mx.example.com"], "domain hosted.example is already hosted"),
        (["domain", "show", "unknown.example"], "domain unknown.example is not hosted here"),
        (["domain", "update", "unknown.example", "--mode", "enforce"], "domain unknown.example is not hosted here"),
        (["domain", "update", "hosted.example", "--mx", "*"], "invalid mx pattern '*'"),
        (["domain", "remove", "unknown.example"], "domain unknown.example is not hosted here"),
    ],
)
def test_errors_are_one_line_and_exit_non_zero(cli, args, message):
    cli("domain", "add", "hosted.example", "--mx", "mx.example.com")
    result = cli(*args)
    assert result.exit_code != 0
    assert result.output.strip().splitlines() == [f"Error: {message}"] or (
        len(result.output.strip().splitlines()) == 1 and message in result.output
    )


def test_invalid_mode_is_refused_by_the_option_parser(cli):
    result = cli("domain", "add", "example.com", "--mx", "mx.example.com", "--mode", "enforcing")
    assert result.exit_code == 2
    assert "'enforcing' is not one of" in result.output


def test_list_and_history(cli):
    cli("domain", "add", "b.example", "--mx", "mx.b.example")
    cli("domain", "add", "a.example", "--mx", "mx.a.example", "--mode", "enforce")
    cli("domain", "update", "a.example", "--max-age", "86400")
    listing = cli("domain", "list").output.splitlines()
    assert listing[0].startswith("a.example") and "enforce" in listing[0]
    assert listing[1].startswith("b.example") and "testing" in listing[1]
    history = cli("domain", "history", "a.example").output.splitlines()
    assert len(history) == 2
    assert "max_age=86400" in history[0] and "max_age=604800" in history[1]  # newest first


def test_remove_serves_mode_none_first_then_deletes_after_the_old_max_age(cli, session):
    cli("domain", "add", "example.com", "--mx", "mx.example.com", "--mode", "enforce", "--max-age", "604800")
    old_id = show(cli, "example.com")["policy_id"]

    started = cli("domain", "remove", "example.com")
    assert started.exit_code == 0
    shown = show(cli, "example.com")
    assert shown["mode"] == "none" and shown["max_age"] == 86400 and shown["policy_id"] > old_id
    assert shown["policy_text"] == "version: STSv1\r\nmode: none\r\nmx: mx.example.com\r\nmax_age: 86400\r\n"

    pending = cli("domain", "remove", "example.com")
    assert "run remove again then, or use --force" in pending.output
    assert show(cli, "example.com")["policy_id"] == shown["policy_id"]

    domain = get_domain(session, "example.com")
    domain.removal_requested_at -= timedelta(seconds=604800)
    session.commit()
    assert cli("domain", "remove", "example.com").output.startswith("deleted example.com")
    assert cli("domain", "show", "example.com").exit_code != 0


def test_a_switch_to_enforce_goes_ahead_with_what_argues_against_it_as_warnings(cli, session):
    cli("domain", "add", "example.com", "--mx", "mail.example.com")
    first = show(cli, "example.com")["policy_id"]
    result = cli("domain", "update", "example.com", "--mode", "enforce")
    assert result.exit_code == 0
    assert "warning: against enforce: DNS: never checked" in result.output
    enforcing = show(cli, "example.com")
    assert enforcing["mode"] == "enforce" and enforcing["policy_id"] != first
    rolled_back = cli("domain", "rollback", "example.com", first)
    assert rolled_back.exit_code == 0 and "against enforce" not in rolled_back.output
    assert "against enforce" in cli("domain", "rollback", "example.com", enforcing["policy_id"]).output


def test_update_cancels_a_removal_in_progress(cli):
    cli("domain", "add", "example.com", "--mx", "mx.example.com", "--mode", "enforce")
    cli("domain", "remove", "example.com")
    cli("domain", "update", "example.com", "--mode", "enforce")
    shown = show(cli, "example.com")
    assert shown["mode"] == "enforce" and shown["removal_requested_at"] is None


def test_remove_force_deletes_at_once(cli):
    cli("domain", "add", "example.com", "--mx", "mx.example.com")
    assert cli("domain", "remove", "example.com", "--force").exit_code == 0
    assert "0 domain(s)" in cli("domain", "list").output


@pytest.mark.slow  # `flask` in processes of its own
def test_the_installed_flask_command_finds_the_app_through_flaskenv(new_database):
    url = new_database()
    databases.upgrade(url)
    env = app_environment(app_settings(url))
    run = functools.partial(subprocess.run, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    flask = [sys.executable, "-m", "flask"]

    refused = run([*flask, "domain", "add", "example.com", "--mx", "a.*.example.com"])
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "Error: invalid mx pattern 'a.*.example.com': a wildcard may only be the whole leftmost label"
    ]
    added = run([*flask, "domain", "add", "example.com", "--mx", "mx.example.com"])
    assert added.returncode == 0, added.stderr
    assert json.loads(run([*flask, "domain", "show", "example.com", "--json"]).stdout)["mx"] == ["mx.example.com"]


def test_show_gives_the_cname_to_publish_for_a_delegated_domain(app, cli, session, monkeypatch):
    """RFC 8461 section 8.2: the owner publishes a CNAME once; telling them to publish the TXT would undo it."""
    configure(monkeypatch, app, DELEGATION_ZONE="sts.provider.example")
    cli("domain", "add", "example.com", "--mx", "mx.example.com")
    session.add(DnsSetting(domain_id=get_domain(session, "example.com").id, publish_mode="delegated"))
    session.commit()
    sts = show(cli, "example.com")["dns_records"][0]
    assert (sts["name"], sts["type"]) == ("_mta-sts.example.com", "CNAME")
    assert sts["value"] == "_mta-sts.example.com.sts.provider.example."
    shown = cli("domain", "show", "example.com").output
    assert "_mta-sts.example.com. 3600 IN CNAME _mta-sts.example.com.sts.provider.example." in shown
    assert 'IN TXT "v=STSv1' not in shown


def test_two_concurrent_adds_of_one_name_give_one_domain_and_one_clear_refusal(new_database):
    url = new_database()
    databases.upgrade(url)
    app = create_app(app_settings(url))
    start = threading.Barrier(2)

    def add(_):
        with app.app_context():
            start.wait()
            try:
                add_domain(db.session, "example.com", make_policy("testing", ["mx.example.com"], 86400), actor="t")
                return "added"
            except DomainError as error:
                return error.message

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(add, range(2)))
    with app.app_context():
        assert db.session.query(Domain).count() == 1
        databases.release_connections()
    assert outcomes == ["added", "domain example.com is already hosted"]


def test_dns_check_of_a_domain_not_hosted_is_could_not_check_not_problems_found(cli, session):
    result = cli("dns", "check", "not-hosted.example")
    assert result.exit_code == 2
    assert "not-hosted.example" in result.output and "not hosted" in result.output
