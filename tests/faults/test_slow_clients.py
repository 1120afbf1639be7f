"""Slow clients under real gunicorn: they never hold up policy fetches or other reports."""

import json
import socket
import threading
import time
import urllib.request

import pytest

from tests import databases
from tests.conftest import app_settings
from tests.policies.test_live_workers import host_domains
from tests.support.reportdata import report
from tests.support.servers import get, gunicorn

pytestmark = pytest.mark.slow  # starts real servers

SLOW_CLIENTS = 40  # five times the threads of the two workers


def trickle(address, head: bytes, stop: threading.Event, answers: list) -> None:
    """Send `head` then one byte every half second until the server answers or `stop` is set."""
    with socket.create_connection(address, timeout=30) as sock:
        sock.sendall(head)
        sock.settimeout(0.5)
        while not stop.is_set():
            try:
                answer = sock.recv(200)
            except TimeoutError:
                sock.sendall(b"a")
                continue
            except OSError:
                answer = b""
            answers.append(answer.split(b"\r\n", 1)[0])
            return


def test_clients_sending_one_byte_at_a_time_never_hold_up_policy_fetches_or_reports(new_database):
    url = new_database()
    databases.upgrade(url)
    settings = app_settings(url, SNAPSHOT_REFRESH_SECONDS="1", TLSRPT_ACCEPT_UNHOSTED="true",
                            GUNICORN_REQUEST_READ_SECONDS="6")
    host_domains(settings, ("example.com", "enforce", ["mx1.example.com"]))
    with gunicorn(settings, workers=2) as base_url:
        address = ("127.0.0.1", int(base_url.rsplit(":", 1)[1]))
        heads = [b"POST /tlsrpt HTTP/1.1\r\nHost: reports.example\r\nContent-Type: application/tlsrpt+json\r\n"
                 b"Content-Length: 100000\r\n\r\n{", b"POST /tlsrpt HTTP/1.1\r\nHost: reports.example\r\nX-Slow: "]
        stop, answers = threading.Event(), []
        slow = [threading.Thread(target=trickle, args=(address, heads[n % 2], stop, answers), daemon=True)
                for n in range(SLOW_CLIENTS)]
        for thread in slow:
            thread.start()
        time.sleep(1.5)  # every slow client is connected and trickling
        try:
            fetches = [get(base_url + "/.well-known/mta-sts.txt", "mta-sts.example.com", timeout=3)[0]
                       for _ in range(40)]
            body = json.dumps(report(**{"report-id": "while-slow-clients-trickle"})).encode()
            request = urllib.request.Request(base_url + "/tlsrpt", data=body,
                                             headers={"Content-Type": "application/tlsrpt+json"})
            with urllib.request.urlopen(request, timeout=10) as response:
                stored = response.status
        finally:
            deadline = time.monotonic() + 10  # the server ends them after GUNICORN_REQUEST_READ_SECONDS
            for thread in slow:
                thread.join(timeout=max(0.0, deadline - time.monotonic()))
            stop.set()
        assert fetches == [200] * 40
        assert stored == 201
        assert answers == [b"HTTP/1.1 408 Request Timeout"] * SLOW_CLIENTS
