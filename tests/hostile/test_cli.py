"""Hostile arguments to every `flask` command: a non-zero exit with one line, never a traceback."""

import pytest

from tests.factories import PASSWORD

CASES = [
    ("domain", "add", "bad name"), ("domain", "add", "a..example"), ("domain", "add", "x" * 300),
    ("domain", "add", "-a.example"), ("domain", "add", "shared.example", "--mx", "mx.shared.example"),
    ("domain", "add", "ok.example", "--mode", "block"), ("domain", "add", "ok.example", "--max-age", "-1"),
    ("domain", "add", "ok.example", "--max-age", "abc", "--mx", "mx.ok.example"),
    ("domain", "add", "ok.example", "--max-age", "1e9", "--mx", "mx.ok.example"),
    ("domain", "add", "ok.example", "--mx", "*.*.ok.example"), ("domain", "add", "ok.example", "--mx", ""),
    ("domain", "add", "ok.example", "--mode", "enforce"), ("domain", "add", "\u00e9\u00e9\u00e9"),
    ("domain", "update", "nope.example", "--mode", "testing"), ("domain", "update", "shared.example", "--mx", "a b"),
    ("domain", "show", "nope.example"), ("domain", "history", "nope.example"),
    ("domain", "rollback", "shared.example", "nope"), ("domain", "rollback", "nope.example", "1"),
    ("domain", "rollback", "shared.example", "9" * 300), ("domain", "remove", "nope.example"),
    ("domain", "frobnicate"), ("domain", "add"),
    ("user", "create", "not-an-email", "--role", "admin"), ("user", "create", "ok@x.example", "--role", "god"),
    ("user", "create", "admin@provider.example", "--role", "admin"), ("user", "set-password", "nobody@x.example"),
    ("user", "remove", "nobody@x.example"), ("user", "grant", "nobody@x.example", "shared.example", "--role", "viewer"),
    ("user", "grant", "editor@customer.example", "nope.example", "--role", "viewer"),
    ("user", "grant", "admin@provider.example", "shared.example", "--role", "viewer"),
    ("user", "grant", "editor@customer.example", "shared.example", "--role", "owner"),
    ("user", "revoke", "viewer@customer.example", "foreign.example"),
    ("token", "create", "--user", "nobody@x.example"), ("token", "revoke", "999999"), ("token", "revoke", "abc"),
    ("token", "create", "--user", "admin@provider.example", "--name", "x" * 500),
    ("dns", "history", "nope.example"), ("dns", "history", "shared.example", "--limit", "0"),
    ("dns", "mode", "shared.example", "carrier-pigeon"), ("dns", "mode", "nope.example", "manual"),
    ("dns", "records", "nope.example"), ("dns", "publish", "nope.example"),
    ("tlsa", "generate", "--cert", "/nonexistent.pem"), ("tlsa", "rollover", "--cert", "/nonexistent.pem"),
    ("cert", "issue", "nope.example"), ("report", "import", "/nonexistent"),
    ("report", "list", "--limit", "0"), ("report", "token", "create", "nope.example"),
    ("report", "token", "create", "bad name"),
]


def ends_in_one_error_line(result) -> None:
    """A non-zero exit and one line that says what is wrong (click's usage lines may come before it)."""
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len([line for line in errors if line.startswith("Error")]) == 1 or len(errors) == 1, errors


@pytest.mark.parametrize("args", CASES, ids=[" ".join(case)[:60] for case in CASES])
def test_hostile_command_lines_end_in_one_line_and_a_non_zero_exit(app, session, people, args):
    result = app.test_cli_runner().invoke(args=list(args), input=PASSWORD + "\n" + PASSWORD + "\n",
                                          catch_exceptions=False)
    ends_in_one_error_line(result)


@pytest.mark.parametrize("content", [
    b"", b"\x00" * 64, b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", b"not a certificate",
    b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
])
def test_a_bad_certificate_file_ends_in_one_line(app, session, tmp_path, content):
    path = tmp_path / "cert.pem"
    path.write_bytes(content)
    result = app.test_cli_runner().invoke(args=["tlsa", "generate", "--cert", str(path)], catch_exceptions=False)
    ends_in_one_error_line(result)
