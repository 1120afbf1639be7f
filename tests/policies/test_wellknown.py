"""`/.well-known/mta-sts.txt`: exactly the current policy, for exactly its host (RFC 8461 3.3)."""

import pytest

from stspolicy.base.settings import current_settings
from stspolicy.policies.queries import get_domain, policy_fingerprint
from stspolicy.policies.rules import MAX_MX_PATTERNS, PolicyError, make_policy
from stspolicy.policies.service import add_domain, remove_domain, update_policy
from stspolicy.propagation import propagate

POLICY = "version: STSv1\r\nmode: testing\r\nmx: mail.example.com\r\nmx: *.mx.example.net\r\nmax_age: 604800\r\n"


@pytest.fixture
def hosted(session):
    return add_domain(
        session, "example.com", make_policy("testing", ["mail.example.com", "*.mx.example.net"], 604800), actor="test"
    )


def fetch(client, host, method="GET", path="/.well-known/mta-sts.txt", **headers):
    return client.open(path, method=method, headers={"Host": host, **headers})


def test_policy_is_served_byte_for_byte_as_text_plain(client, hosted):
    response = fetch(client, "mta-sts.example.com")
    assert response.status_code == 200
    assert response.data == POLICY.encode()
    assert response.mimetype == "text/plain"
    assert response.headers["ETag"] == f'"{hosted.policy_id}"'
    assert response.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize(
    "host", ["MTA-STS.Example.COM", "mta-sts.example.com.", "mta-sts.example.com:443", "mta-sts.example.com:8000"]
)
def test_host_is_matched_case_insensitively_without_port_or_dot(client, hosted, host):
    assert fetch(client, host).data == POLICY.encode()


def test_head_gives_the_headers_without_a_body(client, hosted):
    response = fetch(client, "mta-sts.example.com", method="HEAD")
    assert response.status_code == 200
    assert response.data == b""
    assert int(response.headers["Content-Length"]) == len(POLICY)


@pytest.mark.parametrize(
    "host", ["mta-sts.example.org", "example.com", "www.example.com", "mta-sts.sub.example.com", "localhost", ""]
)
def test_other_hosts_get_404_never_a_policy(client, hosted, host):
    response = fetch(client, host)
    assert response.status_code == 404
    assert b"version: STSv1" not in response.data


def test_each_host_gets_its_own_policy(client, session, hosted):
    add_domain(session, "example.org", make_policy("enforce", ["mx.example.org"], 86400), actor="test")
    assert b"mx: mx.example.org" in fetch(client, "mta-sts.example.org").data
    assert b"mx: mx.example.org" not in fetch(client, "mta-sts.example.com").data


def test_idn_domain_is_served_on_its_a_label_host(client, session):
    add_domain(session, "bücher.example", make_policy("enforce", ["mx.bücher.example"], 86400), actor="test")
    response = fetch(client, "mta-sts.xn--bcher-kva.example")
    assert response.status_code == 200
    assert b"mx: mx.xn--bcher-kva.example\r\n" in response.data


@pytest.mark.parametrize(
    "path", ["/", "/.well-known/mta-sts.txt/", "/.well-known/", "/admin", "/.well-known/mta-sts.json", "/robots.txt"]
)
def test_policy_host_serves_nothing_else_and_never_redirects(client, hosted, path):
    response = fetch(client, "mta-sts.example.com", path=path)
    assert response.status_code == 404
    assert "Location" not in response.headers


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_other_methods_are_refused(client, hosted, method):
    assert fetch(client, "mta-sts.example.com", method=method).status_code == 405


def test_a_change_is_served_at_once_with_a_new_etag(client, session, hosted):
    before = fetch(client, "mta-sts.example.com")
    version = update_policy(session, get_domain(session, "example.com"), mode="enforce", actor="test",
                            enforce_confirmed=True)
    propagate(session, current_settings(), "example.com", version, wait=True)
    after = fetch(client, "mta-sts.example.com")
    assert b"mode: enforce\r\n" in after.data
    assert after.headers["ETag"] == f'"{version.policy_id}"' != before.headers["ETag"]


@pytest.mark.parametrize(
    "headers", [{"Range": "bytes=0-9"}, {"If-None-Match": "*"}, {"If-Modified-Since": "Sat, 28 Nov 2099 00:00:00 GMT"}]
)
def test_conditional_and_range_requests_still_get_the_whole_policy(client, hosted, headers):
    """Only a 200 with the whole body counts for a sender (RFC 8461 section 3.3): no 206, no 304."""
    response = fetch(client, "mta-sts.example.com", **headers)
    assert response.status_code == 200
    assert response.data == POLICY.encode()


def test_policy_hosts_set_no_cookies(client, hosted):
    assert "Set-Cookie" not in fetch(client, "mta-sts.example.com").headers


def test_the_change_fingerprint_sees_a_domain_replaced_within_one_refresh(session):
    """Other workers reload on a changed fingerprint; SQLite hands the deleted row's id to the next insert."""
    add_domain(session, "old.example", make_policy("enforce", ["mx.old.example"], 86400), actor="test")
    before = policy_fingerprint()
    remove_domain(session, get_domain(session, "old.example"), actor="test", force=True)
    add_domain(session, "new.example", make_policy("enforce", ["mx.new.example"], 86400), actor="test")
    assert policy_fingerprint() != before


def longest_pattern(n: int) -> str:
    """A distinct mx pattern of the greatest length a policy takes: `*.` and a 253-character name."""
    return f"*.{n:03d}{'a' * 60}.{'b' * 63}.{'c' * 63}.{'d' * 53}.example"


def test_the_largest_policy_is_served_whole_and_one_more_pattern_is_refused(client, session):
    """100 mx patterns of the maximum length (MAX_MX_PATTERNS) stay far below the 64 KiB senders read
    (RFC 8461 section 3.3); a 101st is refused before anything is served."""
    patterns = [longest_pattern(n) for n in range(MAX_MX_PATTERNS)]
    assert {len(pattern) for pattern in patterns} == {255}
    add_domain(session, "example.com", make_policy("enforce", patterns, 604800), actor="test")
    body = fetch(client, "mta-sts.example.com").data
    assert [line[4:] for line in body.decode().split("\r\n") if line.startswith("mx: ")] == patterns
    assert len(body) < 64 * 1024
    with pytest.raises(PolicyError, match="101 mx patterns: at most 100 are allowed"):
        make_policy("enforce", [*patterns, longest_pattern(MAX_MX_PATTERNS)], 604800)
