"""DNS pages: a domain's publishing mode, records, latest check per MX host and history; the TLSA tool.

"Check now", "publish again" and the TLSA tool call the services behind `flask dns check`,
`flask dns publish` and `flask tlsa generate|rollover`.
"""


from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from stspolicy.accounts.service import domain_for_user, grant_role, visible_domains
from stspolicy.base.settings import current_settings
from stspolicy.dns.check import CheckTooSoon, check_on_request, grouped_findings, rollover_plan, tlsa_rows
from stspolicy.dns.dane import key_record, records_for_certificate, tlsa_name, tlsa_record
from stspolicy.dns.models import PENDING, DnsSetting
from stspolicy.dns.publish import (
    published_records,
    publishing_failures,
    publishing_now,
    set_publish_mode,
    sts_target,
)
from stspolicy.dns.queries import history, known_mx_hosts, latest_check
from stspolicy.dns.rfc2136 import PublishError
from stspolicy.dns.tlsa_publish import dane_host_state
from stspolicy.extensions import as_utc, db, utcnow
from stspolicy.policies.queries import current_version
from stspolicy.propagation import propagate
from stspolicy.web.admin.forms import PublishModeForm, TlsaForm
from stspolicy.web.admin.views import actor, both_forms, bp

DNS_HISTORY_LENGTH = 30
CHECK_OUTCOMES = {  # status: (flash category, what to say)
    "ok": ("message", _l("no problems found")),
    "problems": ("warn", _l("problems found, see below")),
    "unchecked": ("error", _l("could not check: no answer from the resolver")),
}


@bp.get("/domains/<name>/dns")
def dns(name):
    domain = domain_for_user(db.session, current_user, name)
    return _dns_page(domain, None)


@bp.post("/domains/<name>/dns/mode")
def dns_mode(name):
    """Admins only: rfc2136 sends updates to the server named here, with a key of this deployment."""
    domain = domain_for_user(db.session, current_user, name, need="admin")
    form = PublishModeForm()
    if form.validate_on_submit():
        try:
            set_publish_mode(db.session, current_settings(), domain, form.mode.data, actor=actor(),
                             server=form.server.data or None, zone=form.zone.data or None, key=form.key.data or None)
        except PublishError as error:
            form.form_errors.append(str(error))
        else:
            flash(_("%(domain)s is published in %(mode)s mode.", domain=both_forms(domain.name), mode=form.mode.data))
            attempt = propagate(db.session, current_settings(), domain.name, current_version(db.session, domain),
                                wait=False)
            if attempt is not None:
                flash(_("Publishing: %(outcome)s.", outcome=attempt.findings[0]["message"]))
            return redirect(url_for(".dns", name=domain.name) + "#publishing")
    return _dns_page(domain, form, status=422)


def _dns_page(domain, mode_form: PublishModeForm | None, status: int = 200):
    version = current_version(db.session, domain)
    setting = db.session.get(DnsSetting, domain.id)
    check = latest_check(db.session, domain)
    groups, mx_findings = grouped_findings(check) if check else ([], {})
    settings = current_settings()
    return render_template(
        "admin/dns.html",
        domain=domain, version=version, setting=setting, mode=setting.publish_mode if setting else "manual",
        records=published_records(db.session, settings, domain, version.policy_id),
        sts_target=sts_target(settings, domain.name, setting), sts_ttl=settings.updates.record_ttl,
        check=check, groups=groups, mx_findings=mx_findings,
        tlsa_rows={mx.id: tlsa_rows(mx) for mx in check.mx_hosts} if check else {},
        dane_hosts=[dane_host_state(db.session, domain, mx.host) for mx in check.mx_hosts] if check else [],
        now=utcnow(),
        history=history(db.session, domain, DNS_HISTORY_LENGTH),
        publish_failure=publishing_failures(db.session, [domain]).get(domain.id),
        publishing=domain.id in publishing_now(db.session, [domain]),
        can_edit=grant_role(db.session, current_user, domain) in ("admin", "editor"),
        is_admin=current_user.is_admin, tsig_keys=sorted(settings.updates.tsig_keys),
        delegation=bool(settings.records.delegation_zone and settings.updates.delegation_tsig_key),
        mode_form=mode_form or PublishModeForm(formdata=None, data={
            "mode": setting.publish_mode if setting else "manual", "server": setting.update_server if setting else "",
            "zone": setting.update_zone if setting else "", "key": setting.tsig_key if setting else ""}),
        replace_url=url_for(".dns", name=domain.name) if status != 200 else None,
    ), status


@bp.post("/domains/<name>/dns/check")
def dns_check(name):
    domain = domain_for_user(db.session, current_user, name, need="edit")
    try:
        observation = check_on_request(db.session, current_settings(), domain, current_version(db.session, domain),
                                       now=utcnow())
    except CheckTooSoon as refusal:
        flash(str(refusal), "warn")
        return redirect(url_for(".dns", name=domain.name))
    category, outcome = CHECK_OUTCOMES[observation.status]
    flash(_("Checked %(domain)s: %(outcome)s.", domain=both_forms(domain.name), outcome=outcome), category)
    return redirect(url_for(".dns", name=domain.name))


@bp.post("/domains/<name>/dns/publish")
def dns_publish(name):
    domain = domain_for_user(db.session, current_user, name, need="edit")
    try:
        attempt = propagate(db.session, current_settings(), domain.name, current_version(db.session, domain),
                            wait=False)
    except PublishError as error:
        flash(str(error), "error")
    else:
        if attempt is None:
            flash(_("%(domain)s is in manual mode: publish its records by hand.",
                    domain=both_forms(domain.name)), "warn")
        elif attempt.status == PENDING:
            flash(_("Publishing: %(outcome)s.", outcome=attempt.findings[0]["message"]))
        else:
            flash(_("Published: %(outcome)s", outcome=attempt.findings[0]["message"]))
    return redirect(url_for(".dns", name=domain.name))


@bp.route("/tlsa", methods=["GET", "POST"])
def tlsa():
    """DNS is asked about an MX host only if checks of the user's domains have seen it."""
    domains = visible_domains(db.session, current_user)
    known_hosts = known_mx_hosts(db.session, domains)
    form = TlsaForm()
    result = None
    if form.validate_on_submit():
        now = utcnow()
        chain = [*form.certificates, *form.chain_certificates]
        looked_up = form.mx_host if form.mx_host in known_hosts else None
        result = {
            "rows": records_for_certificate(chain, form.next_public_key),
            "owner": tlsa_name(form.mx_host) if form.mx_host else None,
            "looked_up": looked_up,
            "plan": rollover_plan(
                db.session, current_settings(), tlsa_record(chain[0], 3), key_record(form.next_public_key), now=now,
                domains=domains,
                mx_host=looked_up,
                ttl=form.ttl.data, published_at=as_utc(form.published.data), deployed_at=as_utc(form.deployed.data),
            ) if form.next_public_key else None,
            "now": now,
        }
    form.drop_private_keys()
    status = 422 if form.errors else 200
    return render_template("admin/tlsa.html", form=form, result=result, known_hosts=known_hosts,
                           replace_url=url_for(".tlsa") if request.method == "POST" else None), status
