"""Hostile requests to every HTTP entry point: each gets a 4xx with a reason, never a 500.

Report intake, sign-in, the admin forms and the API, through the test client (the
request-level faults a real server sees are in test_http_server.py).
"""

import gzip
import json

import pytest

from stspolicy.accounts.tokens import create_token
from tests.factories import PASSWORD, csrf_token, sign_in
from tests.support.reportdata import encode, report

JSON = "application/tlsrpt+json"


@pytest.fixture
def bearer(session, people):
    return {"Authorization": f"Bearer {create_token(session, people.admin, 'hostile', actor='test')[1]}"}


def refused(response, *statuses) -> None:
    """A refusal the client can act on: one of `statuses` (any 4xx if none given) with a reason in the body."""
    assert response.status_code in (statuses or range(400, 500)), (response.status_code, response.data[:300])
    text = response.get_data(as_text=True)
    assert text.strip() and "Traceback" not in text


INTAKE_CASES = [
    ("GET", JSON, b""), ("PUT", JSON, encode(report())), ("DELETE", JSON, b""), ("PATCH", JSON, b"{}"),
    ("POST", None, encode(report())), ("POST", "text/plain", encode(report())), ("POST", "text/html", b"<b>"),
    ("POST", "multipart/form-data; boundary=x", b"--x--"), ("POST", "application/x-www-form-urlencoded", b"a=b"),
    ("POST", "application/tlsrpt+json; charset=\x00", encode(report())), ("POST", "application/" + "x" * 5000, b"{}"),
    ("POST", JSON, b""), ("POST", JSON, b"\x00" * 100), ("POST", JSON, b"{" * 10_000), ("POST", JSON, b"[" * 100_000),
    ("POST", JSON, b"\xef\xbb\xbf" + b"{}"), ("POST", JSON, "{\"organization-name\": \"\u00e9\"}".encode("latin-1")),
    ("POST", JSON, encode(report(policies="none"))), ("POST", JSON, encode(report(**{"date-range": None}))),
    ("POST", JSON, encode(report(**{"organization-name": "<script>alert(1)</script>"}))[:-2]),
    ("POST", JSON, json.dumps(report()).replace("\"sts\"", "\"sts\\u0000\"").encode()),
    ("POST", JSON, json.dumps(report()).replace("10,", "1" * 5000 + ",", 1).encode()),
    ("POST", "application/tlsrpt+gzip", b"not gzip at all"), ("POST", "application/tlsrpt+gzip", b"\x1f\x8b\x08"),
    ("POST", "application/tlsrpt+gzip", gzip.compress(b"{\"a\": 1}")),
    ("POST", "application/tlsrpt+gzip", gzip.compress(b"\x00" * (60 * 1024 * 1024))),
    ("POST", "application/tlsrpt+gzip", gzip.compress(gzip.compress(encode(report())))),
    ("POST", "application/tlsrpt+gzip", gzip.compress(encode(report()))[:40]),
    ("POST", "application/gzip", b"\x1f\x8b" + b"\xff" * 64), ("POST", JSON, b"x" * (6 * 1024 * 1024)),
]


@pytest.mark.parametrize(("method", "content_type", "body"), INTAKE_CASES, ids=range(len(INTAKE_CASES)))
def test_hostile_report_uploads_are_refused_with_a_reason(client, people, method, content_type, body):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.open("/tlsrpt", method=method, data=body, headers=headers)
    refused(response)
    assert "error" in response.get_json()


@pytest.mark.parametrize("token", ["x", "..%2f..%2fetc", "a" * 65, "%00", "token%20with%20space", "\u00e9", "a/b",
                                   "stsp_" + "A" * 43])
def test_a_report_url_with_an_unknown_or_odd_token_is_refused(client, people, token):
    response = client.post(f"/tlsrpt/{token}", data=encode(report()), headers={"Content-Type": JSON})
    refused(response, 404)


HOSTS = ["mta-sts.example.com:port", "mta-sts..example", "mta-sts.exa mple.com", "mta-sts.a.1",
         "mta-sts.example.com:99999", "mta-sts." + "a" * 300 + ".example", "mta-sts.\u00e9xample.com",
         "MTA-STS.UNKNOWN.EXAMPLE", "mta-sts.example.com.."]


@pytest.mark.parametrize("host", HOSTS)
def test_an_odd_policy_host_gets_a_404_never_another_domains_policy(client, people, host):
    response = client.get("/.well-known/mta-sts.txt", headers={"Host": host})
    refused(response, 404)
    assert b"version: STSv1" not in response.data


@pytest.mark.parametrize("path", ["/.well-known/mta-sts.txt/", "/.well-known/../.well-known/mta-sts.txt",
                                  "/.well-known/mta-sts.txt%00", "/.well-known/MTA-STS.TXT", "/admin", "/login"])
def test_a_policy_host_answers_nothing_but_its_policy(client, people, path):
    refused(client.get(path, headers={"Host": "mta-sts.shared.example"}), 404)


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"])
def test_a_policy_host_takes_only_get_and_head(client, people, method):
    refused(client.open("/.well-known/mta-sts.txt", method=method, headers={"Host": "mta-sts.shared.example"}), 405)


LOGIN_CASES = [
    {"email": "a\x00b@prov.example", "password": "x" * 12}, {"email": "admin@provider.example\x00", "password": "x"},
    {"email": "admin@provider.example", "password": "\x00" * 12}, {"email": "x" * 300, "password": "y" * 12},
    {"email": "admin@provider.example", "password": "p" * 2000}, {"email": "", "password": ""},
    {"email": "' OR 1=1 --@x.example", "password": "' OR 1=1 --"}, {"email": "\u202eadmin@provider.example"},
    {"password": PASSWORD}, {"email[]": "admin@provider.example", "password": PASSWORD},
]


@pytest.mark.parametrize("form", LOGIN_CASES, ids=range(len(LOGIN_CASES)))
def test_hostile_sign_ins_are_refused_and_sign_nobody_in(client, people, form):
    response = client.post("/login", data={"csrf_token": csrf_token(client), **form})
    assert response.status_code in (200, 400, 413), response.status_code  # 200: the form again, with its error
    assert "Traceback" not in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_a_sign_in_without_its_csrf_token_is_refused(client, people):
    refused(client.post("/login", data={"email": people.admin.email, "password": PASSWORD}), 400)


FORM_CASES = [
    ("/domains/new", {"name": "a\x00b.example", "mode": "testing", "max_age": "86400", "mx-0": "mx.a.example"}),
    ("/domains/new", {"name": "bad name", "mode": "testing", "max_age": "86400", "mx-0": "mx.a.example"}),
    ("/domains/new", {"name": "ok.example", "mode": "block", "max_age": "86400", "mx-0": "mx.ok.example"}),
    ("/domains/new", {"name": "ok.example", "mode": "testing", "max_age": "-1", "mx-0": "mx.ok.example"}),
    ("/domains/new", {"name": "ok.example", "mode": "testing", "max_age": "9" * 12, "mx-0": "mx.ok.example"}),
    ("/domains/new", {"name": "ok.example", "mode": "testing", "max_age": "1e9", "mx-0": "mx.ok.example"}),
    ("/domains/new", {"name": "ok.example", "mode": "testing", "max_age": "86400", "mx-0": "*.*.ok.example"}),
    ("/domains/new", {"name": "ok.example", "mode": "enforce", "max_age": "86400"}),
    ("/domains/new", {"name": "ok.example", "mode": "testing", "max_age": "86400",
                      "mx-0": "mx." + "a" * 64 + ".ok.example"}),
    ("/domains/new", {"name": "shared.example", "mode": "testing", "max_age": "86400", "mx-0": "mx.shared.example"}),
    ("/domains/new", {"name": "x" * 70_000}),
    ("/domains/shared.example/policy", {"mode": "testing", "max_age": "86400", "mx-0": "<script>.example"}),
    ("/domains/shared.example/policy", {"mode": "testing", "max_age": "\x00", "mx-0": "mx.shared.example"}),
    ("/domains/shared.example/policy", {"mode": "", "max_age": "86400", "mx-0": "mx.shared.example"}),
    ("/domains/shared.example/rollback/2026%00", {}), ("/domains/shared.example/rollback/" + "9" * 300, {}),
    ("/domains/shared.example/rollback/..%2f..%2f", {}), ("/domains/nope.example/rollback/1", {}),
    ("/domains/shared.example/grants", {"email": "a\x00b@x.example", "role": "viewer"}),
    ("/domains/shared.example/grants", {"email": "nobody at x.example", "role": "viewer"}),
    ("/domains/shared.example/grants", {"email": "editor@customer.example", "role": "owner"}),
    ("/domains/shared.example/grants", {"email": "admin@provider.example", "role": "viewer"}),
    ("/domains/shared.example/grants/999999/remove", {}), ("/domains/shared.example/grants/abc/remove", {}),
    ("/domains/shared.example/remove", {"force": "\x00"}), ("/tokens", {"name": "a\x00b"}), ("/tokens", {"name": ""}),
    ("/tokens", {"name": "x" * 500}), ("/tokens/999999/revoke", {}), ("/tokens/-1/revoke", {}),
    ("/users", {"email": "a\x00b@x.example", "role": "member"}), ("/users", {"email": "x@y.example", "role": "root"}),
    ("/users", {"email": "admin@provider.example", "role": "member"}), ("/users", {"email": "@" * 300}),
    ("/users/999999/grants", {"domain": "shared.example", "role": "viewer"}), ("/users/-1/link", {}),
    ("/users/2/grants", {"domain": "shared.example", "role": "owner"}),
    ("/users/2/grants", {"domain": "../../etc", "role": "viewer"}),
    ("/users/2/grants/nope.example/remove", {}), ("/users/2/grants/foreign.example/remove", {}),
    ("/users/1/remove", {}), ("/users/999999/remove", {}),
    ("/account", {"current": "wrong", "password": "x" * 20, "repeat": "x" * 20}),
    ("/account", {"current": PASSWORD, "password": "x" * 2000, "repeat": "x" * 2000}),
    ("/password/unknown", {"password": "x" * 20, "repeat": "x" * 20}),
]


@pytest.mark.parametrize(("path", "form"), FORM_CASES, ids=range(len(FORM_CASES)))
def test_hostile_admin_forms_are_refused_with_a_reason(client, people, path, form):
    sign_in(client, people.admin)
    response = client.post(path, data={"csrf_token": csrf_token(client, "/tokens"), **form})
    refused(response)


API_BODIES = [
    ("post", "/api/v1/domains", "[" * 30_000), ("patch", "/api/v1/domains/shared.example", "[" * 30_000),
    ("put", "/api/v1/domains/shared.example/policy", "[" * 30_000),
    ("post", "/api/v1/domains/shared.example/rollback", "[" * 30_000),
    ("post", "/api/v1/domains", "{\"a\":" * 30_000), ("post", "/api/v1/domains", "not json"),
    ("post", "/api/v1/domains", "[]"), ("post", "/api/v1/domains", "null"), ("post", "/api/v1/domains", "\"x\""),
    ("post", "/api/v1/domains", "{\"domain\": \"a\\u0000b.example\", \"mx\": [\"mx.a.example\"]}"),
    ("post", "/api/v1/domains", "{\"domain\": \"ok.example\", \"mx\": [\"mx\\u0000.ok.example\"]}"),
    ("post", "/api/v1/domains", "{\"domain\": \"ok.example\", \"mx\": \"mx.ok.example\"}"),
    ("post", "/api/v1/domains", "{\"domain\": \"ok.example\", \"mx\": [1, 2]}"),
    ("post", "/api/v1/domains", "{\"domain\": \"ok.example\", \"mx\": [\"m.ok.example\"], \"max_age\": 1e400}"),
    ("post", "/api/v1/domains", "{\"domain\": \"ok.example\", \"mx\": [\"m.ok.example\"], \"max_age\": " + "9" * 5000
     + "}"),
    ("post", "/api/v1/domains", "{\"domain\": \"ok.example\", \"mx\": [\"m.ok.example\"], \"max_age\": true}"),
    ("post", "/api/v1/domains", "{\"domain\": \"ok.example\", \"mx\": [\"m.ok.example\"], \"max_age\": -5}"),
    ("post", "/api/v1/domains", "{\"domain\": \"ok.example\", \"mx\": [\"m.ok.example\"], \"mode\": \"block\"}"),
    ("post", "/api/v1/domains", "{\"domain\": \"ok.example\", \"mx\": [\"m.ok.example\"], \"extra\": 1}"),
    ("post", "/api/v1/domains", "{\"domain\": \"" + "a" * 300 + "\", \"mx\": []}"),
    ("post", "/api/v1/domains", "{\"domain\": \"ok.example\", \"mx\": [" + ",".join(["\"m.ok.example\""] * 200) + "]}"),
    ("post", "/api/v1/domains", "{\"domain\": \"ok.example\", \"domain\": \"\\ud800\", \"mx\": []}"),
    ("post", "/api/v1/domains", "{\"domain\": \"shared.example\", \"mx\": [\"mx.shared.example\"]}"),
    ("patch", "/api/v1/domains/shared.example", "{\"mode\": null}"),
    ("patch", "/api/v1/domains/shared.example", "{\"confirm_enforce\": \"yes\"}"),
    ("patch", "/api/v1/domains/shared.example", "{\"mode\": \"enforce\"}"),
    ("put", "/api/v1/domains/shared.example/policy", "{\"mode\": \"testing\"}"),
    ("post", "/api/v1/domains/shared.example/rollback", "{\"policy_id\": \"2026\\u0000\"}"),
    ("post", "/api/v1/domains/shared.example/rollback", "{\"policy_id\": \"nope\"}"),
    ("post", "/api/v1/domains/shared.example/rollback", "{\"policy_id\": 2026}"),
    ("patch", "/api/v1/domains/nope.example", "{\"mode\": \"testing\"}"),
    ("patch", "/api/v1/domains/a%00b.example", "{\"mode\": \"testing\"}"),
    ("delete", "/api/v1/domains/shared.example?force=maybe", ""), ("delete", "/api/v1/domains/shared.example?x=1", ""),
    ("get", "/api/v1/domains?%00=1", ""), ("get", "/api/v1/domains/" + "a" * 1000, ""),
]


@pytest.mark.parametrize(("method", "path", "body"), API_BODIES, ids=range(len(API_BODIES)))
def test_hostile_api_calls_are_refused_with_a_code_and_a_message(client, bearer, method, path, body):
    response = getattr(client, method)(path, data=body, headers={**bearer, "Content-Type": "application/json"})
    refused(response)
    assert response.get_json()["error"]["code"] not in ("internal", None)


@pytest.mark.parametrize("header", ["", "Bearer", "Bearer ", "Bearer stsp_", "Bearer stsp_" + "A" * 5000,
                                    "Bearer stsp_\x00", "Basic YTpi", "bearer", "Token stsp_x", "Bearer a b c",
                                    "Bearer \u00e9\u00e9"])
def test_a_bad_api_authorization_is_a_401(client, people, header):
    refused(client.get("/api/v1/domains", headers={"Authorization": header}), 401)


@pytest.mark.parametrize("host", ["evil.example", "localhost.evil.example", "localhost:99999", "127.0.0.1.nip.io",
                                  "", "local\x00host"])
def test_the_admin_ui_answers_only_on_its_hosts(client, people, host):
    sign_in(client, people.admin)
    assert client.get("/", headers={"Host": host}).status_code in (400, 404)
