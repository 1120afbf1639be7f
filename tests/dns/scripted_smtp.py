"""An SMTP server on port 25 in the lab namespace that plays a script for one connection.

For what Postfix will not do on demand: answer without end, or choose its certificate by
SNI and tell the test which name the client sent.
"""

import contextlib
import socket
import ssl
import threading


@contextlib.contextmanager
def one_connection(lab_netns, address: str, serve):
    """Listen on `address`:25; `serve(connection)` plays the server for the first connection."""
    with lab_netns.entered():
        server = socket.create_server((address, 25))

    def accept():
        connection, _ = server.accept()
        with connection, contextlib.suppress(OSError):
            serve(connection)
    thread = threading.Thread(target=accept)
    thread.start()
    try:
        yield
    finally:
        thread.join(timeout=10)
        server.close()


def starttls_by_sni(chains: dict[str, tuple], default: tuple, server_names: list[str]):
    """A `serve` that offers STARTTLS and presents `chains[SNI]` ((chain file, key file)), else `default`;
    the SNI names it receives are appended to `server_names`."""
    contexts = {}
    for name, files in [*chains.items(), ("", default)]:
        contexts[name] = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        contexts[name].load_cert_chain(*files)

    def choose(connection, name, _context):
        server_names.append(name)
        connection.context = contexts.get(name, contexts[""])
    contexts[""].sni_callback = choose

    def serve(connection):
        connection.sendall(b"220 mx ESMTP\r\n")
        connection.recv(1024)
        connection.sendall(b"250-mx\r\n250 STARTTLS\r\n")
        connection.recv(1024)
        connection.sendall(b"220 go ahead\r\n")
        contexts[""].wrap_socket(connection, server_side=True).close()
    return serve
