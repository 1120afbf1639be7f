"""The one error handler: JSON under /api/, an HTML page elsewhere (policy hosts never reach Flask)."""

import logging
from http import HTTPStatus

from flask import Flask, Response, flash, g, jsonify, redirect, render_template, request, url_for
from flask_limiter.errors import RateLimitExceeded
from flask_login import current_user
from sqlalchemy.exc import DataError
from werkzeug.exceptions import HTTPException, InternalServerError

from stspolicy.dns.rfc2136 import PublishError
from stspolicy.extensions import DATABASE_UNAVAILABLE, db, login_manager
from stspolicy.policies.errors import DomainError
from stspolicy.policies.files import PolicyFileError

API_PREFIX = "/api/"

ERROR_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 413: "too_large", 415: "unsupported_media_type", 422: "invalid", 429: "rate_limited",
    500: "internal", 502: "dns_update_failed", 503: "database_unavailable",
}
DATABASE_RETRY_SECONDS = "30"

log = logging.getLogger(__name__)


def api_error(status: int, message: str, field: str | None = None, headers: dict | None = None,
              code: str | None = None, **details) -> Response:
    """`{"error": {"code", "message", "field", ...details}}` with `status` (its usual code unless `code`)."""
    response = jsonify(error={"code": code or ERROR_CODES.get(status, "internal"), "message": message,
                              "field": field, **details})
    response.status_code = status
    response.headers.update(headers or {})
    return response


def error_response(status: int, message: str, headers: dict | None = None, field: str | None = None):
    if request.path.startswith(API_PREFIX):
        return api_error(status, message, field, headers)
    name = HTTPStatus(status).phrase
    try:
        current_user.is_authenticated  # noqa: B018  (loads who is signed in, for the page's header)
    except DATABASE_UNAVAILABLE:
        login_manager._update_request_context_with_user()  # shown as to a visitor
    return render_template("error.html", status=status, name=name, message=message), status, headers or {}


def handle_http_error(error: HTTPException):
    status = error.code or 500
    message = error.description if status < 500 else "Something went wrong on our side; it has been logged."
    # Keep what the error says in headers (Allow, Retry-After, WWW-Authenticate), not its body type.
    headers = {name: value for name, value in error.get_headers() if name != "Content-Type"}
    if isinstance(error, RateLimitExceeded):
        headers["Retry-After"] = str(error.limit.limit.get_expiry())  # at most one window away
    return error_response(status, message, headers)


def handle_domain_error(error: DomainError):
    """Views handle the errors of input they show in a form; what reaches here is mostly not found or forbidden."""
    return error_response(error.status, error.message, field=error.field)


def handle_publish_error(error: PublishError):
    """The change is saved and served; only writing its id to DNS failed. Say so, never hide it."""
    if request.path.startswith(API_PREFIX):
        return api_error(502, str(error))
    flash(str(error), "error")
    name = (request.view_args or {}).get("name")
    return redirect(url_for("admin.domain", name=name) if name else url_for("admin.index"))


def handle_policy_file_error(error: PolicyFileError):
    """The change is saved and the app serves it, but nginx's copy could not be written: loud, not generic."""
    if request.path.startswith(API_PREFIX):
        return api_error(500, error.message, code="policy_file_not_written")
    flash(error.message, "error")
    name = (request.view_args or {}).get("name")
    return redirect(url_for("admin.domain", name=name) if name else url_for("admin.index"))


def handle_database_unavailable(error: Exception):
    """Nothing was changed; the client may simply try again."""
    log.warning("answered 503, database unavailable: %s", str(error).partition("\n")[0])
    if "_login_user" not in g:  # the page must not ask the database who is signed in once more
        login_manager._update_request_context_with_user()
    return error_response(503, "The database is unavailable; nothing was changed. Try again shortly.",
                          {"Retry-After": DATABASE_RETRY_SECONDS})


def handle_unstorable_value(error: DataError):
    """A value the database refuses (a NUL character, a number out of range) that no check caught first."""
    db.session.rollback()
    log.warning("refused a value the database cannot store: %s", str(error.orig).partition("\n")[0])
    return error_response(400, "A value in this request cannot be stored.")


def init_app(app: Flask) -> None:
    app.register_error_handler(HTTPException, handle_http_error)
    app.register_error_handler(InternalServerError, handle_http_error)
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(PublishError, handle_publish_error)
    app.register_error_handler(PolicyFileError, handle_policy_file_error)
    for database_error in DATABASE_UNAVAILABLE:
        app.register_error_handler(database_error, handle_database_unavailable)
    app.register_error_handler(DataError, handle_unstorable_value)
