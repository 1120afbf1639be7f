"""The review's API routes. They join the API blueprint: bearer tokens, no cookies, tenancy through
`domain_for_user`, unknown query parameters refused; described in its OpenAPI document.

/domains/<name>/reports (filters, pages), /domains/<name>/reports/<id> and its /raw body, and
/domains/<name>/failures grouped by any of day, policy_type, result_type, mx, org and ip.
"""

from datetime import UTC, datetime

from flask import abort, g, jsonify, request

from reports.review.documents import group_document, report_document, report_row
from reports.review.filters import DIMENSIONS, PARAMETERS, POLICY_TYPES, FilterError, parse_dimensions, parse_filters
from reports.review.listing import DEFAULT_PER_PAGE, MAX_PER_PAGE, report_of, reports_of
from reports.review.pages import raw_response
from reports.review.reading import review_session
from reports.review.rollups import failure_groups
from stspolicy.accounts.service import domain_for_user, visible_domains
from stspolicy.extensions import db
from stspolicy.web.api import openapi
from stspolicy.web.api.views import QUERY_PARAMETERS, InvalidInput
from stspolicy.web.api.views import bp as api

API_DETAILS_LIMIT = 1000  # failure details per block in a report's JSON; /raw has them all
MAX_GROUPS = 10_000


def _filters():
    try:
        return parse_filters(request.args, datetime.now(UTC).date())
    except FilterError as error:
        raise InvalidInput(422, error.message, error.field) from None


def _positive(name: str, default: int, maximum: int) -> int:
    text = request.args.get(name)
    if text is None:
        return default
    if not text.isdigit() or len(text) > 9 or not 1 <= int(text) <= maximum:
        raise InvalidInput(422, f"{name} must be an integer from 1 to {maximum}", name)
    return int(text)


def _visible_ids() -> set[int] | None:
    return None if g.api_user.is_admin else {domain.id for domain in visible_domains(db.session, g.api_user)}


@api.get("/domains/<name>/reports")
def review_reports(name):
    domain = domain_for_user(db.session, g.api_user, name)
    filters = _filters()
    found = reports_of(review_session(), domain.id, filters, _positive("page", 1, 10**6),
                       _positive("per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE))
    return jsonify(reports=[report_row(row) for row in found.rows], page=found.page, per_page=found.per_page,
                   total=found.total, since=filters.since.isoformat(), until=filters.until.isoformat())


@api.get("/domains/<name>/reports/<int(max=2147483647):report_id>")
def review_report(name, report_id):
    domain = domain_for_user(db.session, g.api_user, name)
    shown = report_of(review_session(), report_id, domain.id, _visible_ids(), API_DETAILS_LIMIT)
    if shown is None:
        abort(404)
    return jsonify(report_document(shown))


@api.get("/domains/<name>/reports/<int(max=2147483647):report_id>/raw")
def review_report_raw(name, report_id):
    domain = domain_for_user(db.session, g.api_user, name)
    shown = report_of(review_session(), report_id, domain.id, _visible_ids(), details_limit=0)
    if shown is None:
        abort(404)
    if not shown.raw_allowed:
        abort(403, "this report is also about domains this account may not see")
    return raw_response(shown.report)


@api.get("/domains/<name>/failures")
def review_failures(name):
    domain = domain_for_user(db.session, g.api_user, name)
    filters = _filters()
    try:
        by = parse_dimensions(request.args.get("by", "result_type"))
    except FilterError as error:
        raise InvalidInput(422, error.message, error.field) from None
    groups = failure_groups(review_session(), [domain.id], filters, by)
    return jsonify(by=list(by), since=filters.since.isoformat(), until=filters.until.isoformat(),
                   groups=[group_document(by, group) for group in groups[:MAX_GROUPS]],
                   truncated=len(groups) > MAX_GROUPS)


QUERY_PARAMETERS.update({
    "api.review_reports": {*PARAMETERS, "page", "per_page"},
    "api.review_failures": {*PARAMETERS, "by"},
})

# The OpenAPI document.

DAY = {"type": "string", "format": "date"}
TEXT = {"type": "string", "maxLength": 256}
FILTERS = [
    {"name": "since", "in": "query", "schema": DAY, "description": "first UTC day (default: 29 days before until)"},
    {"name": "until", "in": "query", "schema": DAY, "description": "last UTC day (default: today)"},
    {"name": "policy_type", "in": "query", "schema": {"type": "string", "enum": list(POLICY_TYPES)}},
    {"name": "result_type", "in": "query", "schema": TEXT},
    {"name": "mx", "in": "query", "schema": TEXT, "description": "receiving MX host name"},
    {"name": "org", "in": "query", "schema": TEXT, "description": "reporting organisation, as it names itself"},
    {"name": "ip", "in": "query", "schema": TEXT, "description": "sending MTA's address"},
]
REPORT_ID = {"name": "report_id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
             "description": "the report's id here (`id` in a listing)"}
NULLABLE_TEXT = {"type": ["string", "null"]}
COUNT = {"type": "integer", "minimum": 0}
TIMESTAMP = openapi.TIMESTAMP

openapi.CONTRIBUTED_SCHEMAS |= {
    "ReportRow": {
        "type": "object",
        "required": ["id", "organization_name", "report_id", "day", "start_datetime", "end_datetime", "received_at",
                     "source", "policy_types", "successful_session_count", "failed_session_count"],
        "properties": {
            "id": {"type": "integer"}, "organization_name": {"type": "string"}, "report_id": {"type": "string"},
            "day": DAY, "start_datetime": TIMESTAMP, "end_datetime": TIMESTAMP, "received_at": TIMESTAMP,
            "source": {"type": "string"}, "policy_types": {"type": "array", "items": {"type": "string"}},
            "successful_session_count": COUNT, "failed_session_count": COUNT,
        },
    },
    "FailureDetail": {
        "type": "object", "required": ["result_type", "failed_session_count"],
        "properties": {"result_type": {"type": "string"}, "failed_session_count": COUNT,
                       **{name: NULLABLE_TEXT for name in ("sending_mta_ip", "receiving_ip", "receiving_mx_hostname",
                                                           "receiving_mx_helo", "additional_information",
                                                           "failure_reason_code")}},
    },
    "ReportPolicy": {
        "type": "object",
        "required": ["policy_type", "policy_domain", "policy_strings", "mx_hosts", "successful_session_count",
                     "failed_session_count", "hosted_domain", "policy_match", "policy_id", "failure_detail_count",
                     "failure_details"],
        "properties": {
            "policy_type": {"type": "string"}, "policy_domain": NULLABLE_TEXT,
            "policy_strings": {"type": "array", "items": {"type": "string"}},
            "mx_hosts": {"type": "array", "items": {"type": "string"}},
            "successful_session_count": COUNT, "failed_session_count": COUNT, "hosted_domain": NULLABLE_TEXT,
            "policy_match": {"type": "string"},
            "policy_id": {**NULLABLE_TEXT, "description": "our policy version the sender applied"},
            "failure_detail_count": COUNT,
            "failure_details": {"type": "array", "items": {"$ref": "#/components/schemas/FailureDetail"},
                                "description": f"the first {API_DETAILS_LIMIT}; /raw has them all"},
        },
    },
    "Report": {
        "type": "object",
        "required": ["id", "organization_name", "report_id", "contact_info", "start_datetime", "end_datetime",
                     "received_at", "source", "source_detail", "sha256", "dkim_result", "notes", "hidden_policies",
                     "policies"],
        "properties": {
            "id": {"type": "integer"}, "organization_name": {"type": "string"}, "report_id": {"type": "string"},
            "contact_info": NULLABLE_TEXT, "start_datetime": TIMESTAMP, "end_datetime": TIMESTAMP,
            "received_at": TIMESTAMP, "source": {"type": "string"}, "source_detail": NULLABLE_TEXT,
            "sha256": {"type": "string"}, "dkim_result": NULLABLE_TEXT,
            "notes": {"type": "array", "items": {"type": "string"}},
            "hidden_policies": {**COUNT, "description": "blocks about domains this account may not see"},
            "policies": {"type": "array", "items": {"$ref": "#/components/schemas/ReportPolicy"}},
        },
    },
}


def _error(description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": {
        "$ref": "#/components/schemas/Error"}}}}


LIST_ERRORS = openapi.READ_ERRORS | {"400": _error("the query holds a NUL character"),
                                     "422": _error("a query parameter is invalid; `field` names it")}
RAW_ERRORS = openapi.READ_ERRORS | {"403": _error("the report is also about domains this account may not see")}
openapi.CONTRIBUTED_PATHS |= {
    "/domains/{name}/reports": {
        "parameters": [openapi.NAME],
        "get": {
            "summary": "The domain's reports, newest day first, a page at a time; the filters combine",
            "parameters": [*FILTERS,
                           {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                      "maximum": 10**6}},
                           {"name": "per_page", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                          "maximum": MAX_PER_PAGE}}],
            "responses": {"200": {"description": "a page of reports", "content": {"application/json": {"schema": {
                "type": "object", "required": ["reports", "page", "per_page", "total", "since", "until"],
                "properties": {"reports": {"type": "array", "items": {"$ref": "#/components/schemas/ReportRow"}},
                               "page": {"type": "integer"}, "per_page": {"type": "integer"}, "total": COUNT,
                               "since": DAY, "until": DAY}}}}}, **LIST_ERRORS},
        },
    },
    "/domains/{name}/reports/{report_id}": {
        "parameters": [openapi.NAME, REPORT_ID],
        "get": {"summary": "One report: summary, how it arrived, policy blocks and failure details",
                "responses": {"200": {"description": "the report as this account may see it",
                                      "content": {"application/json": {"schema": {
                                          "$ref": "#/components/schemas/Report"}}}},
                              **openapi.READ_ERRORS}},
    },
    "/domains/{name}/reports/{report_id}/raw": {
        "parameters": [openapi.NAME, REPORT_ID],
        "get": {"summary": "The report's JSON as received, decompressed",
                "responses": {"200": {"description": "the sender's JSON, byte for byte",
                                      "content": {"application/json": {"schema": {}}}},
                              **RAW_ERRORS}},
    },
    "/domains/{name}/failures": {
        "parameters": [openapi.NAME],
        "get": {
            "summary": "Failed sessions of the failure details, grouped, most first; from the daily rollups",
            "parameters": [*FILTERS, {"name": "by", "in": "query", "schema": {"type": "string", "maxLength": 64},
                                      "description": f"comma-separated, any of {', '.join(DIMENSIONS)}",
                                      "example": "result_type,mx"}],
            "responses": {"200": {"description": "the groups", "content": {"application/json": {"schema": {
                "type": "object", "required": ["by", "since", "until", "groups", "truncated"],
                "properties": {"by": {"type": "array", "items": {"type": "string", "enum": list(DIMENSIONS)}},
                               "since": DAY, "until": DAY, "truncated": {"type": "boolean"},
                               "groups": {"type": "array", "items": {
                                   "type": "object", "required": ["failed_session_count"],
                                   "properties": {"failed_session_count": COUNT},
                                   "additionalProperties": {"type": "string"}}}}}}}},
                          **LIST_ERRORS},
        },
    },
}
