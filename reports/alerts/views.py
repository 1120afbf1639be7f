"""The alert pages and the API's alert rules. They join the admin and API blueprints, so sign-in, tokens,
CSRF, the admin-host check and tenancy (`domain_for_user`) are theirs.

Pages: /alerts (your incidents, what you receive, your webhooks) and /domains/<name>/alerts
(the domain's rules, editable by its admins and editors). API: /api/v1/domains/<name>/alert-rules.
"""

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from reports.alerts.configure import change_rules, rules_of
from reports.alerts.incidents import incidents_for
from reports.alerts.models import PAYLOAD_FORMATS
from reports.alerts.rules import RULES, RuleError
from reports.alerts.subscriptions import (
    SubscriptionError,
    add_webhook,
    preference,
    recipients,
    remove_webhook,
    set_preference,
    set_subscription,
    subscribed,
    webhooks_of,
)
from stspolicy.accounts.service import domain_for_user, grant_role
from stspolicy.extensions import db
from stspolicy.web.admin.views import bp as pages
from stspolicy.web.api import openapi
from stspolicy.web.api.views import bp as api
from stspolicy.web.errors import api_error

INCIDENTS_SHOWN = 100


def _recipient():
    return next(r for r in recipients(db.session) if r.user.id == current_user.id)


@pages.get("/alerts")
def alerts():
    hooks = webhooks_of(db.session, current_user)
    return render_template("alerts/index.html", incidents=incidents_for(db.session, _recipient(),
                                                                        limit=INCIDENTS_SHOWN),
                           preference=preference(db.session, current_user), webhooks=hooks,
                           formats=PAYLOAD_FORMATS, secret=None)


@pages.post("/alerts/preferences")
def alert_preferences():
    set_preference(db.session, current_user, alerts=request.form.get("alerts") == "yes",
                   digest=request.form.get("digest") == "yes")
    flash(_("Saved what you receive."))
    return redirect(url_for(".alerts"))


@pages.post("/alerts/webhooks")
def alert_webhook_add():
    try:
        hook = add_webhook(db.session, current_user, request.form.get("url", "")[:4000],
                           request.form.get("payload_format", "json"), actor=f"web:{current_user.email}")
    except SubscriptionError as error:
        flash(error.message, "error")
        return redirect(url_for(".alerts"))
    # The secret is shown once, here: the receiver needs it to check the signatures.
    return render_template("alerts/index.html", incidents=incidents_for(db.session, _recipient(),
                                                                        limit=INCIDENTS_SHOWN),
                           preference=preference(db.session, current_user),
                           webhooks=webhooks_of(db.session, current_user), formats=PAYLOAD_FORMATS, secret=hook)


@pages.post("/alerts/webhooks/remove")
def alert_webhook_remove():
    hook = next((h for h in webhooks_of(db.session, current_user) if str(h.id) == request.form.get("id")), None)
    if hook is None:
        abort(404)
    remove_webhook(db.session, hook, actor=f"web:{current_user.email}")
    flash(_("Removed the webhook."))
    return redirect(url_for(".alerts"))


@pages.post("/alerts/subscriptions/<name>")
def alert_subscription(name):
    """Your own choice for a domain you may see (a viewer too: it changes nothing of the domain)."""
    domain = domain_for_user(db.session, current_user, name)
    set_subscription(db.session, current_user, domain, request.form.get("alerts") == "yes")
    if request.form.get("alerts") == "yes":
        flash(_("You will receive alerts about %(domain)s.", domain=domain.name))
    else:
        flash(_("You will not receive alerts about %(domain)s.", domain=domain.name))
    return redirect(url_for(".domain_alerts", name=domain.name))


@pages.get("/domains/<name>/alerts")
def domain_alerts(name):
    domain = domain_for_user(db.session, current_user, name)
    return _rules_page(domain)


@pages.post("/domains/<name>/alerts/rules")
def domain_alert_rules(name):
    domain = domain_for_user(db.session, current_user, name, need="edit")
    changes = {}
    for rule, spec in RULES.items():
        parameters = {}
        for parameter in spec.parameters:
            raw = request.form.get(f"{rule}.{parameter.name}", "").strip()
            parameters[parameter.name] = int(raw) if raw.isdigit() and len(raw) < 10 else raw
        changes[rule] = {"enabled": request.form.get(f"{rule}.enabled") == "yes", "parameters": parameters}
    try:
        change_rules(db.session, domain, changes, actor=f"web:{current_user.email}")
    except RuleError as error:
        return _rules_page(domain, error=error, status=422)
    flash(_("Saved the alert rules of %(domain)s.", domain=domain.name))
    return redirect(url_for(".domain_alerts", name=domain.name))


def _rules_page(domain, error: RuleError | None = None, status: int = 200):
    role = grant_role(db.session, current_user, domain)
    recipient = _recipient()
    shown = [(incident, rows) for incident, rows in incidents_for(db.session, recipient, limit=INCIDENTS_SHOWN)
             if any(row.domain_name == domain.name for row in rows)]
    return render_template("alerts/domain.html", domain=domain, rules=rules_of(db.session, domain), specs=RULES,
                           can_edit=role in ("admin", "editor"), error=error, incidents=shown,
                           subscribed=subscribed(db.session, current_user, domain)), status


@api.get("/domains/<name>/alert-rules")
def alert_rules_show(name):
    domain = domain_for_user(db.session, g.api_user, name)
    return {"rules": rules_of(db.session, domain)}


@api.patch("/domains/<name>/alert-rules")
def alert_rules_change(name):
    """Change some rules; the others stay. `{"<rule>": {"enabled": bool, "parameters": {...}}}`."""
    domain = domain_for_user(db.session, g.api_user, name, need="edit")
    if not request.is_json:
        return api_error(415, "send JSON with Content-Type: application/json")
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return api_error(400, "the body must be a JSON object")
    try:
        rules = change_rules(db.session, domain, body, actor=f"api:{g.api_user.email} (token #{g.api_token.id})")
    except RuleError as error:
        return api_error(422, error.message, error.field)
    return {"rules": rules}


def _rule_change_schema() -> dict:
    return {
        "type": "object", "additionalProperties": False,
        "properties": {
            name: {"type": "object", "additionalProperties": False, "properties": {
                "enabled": {"type": "boolean"},
                "parameters": {"type": "object", "additionalProperties": False, "properties": {
                    p.name: {"type": "integer", "minimum": p.minimum, "maximum": p.maximum, "description": p.label}
                    for p in spec.parameters}},
            }}
            for name, spec in RULES.items()
        },
    }


RULES_ANSWER = {"description": "every rule with its setting for the domain", "content": {"application/json": {
    "schema": {"type": "object", "required": ["rules"],
               "properties": {"rules": {"type": "array", "items": {"$ref": "#/components/schemas/AlertRule"}}}}}}}

openapi.CONTRIBUTED_SCHEMAS["AlertRule"] = {
    "type": "object", "required": ["rule", "title", "description", "enabled", "parameters", "defaults"],
    "properties": {
        "rule": {"type": "string", "enum": list(RULES)}, "title": {"type": "string"},
        "description": {"type": "string"}, "enabled": {"type": "boolean"},
        "parameters": {"type": "object", "additionalProperties": {"type": "integer"}},
        "defaults": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}
openapi.CONTRIBUTED_PATHS["/domains/{name}/alert-rules"] = {
    "parameters": [openapi.NAME],
    "get": {"summary": "The domain's alert rules: each rule on or off, and its parameters",
            "responses": {"200": RULES_ANSWER, **openapi.READ_ERRORS}},
    "patch": {"summary": "Change some alert rules (admins and editors of the domain); the others stay",
              "requestBody": {"required": True, "content": {"application/json": {"schema": _rule_change_schema()}}},
              "responses": {"200": RULES_ANSWER, **openapi.WRITE_ERRORS}},
}
