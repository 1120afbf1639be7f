"""/api/v1: the same services and tenancy as the pages, for scripts holding a bearer token.

Requests carry no cookies and need no CSRF token: only the `Authorization` header
authenticates, so another site cannot make a browser call the API.
"""

from flask import Blueprint, Flask, g, jsonify, request, url_for

from stspolicy.accounts.service import domain_for_user, visible_domains
from stspolicy.accounts.tokens import user_for_token
from stspolicy.base.audit import describe, domain_events
from stspolicy.base.settings import current_settings
from stspolicy.dns.publish import domain_summary, published_records
from stspolicy.extensions import csrf, db, utcnow
from stspolicy.nodes.service import node_statuses, serving_revision
from stspolicy.policies.errors import EnforceNotConfirmed
from stspolicy.policies.queries import current_version, current_versions, find_version, recent_versions
from stspolicy.policies.rules import MAX_MX_PATTERNS, PolicyError, make_policy
from stspolicy.policies.service import add_domain, change_policy, planned_mx_removal, remove_domain, rollback_to
from stspolicy.propagation import propagate
from stspolicy.report_figures import enforce_evidence
from stspolicy.web.api.openapi import openapi_document
from stspolicy.web.errors import api_error

bp = Blueprint("api", __name__, url_prefix="/api/v1")

MAX_STRING_LENGTH = 255
VERSIONS_LIMIT = 1000


class InvalidInput(ValueError):
    def __init__(self, status: int, message: str, field: str | None = None):
        super().__init__(message)
        self.status, self.message, self.field = status, message, field


@bp.before_request
def authenticate():
    if request.endpoint == "api.openapi":
        return None
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    found = user_for_token(db.session, secret.strip()) if scheme.lower() == "bearer" else None
    if found is None:
        return api_error(401, "a valid API token is needed: Authorization: Bearer <token>",
                         headers={"WWW-Authenticate": 'Bearer realm="stspolicy"'})
    g.api_user, g.api_token = found
    return None


QUERY_PARAMETERS = {"api.domain_delete": {"force"}}


@bp.before_request
def known_query_parameters_only():
    """A misspelt option (`?forse=true`) is refused rather than silently ignored."""
    for name in request.args:
        if name not in QUERY_PARAMETERS.get(request.endpoint, ()):
            return api_error(422, f"unknown query parameter {name[:64]!r}", name[:64])
    return None


@bp.after_request
def no_caching(response):
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


@bp.errorhandler(InvalidInput)
def invalid_input(error: InvalidInput):
    return api_error(error.status, error.message, error.field)


@bp.errorhandler(PolicyError)
def invalid_policy(error: PolicyError):
    return api_error(422, error.message, error.field)


@bp.errorhandler(EnforceNotConfirmed)
def enforce_not_confirmed(error: EnforceNotConfirmed):
    """What the confirmation page shows, as lines: send the change again with `confirm_enforce: true`."""
    return api_error(409, f"{error.message}: send it again with confirm_enforce true", error.field,
                     concerns=enforce_evidence(db.session, error.domain, error.policy).lines())


@bp.get("/openapi.json")
def openapi():
    return jsonify(openapi_document())


@bp.get("/domains")
def domains_index():
    domains = visible_domains(db.session, g.api_user)
    versions = current_versions(db.session, domains)
    return jsonify(domains=[_summary(domain, versions[domain.id]) for domain in domains])


@bp.post("/domains")
def domain_create():
    if not g.api_user.is_admin:
        return api_error(403, "only admins may add domains")
    body = _json_body({"domain": str, "mode": str, "mx": list, "max_age": int}, required=("domain", "mx"))
    policy = make_policy(body.get("mode", "testing"), body["mx"], body.get("max_age", 604800))
    version = add_domain(db.session, body["domain"], policy, actor=_actor())
    propagate(db.session, current_settings(), version.domain.name, version, wait=False)
    response = jsonify(_summary(version.domain, version))
    response.status_code = 201
    response.headers["Location"] = url_for(".domain_show", name=version.domain.name)
    return response


@bp.get("/nodes")
def nodes():
    """The serving nodes and the revision each serves (admins)."""
    if not g.api_user.is_admin:
        return api_error(403, "only admins may see the serving nodes")
    now = utcnow()
    statuses = node_statuses(db.session, current_settings().nodes, now)
    return jsonify(revision=serving_revision(db.session), nodes=[status.as_dict(now) for status in statuses])


@bp.get("/domains/<name>")
def domain_show(name):
    domain = domain_for_user(db.session, g.api_user, name)
    return jsonify(_summary(domain, current_version(db.session, domain)))


@bp.patch("/domains/<name>")
def domain_patch(name):
    """Change some policy fields; the others stay."""
    domain = domain_for_user(db.session, g.api_user, name, need="edit")
    body = _json_body({"mode": str, "mx": list, "max_age": int, "confirm_enforce": bool, "schedule_mx_removal": bool})
    return _update(domain, body)


@bp.put("/domains/<name>/policy")
def policy_replace(name):
    """Replace the whole policy."""
    domain = domain_for_user(db.session, g.api_user, name, need="edit")
    body = _json_body({"mode": str, "mx": list, "max_age": int, "confirm_enforce": bool, "schedule_mx_removal": bool},
                      required=("mode", "mx", "max_age"))
    return _update(domain, body)


@bp.delete("/domains/<name>")
def domain_delete(name):
    """RFC 8461 section 8.3 removal: first `mode: none`, deleted once cached policies expired (or `force`)."""
    domain = domain_for_user(db.session, g.api_user, name, need="admin")
    force = request.args.get("force", "false")
    if force not in ("true", "false"):
        raise InvalidInput(422, "force must be true or false", "force")
    name = domain.name
    removal = remove_domain(db.session, domain, actor=_actor(), force=force == "true")
    if removal.state != "pending":
        propagate(db.session, current_settings(), name, removal.version, wait=False)
    return jsonify(
        state=removal.state,
        deletable_at=removal.deletable_at.isoformat() if removal.deletable_at else None,
        policy_id=removal.version.policy_id if removal.version else None,
    )


@bp.get("/domains/<name>/versions")
def versions_index(name):
    domain = domain_for_user(db.session, g.api_user, name)
    return jsonify(versions=[
        {
            "policy_id": version.policy_id, "mode": version.mode, "mx": list(version.mx_patterns),
            "max_age": version.max_age, "policy_text": version.policy_text,
            "created_at": version.created_at.isoformat(), "created_by": version.created_by,
        }
        for version in recent_versions(db.session, domain, VERSIONS_LIMIT)
    ])


@bp.post("/domains/<name>/rollback")
def domain_rollback(name):
    domain = domain_for_user(db.session, g.api_user, name, need="edit")
    body = _json_body({"policy_id": str, "confirm_enforce": bool}, required=("policy_id",))
    removal = planned_mx_removal(db.session, domain, find_version(db.session, domain, body["policy_id"]).policy,
                                 current_settings().updates.record_ttl)
    version = rollback_to(db.session, domain, body["policy_id"], actor=_actor(),
                          enforce_confirmed=body.get("confirm_enforce", False))
    if version is not None:
        propagate(db.session, current_settings(), domain.name, version, wait=False)
    answer = _summary(domain, version or current_version(db.session, domain)) | {"changed": version is not None}
    if version is not None and removal:
        answer["mx_removal"] = removal.as_dict() | {"scheduled": False}
    return jsonify(answer)


@bp.get("/domains/<name>/dns-records")
def dns_records_show(name):
    domain = domain_for_user(db.session, g.api_user, name)
    records = published_records(db.session, current_settings(), domain, current_version(db.session, domain).policy_id)
    return jsonify(records=[record.as_dict() for record in records])


@bp.get("/domains/<name>/events")
def events_index(name):
    """The domain's audit log as the token's account may read it (members: policy and DNS events only)."""
    domain = domain_for_user(db.session, g.api_user, name)
    return jsonify(events=[
        {"created_at": event.created_at.isoformat(), "actor": event.actor, "action": event.action,
         "description": describe(event.action, event.detail)}
        for event in domain_events(db.session, domain, g.api_user)
    ])


def _update(domain, body: dict):
    """A change; one that drops mx patterns says until when senders may apply the old policy (`mx_removal`)."""
    settings = current_settings()
    change = change_policy(
        db.session, domain, mode=body.get("mode"), mx_patterns=body.get("mx"), max_age=body.get("max_age"),
        actor=_actor(), txt_ttl=settings.updates.record_ttl,
        schedule_mx_removal=body.get("schedule_mx_removal", False),
        enforce_confirmed=body.get("confirm_enforce", False),
    )
    version = change.version
    if version is not None:
        propagate(db.session, settings, domain.name, version, wait=False)
    answer = _summary(domain, version or current_version(db.session, domain)) | {"changed": version is not None}
    if change.mx_removal:
        answer["mx_removal"] = change.mx_removal.as_dict() | {"scheduled": change.scheduled is not None}
    return jsonify(answer)


def _summary(domain, version) -> dict:
    return domain_summary(domain, version, published_records(db.session, current_settings(), domain, version.policy_id))


def _actor() -> str:
    return f"api:{g.api_user.email} (token #{g.api_token.id})"


def _json_body(fields: dict[str, type], required: tuple[str, ...] = ()) -> dict:
    """The request's JSON object with only `fields`, each of its type; the first problem names its field."""
    if not request.is_json:
        raise InvalidInput(415, "send JSON with Content-Type: application/json")
    try:
        body = request.get_json(silent=True)
    except RecursionError:
        raise InvalidInput(400, "the body nests too deeply to be a request here") from None
    if not isinstance(body, dict):
        raise InvalidInput(400, "the body must be a JSON object")
    for name in body:
        if name not in fields:
            raise InvalidInput(422, f"unknown field {name[:64]!r}", name[:64])
    for name in required:
        if name not in body:
            raise InvalidInput(422, f"{name} is required", name)
    for name, value in body.items():
        kind = fields[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise InvalidInput(422, f"{name} must be {_TYPE_NAMES[kind]}", name)
        if kind is str and len(value) > MAX_STRING_LENGTH:
            raise InvalidInput(422, f"{name} is longer than {MAX_STRING_LENGTH} characters", name)
        if kind is str and "\x00" in value:
            raise InvalidInput(422, f"{name} holds a NUL character", name)
    mx = body.get("mx", [])
    if len(mx) > MAX_MX_PATTERNS or not all(
            isinstance(item, str) and len(item) <= MAX_STRING_LENGTH and "\x00" not in item for item in mx):
        raise InvalidInput(422, f"mx must be a list of at most {MAX_MX_PATTERNS} strings of at most "
                                f"{MAX_STRING_LENGTH} characters", "mx")
    return body


_TYPE_NAMES = {str: "a string", list: "a list", int: "an integer", bool: "true or false"}


def init_app(app: Flask) -> None:
    csrf.exempt(bp)
    app.register_blueprint(bp)
