"""Admin pages. Each view reaches a domain only through `domain_for_user` (404 for another tenant's)."""

from datetime import datetime

from flask import Blueprint, Flask, abort, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from wtforms import FieldList

from stspolicy.accounts.links import invite_user
from stspolicy.accounts.service import (
    AccountError,
    domain_for_user,
    domain_grants,
    find_user,
    grant_role,
    remove_grant,
    set_grant,
    visible_domains,
)
from stspolicy.accounts.tokens import create_token, revoke_token, token_for_user, visible_tokens
from stspolicy.base.audit import describe, domain_events, recent_events
from stspolicy.base.settings import current_settings
from stspolicy.certificates.errors import CertificateError
from stspolicy.certificates.service import certificate_state
from stspolicy.dns.check import dns_states
from stspolicy.dns.models import PENDING
from stspolicy.dns.publish import published_records, publishing_failures, publishing_now
from stspolicy.extensions import db, utcnow
from stspolicy.policies.errors import DomainError, EnforceNotConfirmed
from stspolicy.policies.names import POLICY_HOST_PREFIX, to_unicode
from stspolicy.policies.queries import (
    current_version,
    current_versions,
    find_version,
    recent_versions,
    scheduled_mx_removals,
)
from stspolicy.policies.rules import Policy, PolicyError, diff_policies, make_policy, policy_warnings, render_policy
from stspolicy.policies.service import (
    add_domain,
    cancel_mx_removal,
    change_policy,
    planned_mx_removal,
    remove_domain,
    rollback_to,
)
from stspolicy.propagation import propagate
from stspolicy.report_figures import enforce_evidence, failure_figures
from stspolicy.web.admin.forms import (
    MAX_AGE_PRESETS,
    MX_REMOVAL_CHOICES,
    DomainForm,
    GrantForm,
    PolicyForm,
    RemoveForm,
    TokenForm,
)
from stspolicy.web.locale import local_datetime, role_name
from stspolicy.web.security import require_login

bp = Blueprint("admin", __name__)
bp.before_request(require_login)

HISTORY_LENGTH = 50


def actor() -> str:
    return f"web:{current_user.email}"


def show_once(kind: str, value: dict) -> None:
    """Hand a secret made by a POST to the page it redirects to (post/redirect/get), which shows it once.

    It rides in the session cookie, which already carries as much power as the secret, and the
    first page that shows it takes it out.
    """
    session[f"shown-once-{kind}"] = value


def take_shown_once(kind: str) -> dict | None:
    return session.pop(f"shown-once-{kind}", None)


def show_password_link(account, secret: str) -> None:
    """The invitation or reset link just made for `account`, for the next page to show once."""
    show_once("password_link", {"user_id": account.id, "email": account.email,
                                "url": url_for("auth.set_password", secret=secret, _external=True)})


def require_admin() -> None:
    if not current_user.is_admin:
        abort(403, "Only admins may do this.")


@bp.app_template_global()
def describe_event(event) -> str:
    return describe(event.action, event.detail)


@bp.app_template_filter()
def when(moment: datetime | None, precision: str = "minutes") -> Markup:
    """A UTC time as people read it, in a <time> element that machines read too."""
    if moment is None:
        return Markup('<span class="muted">{}</span>').format(_("never"))
    shown = local_datetime(moment, precision)
    return Markup('<time datetime="{}">{} UTC</time>').format(moment.strftime("%Y-%m-%dT%H:%M:%SZ"), shown)


@bp.app_template_filter()
def both_forms(name: str) -> str:
    """An international name (a domain, an mx pattern) as its owner writes it, with the A-label form DNS
    uses: `bücher.example (xn--bcher-kva.example)`; other names as they are."""
    shown = unicode_form(name)
    return shown if shown == name else f"{shown} ({name})"


@bp.app_template_filter()
def unicode_form(name: str) -> str:
    """The U-label form of a domain name or mx pattern (`*.` kept)."""
    wildcard = "*." if name.startswith("*.") else ""
    return wildcard + to_unicode(name[len(wildcard):])


@bp.app_template_global()
def form_problems(*forms) -> list[tuple[str | None, str, str]]:
    """(id of the input to go to, its label, the message) for each error of the forms, in page order."""
    problems = []
    for form in forms:
        if form is None:
            continue
        for field in form:
            if isinstance(field, FieldList):
                problems += [(entry.id, f"{field.label.text}, row {index}", error)
                             for index, entry in enumerate(field.entries, 1) for error in entry.errors]
            elif field.type not in ("CSRFTokenField", "HiddenField"):
                target = f"{field.id}-0" if field.type == "RadioField" else field.id
                problems += [(target, field.label.text, error) for error in field.errors]
        problems += [(None, "", error) for error in form.form_errors]
    return problems


@bp.get("/")
def index():
    domains = visible_domains(db.session, current_user)
    return render_template(
        "admin/index.html",
        domains=domains,
        versions=current_versions(db.session, domains),
        failures=failure_figures(db.session, domains, days=7),
        dns=dns_states(db.session, domains),
        publish_failures=publishing_failures(db.session, domains),
        publishing=publishing_now(db.session, domains),
    )


@bp.route("/domains/new", methods=["GET", "POST"])
def add():
    require_admin()
    form = DomainForm()
    if form.validate_on_submit():
        try:
            policy = make_policy(form.mode.data, form.mx_patterns(), form.max_age.data)
            version = add_domain(db.session, form.name.data, policy, actor=actor())
        except (PolicyError, DomainError) as error:
            form.add_error(error.field, error.message)
        else:
            propagate(db.session, current_settings(), version.domain.name, version, wait=False)
            flash(_("%(domain)s is hosted with policy id %(id)s: publish its DNS records.",
                    domain=both_forms(version.domain.name), id=version.policy_id))
            return redirect(url_for(".domain", name=version.domain.name))
    form.offer_blank_rows()
    status = 422 if request.method == "POST" else 200  # a POST that lands here was refused
    return render_template("admin/add.html", form=form, presets=MAX_AGE_PRESETS,
                           replace_url=url_for(".add") if status != 200 else None), status


@bp.get("/domains/<name>")
def domain(name):
    domain = domain_for_user(db.session, current_user, name)
    return _domain_page(domain, _current_policy_form(domain))


@bp.post("/domains/<name>/policy")
def edit_policy(name):
    """An edit that drops MX patterns asks first how (now, or once senders' cached copies expire);
    a switch to enforce asks for confirmation. Each answer comes back with the same fields."""
    domain = domain_for_user(db.session, current_user, name, need="edit")
    form = PolicyForm()
    if form.validate_on_submit():
        current = current_version(db.session, domain)
        txt_ttl = current_settings().updates.record_ttl
        action = url_for(".edit_policy", name=domain.name)
        try:
            policy = make_policy(form.mode.data, form.mx_patterns(), form.max_age.data)
            removal = planned_mx_removal(db.session, domain, policy, txt_ttl)
            if removal and form.mx_removal.data not in MX_REMOVAL_CHOICES:
                return _confirm_mx_removal(domain, policy, removal, action, form.confirmed.data)
            change = change_policy(db.session, domain, mode=policy.mode, mx_patterns=list(policy.mx_patterns),
                                   max_age=policy.max_age, actor=actor(), txt_ttl=txt_ttl,
                                   schedule_mx_removal=form.mx_removal.data == "schedule",
                                   enforce_confirmed=form.confirmed.data == "yes")
        except EnforceNotConfirmed:
            return _confirm_enforce(domain, policy, action, mx_removal=form.mx_removal.data)
        except PolicyError as error:
            form.add_error(error.field, error.message)
        else:
            _propagate(domain, change.version, current.policy_id)
            if change.scheduled:
                flash(_("%(patterns)s stay in the policy until %(time)s UTC and leave it then.",
                        patterns=", ".join(change.scheduled.mx_patterns), time=local_datetime(change.scheduled.due_at)))
            elif change.mx_removal:
                flash(_("Warning: %(problem)s.", problem=change.mx_removal.message()), "warn")
            return redirect(url_for(".domain", name=domain.name))
    return _domain_page(domain, form, status=422)


@bp.post("/domains/<name>/mx-removals/<int:removal_id>/cancel")
def cancel_removal(name, removal_id):
    domain = domain_for_user(db.session, current_user, name, need="edit")
    if not cancel_mx_removal(db.session, domain, removal_id, actor=actor()):
        abort(404)
    flash(_("The scheduled removal is cancelled: those mx patterns stay in the policy."))
    return redirect(url_for(".domain", name=domain.name) + "#edit")


@bp.post("/domains/<name>/rollback/<policy_id>")
def rollback(name, policy_id):
    domain = domain_for_user(db.session, current_user, name, need="edit")
    previous_id = current_version(db.session, domain).policy_id
    removal = planned_mx_removal(db.session, domain, find_version(db.session, domain, policy_id).policy,
                                 current_settings().updates.record_ttl)
    try:
        version = rollback_to(db.session, domain, policy_id, actor=actor(),
                              enforce_confirmed=request.form.get("confirmed") == "yes")
    except EnforceNotConfirmed as unconfirmed:
        return _confirm_enforce(domain, unconfirmed.policy, url_for(".rollback", name=domain.name, policy_id=policy_id))
    _propagate(domain, version, previous_id)
    if version is not None and removal:
        flash(_("Warning: %(problem)s.", problem=removal.message()), "warn")
    return redirect(url_for(".domain", name=domain.name))


@bp.post("/domains/<name>/remove")
def remove(name):
    domain = domain_for_user(db.session, current_user, name, need="admin")
    name = domain.name
    removal = remove_domain(db.session, domain, actor=actor(), force=RemoveForm().force.data)
    if removal.state != "pending":
        propagate(db.session, current_settings(), name, removal.version, wait=False)
    if removal.state == "deleted":
        flash(_("Deleted %(domain)s: remove its _mta-sts and mta-sts DNS records.", domain=both_forms(domain.name)))
        return redirect(url_for(".index"))
    if removal.state == "started":
        flash(_("%(domain)s now serves mode: none; publish the new _mta-sts id. It can be deleted after %(time)s UTC.",
                domain=both_forms(domain.name), time=local_datetime(removal.deletable_at)))
    else:
        flash(_("Senders may cache the old policy until %(time)s UTC; remove again then, or delete at once.",
                time=local_datetime(removal.deletable_at)))
    return redirect(url_for(".domain", name=domain.name))


@bp.post("/domains/<name>/grants")
def add_grant(name):
    domain = domain_for_user(db.session, current_user, name, need="admin")
    form = GrantForm()
    if form.validate_on_submit():
        user = find_user(db.session, form.email.data)
        try:
            if user is None:
                user, secret = invite_user(db.session, form.email.data, "member", actor=actor())
                show_password_link(user, secret)
            grant = set_grant(db.session, user, domain, form.role.data, actor=actor())
        except AccountError as error:
            form.email.errors = [*form.email.errors, error.message]
        else:
            flash(_("%(email)s is now %(role)s of %(domain)s.",
                    email=grant.user.email, role=role_name(grant.role), domain=domain.unicode_name))
            return redirect(url_for(".domain", name=domain.name) + "#access")
    return _domain_page(domain, _current_policy_form(domain), grant_form=form, status=422)


@bp.post("/domains/<name>/grants/<int:user_id>/remove")
def delete_grant(name, user_id):
    domain = domain_for_user(db.session, current_user, name, need="admin")
    grant = next((grant for grant in domain_grants(db.session, domain) if grant.user_id == user_id), None)
    if grant is None:
        abort(404)
    remove_grant(db.session, grant.user, domain, actor=actor())
    flash(_("%(email)s has no access to %(domain)s any more.", email=grant.user.email, domain=domain.unicode_name))
    return redirect(url_for(".domain", name=domain.name) + "#access")


@bp.route("/tokens", methods=["GET", "POST"])
def tokens():
    form = TokenForm()
    if form.validate_on_submit():
        try:
            token, secret = create_token(db.session, current_user, form.name.data, actor=actor())
        except AccountError as error:
            form.name.errors = [*form.name.errors, error.message]
        else:
            show_once("token", {"id": token.id, "secret": secret})
            return redirect(url_for(".tokens") + "#new-token")
    status = 422 if form.errors else 200
    new_token = take_shown_once("token") if request.method == "GET" else None
    return render_template("admin/tokens.html", form=form, secret=new_token["secret"] if new_token else None,
                           tokens=visible_tokens(db.session, current_user),
                           replace_url=url_for(".tokens") if status != 200 else None), status


@bp.post("/tokens/<int:token_id>/revoke")
def revoke(token_id):
    token = token_for_user(db.session, current_user, token_id)
    if token is None:
        abort(404)
    revoke_token(db.session, token, actor=actor())
    flash(_("Revoked token #%(id)s '%(name)s'.", id=token.id, name=token.name))
    return redirect(url_for(".tokens"))


@bp.get("/audit")
def audit():
    require_admin()
    return render_template("admin/audit.html", events=recent_events(db.session))


def _confirm_enforce(domain, policy: Policy, action: str, mx_removal: str = ""):
    current = current_version(db.session, domain)
    return render_template(
        "admin/confirm_enforce.html",
        domain=domain, current=current, policy=policy, action=action, mx_removal=mx_removal,
        diff=diff_policies(current.policy_text, render_policy(policy)),
        evidence=enforce_evidence(db.session, domain, policy),
    )


def _confirm_mx_removal(domain, policy: Policy, removal, action: str, confirmed: str):
    current = current_version(db.session, domain)
    return render_template(
        "admin/confirm_mx_removal.html",
        domain=domain, current=current, policy=policy, removal=removal, action=action, confirmed=confirmed,
        diff=diff_policies(current.policy_text, render_policy(policy)),
    )


def _propagate(domain, version, previous_id: str) -> None:
    """Serve a new version and publish its id (never waiting in the request), then say so."""
    if version is None:
        flash(_("Nothing changed: the policy id stays %(id)s.", id=previous_id))
        return
    attempt = propagate(db.session, current_settings(), domain.name, version, wait=False)
    if attempt is None:
        flash(_("Published policy id %(id)s: update the _mta-sts TXT record below.", id=version.policy_id))
    elif attempt.status == PENDING:
        flash(_("Published policy id %(id)s: %(outcome)s.",
                id=version.policy_id, outcome=attempt.findings[0]["message"]))
    else:
        flash(_("Published policy id %(id)s, and %(outcome)s.",
                id=version.policy_id, outcome=attempt.findings[0]["message"]))


def _current_policy_form(domain) -> PolicyForm:
    version = current_version(db.session, domain)
    return PolicyForm(data={"mode": version.mode, "mx": list(version.mx_patterns), "max_age": str(version.max_age)})


def _domain_page(domain, form: PolicyForm, grant_form: GrantForm | None = None, status: int = 200):
    version = current_version(db.session, domain)
    role = grant_role(db.session, current_user, domain)
    versions = recent_versions(db.session, domain, HISTORY_LENGTH + 1)
    history = [
        (shown, diff_policies(older.policy_text, shown.policy_text) if older else None)
        for shown, older in zip(versions[:HISTORY_LENGTH], [*versions[1:], None], strict=False)
    ]
    form.offer_blank_rows()
    return render_template(
        "admin/domain.html",
        domain=domain, version=version, role=role, can_edit=role in ("admin", "editor"), form=form,
        presets=MAX_AGE_PRESETS, history=history,
        records=published_records(db.session, current_settings(), domain, version.policy_id),
        warnings=_warnings_by_field(domain, version),
        dns_state=dns_states(db.session, [domain]).get(domain.id),
        publish_failure=publishing_failures(db.session, [domain]).get(domain.id),
        publishing=domain.id in publishing_now(db.session, [domain]),
        certificate=_certificate(domain), acme=bool(current_settings().certificates.acme_directory_url),
        events=domain_events(db.session, domain, current_user),
        grants=domain_grants(db.session, domain) if role == "admin" else [],
        grant_form=grant_form or GrantForm(formdata=None), remove_form=RemoveForm(formdata=None),
        link=take_shown_once("password_link"), scheduled_removals=scheduled_mx_removals(db.session, domain),
        # No fragment: once loaded, a fragment whose target takes no focus would take it from the error summary.
        replace_url=url_for(".domain", name=domain.name) if status != 200 else None,
    ), status


def _warnings_by_field(domain, version) -> dict[str, list[str]]:
    """The current policy's warnings, shown beside the field they are about."""
    by_field: dict[str, list[str]] = {}
    for warning in policy_warnings(domain.name, version.policy):
        by_field.setdefault(warning.field, []).append(warning.message)
    return by_field


def _certificate(domain):
    """The state of the domain's mta-sts certificate, or None where certificates are not managed here."""
    try:
        return certificate_state(db.session, current_settings(), POLICY_HOST_PREFIX + domain.name, utcnow())
    except CertificateError:
        return None


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
