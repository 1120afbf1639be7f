"""`POST /tlsrpt` and `POST /tlsrpt/<token>`: reports over HTTPS (RFC 8460 section 5.4).

201 stored, 200 already stored, 202 stored as a conflicting copy (README, "Copies of a report"),
400 malformed (the JSON path named), 404 unknown token, 405 another method, 413 too large,
415 other media types, 422 not about a domain hosted here (or under the token), 429 rate
limited, 503 database unavailable so the sender retries.

Like the policy hosts (stspolicy/wellknown.py), these requests never reach Flask: a small
WSGI front answers them. A report needs nothing Flask adds to a request (cookie session,
sign-in, CSRF, page headers), and that machinery cost as much CPU as storing the report.
"""

import logging
import re
import time
from http import HTTPStatus

import msgspec
from flask import Flask, current_app, has_app_context
from limits import parse
from limits.storage import MemoryStorage
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from werkzeug.exceptions import ClientDisconnected
from werkzeug.http import parse_options_header
from werkzeug.wsgi import get_input_stream

from reports.ingest import DATABASE_ERRORS, ingest_report, settings_from_config
from reports.models import ReportToken
from reports.parsing.body import MEDIA_TYPES, ReportError, ReportTooLarge, media_type_notes
from reports.storage import CONFLICT, STORED
from stspolicy.base.counters import record_report_refused
from stspolicy.extensions import db, limiter

log = logging.getLogger(__name__)

INTAKE_PATH = "/tlsrpt"
# Declared by lax senders instead of RFC 8460 section 5.4's types; accepted, and noted on the stored report.
LAX_MEDIA_TYPES = ("application/json", "application/gzip", "application/x-gzip", "application/octet-stream")
DATABASE_RETRY_SECONDS = "300"
SHARED_STORAGE_RETRY_SECONDS = 30
TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")
# /metrics reasons of the refusals made before a report is read (ingest_report counts the others).
REFUSAL_REASONS = {400: ReportError.reason, 404: "unknown_token", 405: "method", 413: ReportTooLarge.reason,
                   415: "media_type", 429: "rate_limited", 503: "database_unavailable"}


class Refused(Exception):
    """A request refused for what it is, not for what its report says: status, message, headers."""

    def __init__(self, status: int, message: str, headers: tuple = ()):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers


class ReportIntake:
    """The WSGI front for the intake paths; every other request goes on to `wsgi_app`."""

    def __init__(self, wsgi_app, app: Flask):
        self._wsgi_app = wsgi_app
        self._app = app
        self._settings = app.extensions["tlsrpt_settings"]
        self._rate_limit = parse(app.config["TLSRPT_RATE_LIMIT"])
        self._detail_limit = parse(app.config["TLSRPT_FAILURE_DETAIL_LIMIT"])
        self._rate_limiter = limiter.limiter  # the storage RATELIMIT_STORAGE_URI names, shared with sign-in
        self._fallback_limiter = type(self._rate_limiter)(MemoryStorage())
        self._shared_storage_retry_at = 0.0
        self._max_body = app.config["TLSRPT_MAX_COMPRESSED_BYTES"]

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == INTAKE_PATH:
            token = None
        elif path.startswith(INTAKE_PATH + "/") and path.count("/") == 2 and len(path) > len(INTAKE_PATH) + 1:
            # Decoded as werkzeug does: WSGI carries the path as latin-1 characters of its UTF-8 bytes.
            path = path.encode("latin-1").decode("utf-8", "replace")
            token = path[len(INTAKE_PATH) + 1:]
        else:
            return self._wsgi_app(environ, start_response)
        started = time.perf_counter()
        try:
            if environ.get("REQUEST_METHOD") != "POST":
                raise Refused(405, "POST a report here", (("Allow", "POST"),))
            address = environ.get("REMOTE_ADDR") or "127.0.0.1"
            self._check_rate(address)
            if has_app_context() and current_app._get_current_object() is self._app:
                # One already pushed for this app (a test, a shell) is used as Flask would, and
                # its session is left as it was: no autocommit, which would outlast this request.
                status, payload = self._receive(environ, path, token, address, autocommit=False)
            else:
                with self._app.app_context():  # db.session is the app context's, removed with it
                    status, payload = self._receive(environ, path, token, address, autocommit=True)
        except Refused as refused:
            record_report_refused("https", REFUSAL_REASONS[refused.status], time.perf_counter() - started)
            return _answer(start_response, refused.status, {"error": refused.message}, refused.headers)
        return _answer(start_response, status, payload)

    def _check_rate(self, address: str) -> None:
        if not self._hit(self._rate_limit, INTAKE_PATH, address):
            raise Refused(429, f"too many reports from this address ({self._rate_limit}), try again later",
                          (("Retry-After", str(self._rate_limit.get_expiry())),))

    def _admit(self, address: str):
        """What a report may cost an address: its failure details (the bulk of the work of storing
        it) are counted against TLSRPT_FAILURE_DETAIL_LIMIT before anything is stored."""

        def admit(report) -> None:
            details = sum(len(block.failure_details) for block in report.policies)
            if details > self._detail_limit.amount:
                raise Refused(413, f"{details} failure details, more than one address may send "
                                   f"({self._detail_limit})")
            if details and not self._hit(self._detail_limit, "failure-details", address, details):
                raise Refused(429, f"too many failure details from this address ({self._detail_limit}), "
                                   "try again later", (("Retry-After", str(self._detail_limit.get_expiry())),))

        return admit

    def _hit(self, limit, key: str, address: str, cost: int = 1) -> bool:
        """Counted in the shared storage; while it is unreachable, in this worker alone: a limit
        that holds per worker for a while beats refusing every report with a 500."""
        shared = time.monotonic() >= self._shared_storage_retry_at
        try:
            return (self._rate_limiter if shared else self._fallback_limiter).hit(limit, key, address, cost=cost)
        except Exception as error:  # whatever the storage's client raises (Redis: ConnectionError, TimeoutError)
            log.warning("rate limit storage unreachable, counting in this worker for %ss: %s",
                        SHARED_STORAGE_RETRY_SECONDS, error)
            self._shared_storage_retry_at = time.monotonic() + SHARED_STORAGE_RETRY_SECONDS
            return self._fallback_limiter.hit(limit, key, address, cost=cost)

    def _receive(self, environ, path: str, token: str | None, address: str, autocommit: bool) -> tuple[int, dict]:
        """Status and JSON answer about the report; Refused when there is none to give."""
        try:
            allowed_domains = None if token is None else _token_domains(_session(autocommit), token)
            media_type = parse_options_header(environ.get("CONTENT_TYPE", ""))[0].lower()
            if media_type not in MEDIA_TYPES + LAX_MEDIA_TYPES:
                raise Refused(415, f"unsupported media type {media_type or '(none)'!r}: "
                                   f"use {' or '.join(MEDIA_TYPES)}")
            body = _read_body(environ, self._max_body)
            notes = media_type_notes("https", media_type, body)
            if encoding := environ.get("HTTP_CONTENT_ENCODING"):  # a gzip body is told by its bytes
                notes.append(f"https: Content-Encoding {encoding[:64]}")
            outcome = ingest_report(
                _session(autocommit), body, self._settings, source="https", allowed_domains=allowed_domains,
                source_detail=f"{address} {path}", notes=notes, admit=self._admit(address),
            )
        except ReportError as error:
            payload = {"error": error.message}
            if error.path is not None:
                payload["path"] = error.path
            return error.status, payload
        except DATABASE_ERRORS as error:
            db.session.rollback()
            log.warning("report refused, database unavailable: %s", error)
            raise Refused(503, "database unavailable, try again later",
                          (("Retry-After", DATABASE_RETRY_SECONDS),)) from None
        report = outcome.report
        payload = {"status": outcome.status, "organization_name": report.organization_name,
                   "report_id": report.report_id}
        if outcome.status == CONFLICT:
            payload["message"] = "another copy of this report, with other content, is stored: both are kept for review"
        return {STORED: 201, CONFLICT: 202}.get(outcome.status, 200), payload


def _session(autocommit: bool) -> Session:
    """db.session; with `autocommit`, on PostgreSQL, unless a transaction is open on it or on the
    connection it is bound to, in autocommit.

    There a report is one statement (storage.py), a transaction of its own: autocommit saves
    the BEGIN and COMMIT round trips, about 0.4 ms of CPU per report between worker and server.
    """
    session = db.session()
    bind = session.get_bind()
    if autocommit and not session.in_transaction() and isinstance(bind, Engine) and bind.dialect.name == "postgresql":
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return session


def _token_domains(session: Session, token: str) -> list[str]:
    # Tokens are URL-safe base64 (reports.tokens.create_report_token): anything else is unknown without a query.
    found = session.scalar(select(ReportToken).where(ReportToken.token == token)) if TOKEN.fullmatch(token) else None
    if found is None:
        raise Refused(404, "unknown report URL")
    return [domain.name for domain in found.domains]


def _read_body(environ, limit: int) -> bytes:
    """At most `limit` bytes, read as werkzeug would (a chunked body only where the server ends it)."""
    declared = environ.get("CONTENT_LENGTH")
    length = int(declared) if declared and declared.isascii() and declared.isdigit() else None
    if length is not None and length > limit:
        raise Refused(413, f"body larger than {limit} bytes")
    try:
        body = get_input_stream(environ).read(limit + 1)
    except ClientDisconnected:  # werkzeug's own servers
        raise Refused(400, "the body ended before its Content-Length") from None
    if len(body) > limit:
        raise Refused(413, f"body larger than {limit} bytes")
    if length is not None and len(body) < length:  # gunicorn hands over what came before the sender closed
        raise Refused(400, f"the body ended after {len(body)} of the {length} bytes of its Content-Length")
    return body


def _answer(start_response, status: int, payload: dict, headers: tuple = ()):
    body = msgspec.json.encode(payload) + b"\n"
    start_response(f"{status} {HTTPStatus(status).phrase}", [
        ("Content-Type", "application/json"), ("Content-Length", str(len(body))), *headers,
    ])
    return [body]


def init_app(app: Flask) -> None:
    app.extensions["tlsrpt_settings"] = settings_from_config(app.config)  # once: it keeps the hosted domains
    app.wsgi_app = ReportIntake(app.wsgi_app, app)
