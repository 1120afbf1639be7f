"""`POST /tlsrpt` and `POST /tlsrpt/<token>`: reports over HTTPS (RFC 8460 section 5.4).

201 stored, 200 already stored, 400 malformed (the JSON path named), 404 unknown token,
413 too large, 415 other media types, 422 not about a domain hosted here (or under the
token), 429 rate limited, 503 database unavailable so the sender retries.
"""

import logging

from flask import Blueprint, Flask, abort, current_app, jsonify, request
from sqlalchemy import select

from stspolicy.extensions import db, limiter

from .ingest import DATABASE_ERRORS, STORED, ingest_report, settings_from_config
from .models import ReportToken
from .payload import ReportError

log = logging.getLogger(__name__)
bp = Blueprint("intake", __name__)

MEDIA_TYPES = ("application/tlsrpt+gzip", "application/tlsrpt+json")
# Declared by lax senders (HTTPS-01); accepted, and noted on the stored report.
LAX_MEDIA_TYPES = ("application/json", "application/gzip", "application/x-gzip", "application/octet-stream")


def _rate_limit() -> str:
    return current_app.config["TLSRPT_RATE_LIMIT"]


@bp.route("/tlsrpt", methods=["POST"])
@bp.route("/tlsrpt/<token>", methods=["POST"])
@limiter.limit(_rate_limit)
def receive(token: str | None = None):
    allowed_domains = None
    if token is not None:
        allowed_domains = _token_domains(token)
    media_type = request.mimetype
    if media_type not in MEDIA_TYPES + LAX_MEDIA_TYPES:
        return _error(415, f"unsupported media type {media_type or '(none)'!r}: use {' or '.join(MEDIA_TYPES)}")
    notes = [] if media_type in MEDIA_TYPES else [f"https: declared media type {media_type}"]
    body = _read_body(current_app.config["TLSRPT_MAX_COMPRESSED_BYTES"])
    try:
        outcome = ingest_report(
            db.session, body, current_app.extensions["tlsrpt_settings"], source="https",
            allowed_domains=allowed_domains, source_detail=f"{request.remote_addr} {request.path}", notes=notes,
        )
    except ReportError as error:
        return _error(error.status, error.message, error.path)
    report = outcome.report
    status = 201 if outcome.status == STORED else 200
    return jsonify(
        status=outcome.status, organization_name=report.organization_name, report_id=report.report_id
    ), status


def _token_domains(token: str) -> list[str]:
    found = db.session.scalar(select(ReportToken).where(ReportToken.token == token)) if len(token) <= 64 else None
    if found is None:
        abort(_error(404, "unknown report URL"))
    return [domain.name for domain in found.domains]


def _read_body(limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        abort(_error(413, f"body larger than {limit} bytes"))
    body = request.stream.read(limit + 1)
    if len(body) > limit:
        abort(_error(413, f"body larger than {limit} bytes"))
    return body


def _error(status: int, message: str, path: str | None = None):
    payload = {"error": message}
    if path is not None:
        payload["path"] = path
    response = jsonify(payload)
    response.status_code = status
    return response


def _database_unavailable(error):
    db.session.rollback()
    log.warning("report refused, database unavailable: %s", error)
    response = _error(503, "database unavailable, try again later")
    response.headers["Retry-After"] = "300"
    return response


for _error_type in DATABASE_ERRORS:
    bp.register_error_handler(_error_type, _database_unavailable)


@bp.errorhandler(429)
def _rate_limited(error):
    return _error(429, f"too many reports from this address ({error.description}), try again later")


def init_app(app: Flask) -> None:
    app.extensions["tlsrpt_settings"] = settings_from_config(app.config)  # once: it keeps the hosted domains
    app.register_blueprint(bp)
    csrf = app.extensions.get("csrf")
    if csrf is not None:  # reports come from other mail systems, never from our forms
        csrf.exempt(bp)

