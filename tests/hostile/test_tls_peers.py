"""Hostile SMTP servers against the STARTTLS probe: each conversation ends with an error that
says at which step, within the probe's timeout, never with an exception or a hang."""

import contextlib
import socket
import threading
import time

import pytest

from stspolicy.dns.probe import probe_starttls

TIMEOUT = 1.0


def greet_then(*steps):
    """Greet, then for each client line play `step(connection)`."""
    def serve(connection):
        connection.sendall(b"220 mx.hostile.test ESMTP\r\n")
        for step in steps:
            connection.recv(1024)
            step(connection)
    return serve


def send(data: bytes):
    return lambda connection: connection.sendall(data)


def trickle(data: bytes, pause: float = 0.2):
    def serve(connection):
        for byte in data:
            connection.sendall(bytes([byte]))
            time.sleep(pause)
    return serve


def stall(connection):
    time.sleep(TIMEOUT * 4)


EHLO_WITH_STARTTLS = b"250-mx.hostile.test\r\n250 STARTTLS\r\n"

SERVERS = {
    "closes at once": lambda connection: None,
    "never greets": stall,
    "greets with binary garbage": send(b"\x16\x03\x01\x00\xff" + bytes(range(256))),
    "refuses with 554": send(b"554 go away\r\n"),
    "greets in an endless line": send(b"220 " + b"x" * 20_000),
    "greets one byte at a time": trickle(b"220-" + b"x" * 200 + b"\r\n"),
    "greets with a half line then stalls": lambda connection: (connection.sendall(b"220-mx"), stall(connection)),
    "answers ehlo with 500": greet_then(send(b"500 what\r\n")),
    "answers ehlo without starttls": greet_then(send(b"250-mx\r\n250 SIZE 1000\r\n")),
    "answers ehlo with non-ascii": greet_then(send(b"250-\xff\xfe\r\n250 STARTTLS\xff\r\n")),
    "answers ehlo then closes": greet_then(lambda connection: connection.close()),
    "answers ehlo one byte at a time": greet_then(trickle(EHLO_WITH_STARTTLS)),
    "refuses starttls with 454": greet_then(send(EHLO_WITH_STARTTLS), send(b"454 TLS not available\r\n")),
    "answers starttls then sends garbage": greet_then(send(EHLO_WITH_STARTTLS), send(b"220 go\r\n" + b"\x00" * 300)),
    "answers starttls then an http error": greet_then(send(EHLO_WITH_STARTTLS),
                                                      send(b"220 go\r\nHTTP/1.1 400 Bad Request\r\n\r\n")),
    "answers starttls then closes": greet_then(send(EHLO_WITH_STARTTLS), lambda connection: (
        connection.sendall(b"220 go\r\n"), connection.close())),
    "answers starttls then stalls": greet_then(send(EHLO_WITH_STARTTLS), lambda connection: (
        connection.sendall(b"220 go\r\n"), stall(connection))),
    "answers starttls then a tls alert": greet_then(send(EHLO_WITH_STARTTLS),
                                                    send(b"220 go\r\n\x15\x03\x03\x00\x02\x02\x28")),
    "answers starttls then a huge tls record": greet_then(send(EHLO_WITH_STARTTLS),
                                                          send(b"220 go\r\n\x16\x03\x03\xff\xff" + b"\x00" * 100)),
}


@pytest.fixture
def smtp_server():
    """Start a one-connection server playing `serve`; yields a function returning the port."""
    servers, threads = [], []

    def start(serve) -> int:
        server = socket.create_server(("127.0.0.1", 0))
        servers.append(server)

        def accept():
            with contextlib.suppress(OSError):
                connection, _ = server.accept()
                with connection, contextlib.suppress(OSError):
                    serve(connection)
        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        threads.append(thread)
        return server.getsockname()[1]

    yield start
    for server in servers:
        server.close()
    for thread in threads:
        thread.join(timeout=TIMEOUT * 5)


@pytest.mark.parametrize("serve", SERVERS.values(), ids=SERVERS.keys())
def test_a_hostile_smtp_server_ends_the_probe_with_an_error_in_time(smtp_server, serve):
    port = smtp_server(serve)
    started = time.monotonic()
    result = probe_starttls("mx.hostile.test", ["127.0.0.1"], port=port, timeout=TIMEOUT,
                            allowed_networks=["127.0.0.0/8"])
    elapsed = time.monotonic() - started
    assert result.error and not result.chain, result
    # Each step (greeting, EHLO, STARTTLS, handshake) has the timeout at most.
    assert elapsed < TIMEOUT * 4 + 1, (elapsed, result.error)
