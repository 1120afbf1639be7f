"""GET /api/v1/domains/<name>/findings: the domain's findings, through the API blueprint's token and tenancy."""

from datetime import datetime

from flask import g, request

from reports.review.finding_queries import RangeError, finding_range, load_findings
from reports.review.findings import KINDS, RECEIVER, SENDER
from reports.review.reading import review_session
from stspolicy.accounts.service import domain_for_user
from stspolicy.extensions import db, utcnow
from stspolicy.web.api import openapi
from stspolicy.web.api.views import QUERY_PARAMETERS
from stspolicy.web.api.views import bp as api
from stspolicy.web.errors import api_error

MAX_TIME_LENGTH = 40


@api.get("/domains/<name>/findings")
def domain_findings(name):
    domain = domain_for_user(db.session, g.api_user, name)
    try:
        since, until = finding_range(_time("since"), _time("until"), utcnow())
    except RangeError as error:
        return api_error(422, error.message, error.field)
    found = load_findings(review_session(), [domain.name], since=since, until=until)
    return {"domain": domain.name, "since": since.isoformat(), "until": until.isoformat(),
            "findings": [finding.as_dict() for finding in found]}


def _time(field: str) -> datetime | None:
    """A query parameter as a date or an RFC 3339 date and time; RangeError names it when it is neither."""
    text = request.args.get(field)
    if text is None:
        return None
    try:
        if len(text) > MAX_TIME_LENGTH:
            raise ValueError
        return datetime.fromisoformat(text)
    except ValueError:
        raise RangeError(field, f"{field} must be a date (2026-12-01) or a date and time (2026-12-01T00:00:00Z)") \
            from None


QUERY_PARAMETERS["api.domain_findings"] = {"since", "until"}

TIME = {"type": "string", "maxLength": MAX_TIME_LENGTH, "description": "a date or an RFC 3339 date and time; UTC "
                                                                        "when it has no zone"}
ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
openapi.CONTRIBUTED_SCHEMAS["Finding"] = {
    "type": "object", "required": ["kind", "domain", "side", "since", "until", "evidence", "fix"],
    "properties": {
        "kind": {"type": "string", "enum": list(KINDS)}, "domain": {"type": "string"},
        "side": {"type": "string", "enum": [RECEIVER, SENDER],
                 "description": "receiver: two or more organisations report the same result type for the same MX; "
                                "sender: one alone"},
        "since": openapi.TIMESTAMP, "until": openapi.TIMESTAMP,
        "evidence": {"type": "object", "description": "organisations, counts, MX hosts, IPs, versions, records"},
        "fix": {"type": "string", "description": "what to do, in plain words (quotes report fields verbatim)"},
    },
}
openapi.CONTRIBUTED_PATHS["/domains/{name}/findings"] = {
    "parameters": [openapi.NAME],
    "get": {
        "summary": "What the domain's reports, policy versions and DNS checks say together: findings with a fix",
        "parameters": [
            {"name": "since", "in": "query", "required": False, "schema": TIME,
             "description": "from (default: 30 days before until)"},
            {"name": "until", "in": "query", "required": False, "schema": TIME, "description": "to (default: now)"},
        ],
        "responses": {
            "200": {"description": "the findings of the range", "content": {"application/json": {"schema": {
                "type": "object", "required": ["domain", "since", "until", "findings"],
                "properties": {"domain": {"type": "string"}, "since": openapi.TIMESTAMP, "until": openapi.TIMESTAMP,
                               "findings": {"type": "array",
                                            "items": {"$ref": "#/components/schemas/Finding"}}}}}}},
            "400": {"description": "a query parameter holds a NUL character", "content": ERROR},
            "422": {"description": "since or until is not a time, out of range, or since is not before until",
                    "content": ERROR},
            **openapi.READ_ERRORS,
        },
    },
}
