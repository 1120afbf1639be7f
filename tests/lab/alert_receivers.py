"""Where alerts arrive in tests: a real SMTP server (aiosmtpd) with STARTTLS and AUTH on loopback,
and an HTTP server that checks each webhook's signature and can fail on purpose."""

import contextlib
import email
import email.policy
import hashlib
import hmac
import json
import ssl
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.lab.pki import TestCA
from tests.support.servers import free_port

SMTP_USER, SMTP_PASSWORD = "alerts@provider.example", "relay password"


@dataclass
class Mailbox:
    """What the SMTP server received: (envelope recipients, parsed message) in order."""

    port: int
    cafile: Path
    messages: list = field(default_factory=list)

    def to(self, address: str) -> list:
        return [message for recipients, message in self.messages if address in recipients]


class _Handler:
    def __init__(self, box: Mailbox):
        self.box = box

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        self.box.messages.append((list(envelope.rcpt_tos), message))
        return "250 OK"


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == SMTP_USER.encode() and auth_data.password == SMTP_PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@contextlib.contextmanager
def smtp_server(folder: Path, ca: TestCA):
    """An SMTP submission server on localhost that requires STARTTLS, then AUTH."""
    leaf, key = ca.issue("localhost")
    chain, key_file = ca.write_server(folder, "smtp", leaf, key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(chain, key_file)
    box = Mailbox(free_port(), ca.write_root(folder / "root.pem"))
    controller = Controller(_Handler(box), hostname="127.0.0.1", port=box.port, server_hostname="localhost",
                            tls_context=context, require_starttls=True, authenticator=_authenticate,
                            auth_require_tls=True, auth_exclude_mechanism=["CRAM-MD5", "LOGIN"])
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


@dataclass
class Hook:
    """What the webhook server received, and how it answers: `fail_first` requests get a 500."""

    url: str
    secret: str = ""
    fail_first: int = 0
    requests: list = field(default_factory=list)  # (headers, body) of every request
    bodies: list = field(default_factory=list)  # the JSON of the requests answered 200
    bad_signatures: int = 0


@contextlib.contextmanager
def webhook_server():
    port = free_port()
    hook = Hook(f"http://127.0.0.1:{port}/hooks/alerts")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            hook.requests.append((dict(self.headers), body))
            timestamp = self.headers.get("X-Stspolicy-Timestamp", "")
            expected = "sha256=" + hmac.new(hook.secret.encode(), timestamp.encode() + b"." + body,
                                            hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, self.headers.get("X-Stspolicy-Signature", "")):
                hook.bad_signatures += 1
                status = 401
            elif len(hook.requests) <= hook.fail_first:
                status = 500
            else:
                hook.bodies.append(json.loads(body))
                status = 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        server.shutdown()
        server.server_close()
