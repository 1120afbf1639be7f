"""The OpenAPI 3 description of /api/v1; tests hold the implementation to it (schemathesis)."""

from stspolicy.policies.rules import MAX_AGE_LIMIT, MAX_MX_PATTERNS, MODES

STRING = {"type": "string", "maxLength": 255}
MX = {"type": "array", "items": STRING, "maxItems": MAX_MX_PATTERNS}
MAX_AGE = {"type": "integer", "minimum": 0, "maximum": MAX_AGE_LIMIT}
MODE = {"type": "string", "enum": list(MODES)}
TIMESTAMP = {"type": "string", "format": "date-time"}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _error(description: str) -> dict:
    return {"description": description, **_json(_ref("Error"))}


ERRORS = {
    "401": _error("no valid token"),
    "413": _error("the body is larger than 64 KiB"),
}
READ_ERRORS = ERRORS | {"404": _error("not hosted, or not visible to this token's account")}
WRITE_ERRORS = READ_ERRORS | {
    "400": _error("the body is not a JSON object"),
    "403": _error("the account may see but not change this"),
    "415": _error("the body is not JSON"),
    "422": _error("a field is invalid; `field` names it"),
    "502": _error("the change is saved and served, but writing its id to DNS failed"),
}
NAME = {"name": "name", "in": "path", "required": True, "description": "the domain, A-label or U-label",
        "schema": {"type": "string", "maxLength": 253}, "example": "example.com"}


def _listing(key: str, schema: str) -> dict:
    """A 200 answer `{key: [schema, ...]}`."""
    return {"description": f"the {key}", **_json({
        "type": "object", "required": [key], "properties": {key: {"type": "array", "items": _ref(schema)}},
    })}


def _body(properties: dict, required: list[str]) -> dict:
    return {"required": True, **_json({
        "type": "object", "properties": properties, "required": required, "additionalProperties": False,
    })}


SCHEMAS = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message", "field"],
            "properties": {
                "code": {"type": "string"}, "message": {"type": "string"},
                "field": {"type": ["string", "null"]},
                "concerns": {"type": "array", "items": {"type": "string"}},
            },
        }},
    },
    "DnsRecord": {
        "type": "object", "required": ["name", "type", "value", "ttl"],
        "properties": {"name": {"type": "string"}, "type": {"type": "string", "enum": ["TXT", "CNAME", "A", "AAAA"]},
                       "value": {"type": "string"},
                       "ttl": {"type": "integer", "minimum": 0, "description": "seconds, the TTL to publish"}},
    },
    "Domain": {
        "type": "object",
        "required": ["domain", "domain_unicode", "policy_id", "mode", "mx", "max_age", "policy_text", "created_at",
                     "updated_at", "removal_requested_at", "dns_records", "warnings"],
        "properties": {
            "domain": {"type": "string", "description": "A-label form"},
            "domain_unicode": {"type": "string"},
            "policy_id": {"type": "string", "pattern": "^[A-Za-z0-9]{1,32}$"},
            "mode": MODE, "mx": {"type": "array", "items": {"type": "string"}}, "max_age": MAX_AGE,
            "policy_text": {"type": "string", "description": "the exact bytes served, CRLF line ends"},
            "created_at": {**TIMESTAMP, "description": "when the domain was first hosted"},
            "updated_at": {**TIMESTAMP, "description": "when its current policy version was made"},
            "removal_requested_at": {"type": ["string", "null"], "format": "date-time"},
            "dns_records": {"type": "array", "items": _ref("DnsRecord")},
            "changed": {"type": "boolean", "description": "after a change: whether a new version was made"},
            "mx_removal": {
                "type": "object", "required": ["removed", "old_policy_id", "old_policy_until", "message", "scheduled"],
                "description": "after a change that drops mx patterns: until when senders may apply the old policy "
                               "(its max_age plus the _mta-sts TXT TTL), and whether their removal was scheduled",
                "properties": {"removed": {"type": "array", "items": {"type": "string"}},
                               "old_policy_id": {"type": "string"}, "old_policy_until": TIMESTAMP,
                               "message": {"type": "string"}, "scheduled": {"type": "boolean"}},
            },
            "warnings": {"type": "array", "description": "what RFC 8461 advises against in the policy",
                         "items": {"type": "object", "required": ["field", "message"],
                                   "properties": {"field": {"type": "string"}, "message": {"type": "string"}}}},
        },
    },
    "Version": {
        "type": "object",
        "required": ["policy_id", "mode", "mx", "max_age", "policy_text", "created_at", "created_by"],
        "properties": {
            "policy_id": {"type": "string"}, "mode": MODE, "mx": {"type": "array", "items": {"type": "string"}},
            "max_age": MAX_AGE, "policy_text": {"type": "string"}, "created_at": TIMESTAMP,
            "created_by": {"type": "string"},
        },
    },
    "Event": {
        "type": "object", "required": ["created_at", "actor", "action", "description"],
        "properties": {"created_at": TIMESTAMP, "actor": {"type": "string"}, "action": {"type": "string"},
                       "description": {"type": "string"}},
    },
    "Node": {
        "type": "object",
        "required": ["name", "state", "applied_revision", "revisions_behind", "seen_at", "seen_seconds_ago",
                     "applied_at", "started_at", "policies", "certificates", "last_error"],
        "properties": {
            "name": {"type": "string"},
            "state": {"type": "string", "enum": ["current", "behind", "silent"],
                      "description": "silent: not seen for NODE_SILENT_SECONDS"},
            "applied_revision": {"type": "integer", "description": "the revision its files say"},
            "revisions_behind": {"type": "integer", "minimum": 0},
            "seen_at": TIMESTAMP, "seen_seconds_ago": {"type": "number"},
            "applied_at": {"type": ["string", "null"], "format": "date-time"}, "started_at": TIMESTAMP,
            "policies": {"type": "integer"}, "certificates": {"type": "integer"},
            "last_error": {"type": ["string", "null"]},
        },
    },
    "Removal": {
        "type": "object", "required": ["state", "deletable_at", "policy_id"],
        "properties": {
            "state": {"type": "string", "enum": ["started", "pending", "deleted"]},
            "deletable_at": {"type": ["string", "null"], "format": "date-time"},
            "policy_id": {"type": ["string", "null"]},
        },
    },
}

# What routes that other packages add to this API document (the alerts' rules): added when they are imported.
CONTRIBUTED_PATHS: dict = {}
CONTRIBUTED_SCHEMAS: dict = {}

DOMAIN = {"description": "the domain and its current policy", **_json(_ref("Domain"))}
CONFIRM_ENFORCE = {"type": "boolean", "description": "confirm a switch to enforce; without it such a change is "
                                                      "refused with 409 and `concerns`, what argues against it"}
SCHEDULE_MX_REMOVAL = {"type": "boolean", "description": "keep the mx patterns this change drops until senders' "
                       "copies of the current policy expire, and remove them then (the safe sequence)"}
UNCONFIRMED = {"description": "a switch to enforce without confirm_enforce: `concerns` lists what argues against it",
               **_json(_ref("Error"))}


def openapi_document() -> dict:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "stspolicy API", "version": "1",
            "description": "Hosted MTA-STS domains and their policies. Every change publishes a new policy "
                           "version with a new id. Errors are {\"error\": {\"code\", \"message\", \"field\"}}.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer",
                                           "description": "`flask token create --user EMAIL`, or the API tokens page"}},
            "schemas": SCHEMAS | CONTRIBUTED_SCHEMAS,
        },
        "paths": {
            "/domains": {
                "get": {
                    "summary": "The domains this token's account may see",
                    "responses": {"200": _listing("domains", "Domain"), **ERRORS},
                },
                "post": {
                    "summary": "Host a new domain (admins)",
                    "requestBody": _body({"domain": {"type": "string", "maxLength": 253}, "mode": MODE, "mx": MX,
                                          "max_age": MAX_AGE}, ["domain", "mx"]),
                    "responses": {"201": DOMAIN, "409": _error("already hosted"), **WRITE_ERRORS},
                },
            },
            "/domains/{name}": {
                "parameters": [NAME],
                "get": {"summary": "A domain and its current policy", "responses": {"200": DOMAIN, **READ_ERRORS}},
                "patch": {
                    "summary": "Change some policy fields; the others stay",
                    "requestBody": _body({"mode": MODE, "mx": MX, "max_age": MAX_AGE,
                                          "confirm_enforce": CONFIRM_ENFORCE,
                                          "schedule_mx_removal": SCHEDULE_MX_REMOVAL}, []),
                    "responses": {"200": DOMAIN, "409": UNCONFIRMED, **WRITE_ERRORS},
                },
                "delete": {
                    "summary": "Remove (RFC 8461 section 8.3): serve mode none first, delete once caches expired",
                    "parameters": [{"name": "force", "in": "query", "required": False,
                                    "schema": {"type": "string", "enum": ["true", "false"]},
                                    "description": "delete at once"}],
                    "responses": {"200": {"description": "where the removal stands", **_json(_ref("Removal"))},
                                  **WRITE_ERRORS},
                },
            },
            "/domains/{name}/policy": {
                "parameters": [NAME],
                "put": {
                    "summary": "Replace the whole policy",
                    "requestBody": _body({"mode": MODE, "mx": MX, "max_age": MAX_AGE,
                                          "confirm_enforce": CONFIRM_ENFORCE,
                                          "schedule_mx_removal": SCHEDULE_MX_REMOVAL}, ["mode", "mx", "max_age"]),
                    "responses": {"200": DOMAIN, "409": UNCONFIRMED, **WRITE_ERRORS},
                },
            },
            "/domains/{name}/versions": {
                "parameters": [NAME],
                "get": {
                    "summary": "Policy versions, newest first",
                    "responses": {"200": _listing("versions", "Version"), **READ_ERRORS},
                },
            },
            "/domains/{name}/rollback": {
                "parameters": [NAME],
                "post": {
                    "summary": "Serve an earlier version's policy again, under a new policy id",
                    "requestBody": _body({"policy_id": {"type": "string", "maxLength": 255},
                                          "confirm_enforce": CONFIRM_ENFORCE}, ["policy_id"]),
                    "responses": {"200": DOMAIN, "409": UNCONFIRMED, **WRITE_ERRORS},
                },
            },
            "/domains/{name}/events": {
                "parameters": [NAME],
                "get": {
                    "summary": "The audit log, newest first; members see policy and DNS events, admins all",
                    "responses": {"200": _listing("events", "Event"), **READ_ERRORS},
                },
            },
            "/domains/{name}/dns-records": {
                "parameters": [NAME],
                "get": {
                    "summary": "The DNS records to publish for the current policy",
                    "responses": {"200": _listing("records", "DnsRecord"), **READ_ERRORS},
                },
            },
            "/nodes": {
                "get": {
                    "summary": "The serving nodes and the revision each serves (admins)",
                    "responses": {"200": {"description": "the current revision and the nodes", **_json({
                        "type": "object", "required": ["revision", "nodes"],
                        "properties": {"revision": {"type": "integer"},
                                       "nodes": {"type": "array", "items": _ref("Node")}},
                    })}, "403": _error("only admins"), **ERRORS},
                },
            },
            **CONTRIBUTED_PATHS,
        },
    }
