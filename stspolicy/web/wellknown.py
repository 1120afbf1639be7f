"""`/.well-known/mta-sts.txt` for every hosted `mta-sts.<domain>` (RFC 8461 section 3.3).

Requests for a policy host never reach Flask: a small WSGI front answers them from the
in-process snapshot and passes every other host to the application. So a policy host
serves its policy and nothing else (no pages, cookies or redirects: RFC 8461 section 3.3),
and the hot path stays as short as a bare WSGI handler whatever the rest of the app
adds to each request.
"""

from flask import Flask

from stspolicy.base.counters import record_policy_fetch
from stspolicy.policies.names import policy_domain_from_host
from stspolicy.policies.snapshot import PolicySnapshot, SnapshotUnavailable

POLICY_PATH = "/.well-known/mta-sts.txt"
_TEXT = ("Content-Type", "text/plain; charset=utf-8")


class PolicyHosts:
    def __init__(self, wsgi_app, snapshot: PolicySnapshot):
        self._wsgi_app = wsgi_app
        self._snapshot = snapshot

    def __call__(self, environ, start_response):
        domain = policy_domain_from_host(environ.get("HTTP_HOST"))
        if domain is None:
            return self._wsgi_app(environ, start_response)
        try:
            served = self._snapshot.get(domain)
        except SnapshotUnavailable:
            record_policy_fetch(None, 503)
            return _answer(start_response, "503 Service Unavailable", b"policies are not loaded yet\n",
                           [("Retry-After", "5")])
        hosted = domain if served is not None else None
        if environ.get("PATH_INFO") != POLICY_PATH:
            record_policy_fetch(hosted, 404)
            return _answer(start_response, "404 Not Found", b"not found\n")
        method = environ.get("REQUEST_METHOD")
        if method not in ("GET", "HEAD"):
            record_policy_fetch(hosted, 405)
            return _answer(start_response, "405 Method Not Allowed", b"GET or HEAD only\n",
                           [("Allow", "GET, HEAD")])
        if served is None:
            record_policy_fetch(None, 404)
            return _answer(start_response, "404 Not Found", b"no MTA-STS policy for this host\n")
        record_policy_fetch(domain, 200)
        # Senders must not cache over HTTP (section 3.3); intermediaries may revalidate. Never a
        # 304 or 206 either: senders only accept a 200 with the whole policy.
        headers = [_TEXT, ("Content-Length", str(len(served.body))), ("ETag", served.etag),
                   ("Cache-Control", "no-cache")]
        start_response("200 OK", headers)
        return [b""] if method == "HEAD" else [served.body]


def _answer(start_response, status: str, body: bytes, extra: list | None = None):
    start_response(status, [_TEXT, ("Content-Length", str(len(body))), *(extra or [])])
    return [body]


def init_app(app: Flask) -> None:
    app.wsgi_app = PolicyHosts(app.wsgi_app, app.extensions["policy_snapshot"])
