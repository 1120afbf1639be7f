"""`/.well-known/mta-sts.txt` for every hosted `mta-sts.<domain>` (RFC 8461 section 3.3)."""

from flask import Blueprint, Flask, Response, current_app, request
from flask.sessions import SecureCookieSessionInterface

from .names import policy_domain_from_host
from .snapshot import SnapshotUnavailable

bp = Blueprint("wellknown", __name__)

POLICY_PATH = "/.well-known/mta-sts.txt"


class NoSessionOnPolicyHosts(SecureCookieSessionInterface):
    """Policy hosts never read or set cookies; skipping the session keeps the hot path short."""

    def open_session(self, app: Flask, request):
        if policy_domain_from_host(request.headers.get("Host")):
            return self.make_null_session(app)
        return super().open_session(app, request)


@bp.before_app_request
def only_the_policy_on_policy_hosts():
    """A policy host serves its policy and nothing else: no pages, no redirects (HTTP-02, HTTP-11)."""
    if request.path != POLICY_PATH and policy_domain_from_host(request.headers.get("Host")):
        return _plain(404, "not found\n")
    return None


@bp.route(POLICY_PATH, methods=["GET"])
def policy_file():
    domain = policy_domain_from_host(request.headers.get("Host"))
    if domain is None:
        return _plain(404, "no MTA-STS policy for this host\n")
    try:
        served = current_app.extensions["policy_snapshot"].get(domain)
    except SnapshotUnavailable:
        return _plain(503, "policies are not loaded yet\n")
    if served is None:
        return _plain(404, "no MTA-STS policy for this host\n")
    # Senders must not cache over HTTP (RFC 8461 section 3.3); intermediaries may revalidate.
    # No 304 or 206: senders only accept a 200 with the whole policy.
    return Response(
        served.body,
        content_type="text/plain; charset=utf-8",
        headers={"ETag": served.etag, "Cache-Control": "no-cache"},
    )


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.session_interface = NoSessionOnPolicyHosts()


def _plain(status: int, text: str) -> Response:
    return Response(text, status=status, content_type="text/plain; charset=utf-8")
