"""What every admin, sign-in and API request goes through: the admin host, the user, response headers."""

import hmac

from flask import Flask, abort, current_app, request
from flask.sessions import SecureCookieSessionInterface
from flask_login import current_user

from stspolicy.accounts.models import User
from stspolicy.extensions import db, login_manager
from stspolicy.policies.names import host_without_port

# The pages use only our own stylesheet and script; nothing may frame them.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


ADMIN_AREAS = ("admin", "auth", "api")
MAX_BODY_BYTES = 64 * 1024  # far above any form or API call here; larger bodies get a 413


def guard_admin_areas() -> None:
    """Before anything reads the request (the CSRF check reads forms): the admin UI and API answer
    only on ADMIN_HOSTS, any other Host gets a 404 and never a redirect; bodies are small."""
    if request.blueprint in ADMIN_AREAS:
        if host_without_port(request.host) not in current_app.config["ADMIN_HOSTS"]:
            abort(404)
        request.max_content_length = MAX_BODY_BYTES


def refuse_nul_characters() -> None:
    """A NUL in the path, the query or a form is a 400: no name, e-mail or id holds one, and
    PostgreSQL refuses to compare or store one."""
    values = [request.path, *request.args.keys(), *request.args.values()]
    if request.method in ("POST", "PUT", "PATCH") and request.mimetype in (
            "application/x-www-form-urlencoded", "multipart/form-data"):
        values += [*request.form.keys(), *request.form.values()]
    if any("\x00" in value for value in values):
        abort(400, "The request holds a NUL character.")


def require_login():
    """before_request of the admin pages: a signed-in user, else to the sign-in page."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    return None


def page_headers(response):
    """On every answer of the application, error pages included: it must not rely on nginx adding them."""
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.mimetype == "text/html":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


class SecureWhenHttps(SecureCookieSessionInterface):
    """The session cookie is `Secure` whenever the request came over https (behind nginx, as
    ProxyFix reports it), so it never travels in clear once the site uses TLS."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return request.is_secure or super().get_cookie_secure(app)


@login_manager.user_loader
def _load_user(session_id: str) -> User | None:
    user_id = session_id.partition(":")[0]
    user = db.session.get(User, int(user_id)) if user_id.isdigit() else None
    return user if user is not None and hmac.compare_digest(user.get_id(), session_id) else None


def init_app(app: Flask) -> None:
    """Call before CSRFProtect and the limiter are bound, so that the guard runs first."""
    app.before_request(guard_admin_areas)
    app.before_request(refuse_nul_characters)
    app.after_request(page_headers)
    app.session_interface = SecureWhenHttps()
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Please sign in."
