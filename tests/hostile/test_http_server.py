"""Hostile bytes to the real server (gunicorn with stspolicy's worker): every request gets a 4xx
status line, or the answer it asked for, within seconds; never a 5xx, never a hang."""

import gzip
import json
import socket

import pytest

from tests import databases
from tests.conftest import app_settings
from tests.policies.test_live_workers import host_domains
from tests.support.reportdata import report
from tests.support.servers import gunicorn

pytestmark = pytest.mark.slow  # starts real servers

REPORT = json.dumps(report()).encode()
CHUNKED_REPORT = json.dumps(report(**{"report-id": "in chunks"})).encode()
CHUNKED = (b"POST /tlsrpt HTTP/1.1\r\nHost: r\r\nContent-Type: application/tlsrpt+json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n")
POLICY = b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.example.com\r\n"


def post(body: bytes, extra: bytes = b"", path: bytes = b"/tlsrpt") -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\nHost: reports.example\r\nContent-Type: application/tlsrpt+json\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n" + extra + b"\r\n" + body)


CASES = {
    "garbage": (b"GARBAGE\r\n\r\n", 400),
    "empty head": (b"\r\n\r\n", 400),
    "unknown http version": (b"GET / HTTP/9.9\r\nHost: localhost\r\n\r\n", 400),
    "absolute uri to elsewhere": (b"GET http://evil.example/ HTTP/1.1\r\nHost: evil.example\r\n\r\n", 404),
    "request line of 10 KiB": (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 414),
    "200 header lines": (b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"X-A: b\r\n" * 200 + b"\r\n", 431),
    "header of 20 KiB": (b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: " + b"b" * 20_000 + b"\r\n\r\n", 431),
    "head of 100 KiB": (b"GET / HTTP/1.1\r\nHost: localhost\r\n" + b"X-A: b\r\n" * 12_000 + b"\r\n", 431),
    "header without colon": (b"GET / HTTP/1.1\r\nHost: localhost\r\nNoColonHere\r\n\r\n", 400),
    "nul in a header": (b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\x00b\r\n\r\n", 400),
    "folded header": (b"GET / HTTP/1.1\r\nHost: localhost\r\nX-A: a\r\n b\r\n\r\n", 400),
    "space before the colon": (b"GET / HTTP/1.1\r\nHost : localhost\r\n\r\n", 400),
    "two content lengths": (post(REPORT).replace(b"Content-Length", b"Content-Length: 5\r\nContent-Length", 1), 400),
    "negative content length": (post(b"").replace(b"Content-Length: 0", b"Content-Length: -1"), 400),
    "content length not a number": (post(b"").replace(b"Content-Length: 0", b"Content-Length: abc"), 400),
    "content length and chunked": (post(REPORT, b"Transfer-Encoding: chunked\r\n"), 400),
    "bad chunk size": (CHUNKED + b"zz\r\n", 400),
    "chunk larger than it says": (CHUNKED + b"2\r\nabcdef\r\n0\r\n\r\n", 400),
    "unknown transfer coding": (CHUNKED.replace(b": chunked", b": gzip, chunked") + b"0\r\n\r\n", 400),
    "ten gigabytes announced": (post(b"").replace(b"Content-Length: 0", b"Content-Length: 10737418240"), 413),
    "lowercase method": (b"get / HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
    "non-ascii path": (b"GET /\xff\xfe HTTP/1.1\r\nHost: localhost\r\n\r\n", 400),
    "punycode that does not decode": (b"GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: mta-sts.xn--zz.example\r\n\r\n",
                                      404),
    "policy host with a port that is no number": (POLICY.replace(b"example.com", b"example.com:port") + b"\r\n", 404),
    "policy fetch without a host": (b"GET /.well-known/mta-sts.txt HTTP/1.0\r\n\r\n", 404),
    "policy fetch with a body": (POLICY + b"Content-Length: 5\r\n\r\nhello", 200),
    "policy post": (POLICY.replace(b"GET", b"POST") + b"Content-Length: 0\r\n\r\n", 405),
    "report with a gzip bomb": (post(gzip.compress(b"\x00" * (60 * 1024 * 1024)), path=b"/tlsrpt")
                                .replace(b"+json", b"+gzip"), 413),
    "report of nested arrays": (post(b"[" * 100_000), 400),
    "report expecting 100-continue": (post(REPORT, b"Expect: 100-continue\r\n"), 201),
    "report in chunks with a trailer": (
        CHUNKED + b"%x\r\n%s\r\n0\r\nX-T: 1\r\n\r\n" % (len(CHUNKED_REPORT), CHUNKED_REPORT), 201),
    "policy fetch then a bad request on one connection": (POLICY + b"\r\nGARBAGE\r\n\r\n", 200),
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'stspolicy.db'}"
    databases.upgrade(url)
    settings = app_settings(url, SNAPSHOT_REFRESH_SECONDS="1", TLSRPT_ACCEPT_UNHOSTED="true",
                            GUNICORN_REQUEST_READ_SECONDS="3")
    host_domains(settings, ("example.com", "enforce", ["mx1.example.com"]))
    with gunicorn(settings, workers=1) as base_url:
        yield "127.0.0.1", int(base_url.rsplit(":", 1)[1])


def exchange(address, data: bytes) -> bytes:
    with socket.create_connection(address, timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # the server answered and closed before it had everything
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(("data", "status"), CASES.values(), ids=CASES.keys())
def test_hostile_bytes_get_a_status_line_and_never_a_5xx(server, data, status):
    answer = exchange(server, data)
    status_lines = [line for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.")]
    final = [line for line in status_lines if not line.startswith(b"HTTP/1.1 100")]
    assert final, answer[:300]
    assert final[0].split(b" ")[1] == str(status).encode(), final
    assert not any(line.split(b" ")[1].startswith(b"5") for line in status_lines), status_lines


def test_a_body_cut_short_by_its_sender_is_refused_and_not_stored(server):
    answer = exchange(server, post(json.dumps(report(**{"report-id": "cut short"})).encode() + b" " * 100)[:-100])
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]
    assert b"Content-Length" in answer.split(b"\r\n\r\n", 1)[1]


def test_a_head_that_stops_half_way_gets_a_408(server):
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: loc")
        assert sock.recv(200).startswith(b"HTTP/1.1 408 Request Timeout")


@pytest.mark.parametrize("data", [
    post(REPORT)[:-10], CHUNKED + b"10\r\n0123456789abcdef\r\n", CHUNKED + b"10\r\n0123",
    POLICY + b"\r\n" + post(REPORT)[:-10],  # the first is answered, the one pipelined behind it never ends
])
def test_a_body_that_stops_half_way_gets_a_408(server, data):
    with socket.create_connection(server, timeout=10) as sock:
        sock.sendall(data)
        answers = b""
        while b"408 Request Timeout" not in answers and (chunk := sock.recv(4096)):
            answers += chunk
    assert answers.split(b"\r\n", 1)[0] in (b"HTTP/1.1 408 Request Timeout", b"HTTP/1.1 200 OK"), answers[:100]
    assert b"HTTP/1.1 408 Request Timeout" in answers
