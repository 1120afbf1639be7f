"""Certificates of the served hosts (admins): their state, and "issue now" through the `flask cert issue` service."""

from flask import abort, flash, redirect, render_template, request, url_for

from stspolicy.base.settings import current_settings
from stspolicy.certificates.errors import CertificateError
from stspolicy.certificates.service import (
    acme_issuer,
    certificate_states,
    issue_certificate,
    wanted_hosts,
)
from stspolicy.extensions import db, utcnow
from stspolicy.policies.names import policy_domain_from_host
from stspolicy.web.admin.views import bp, require_admin


@bp.get("/certificates")
def certificates():
    require_admin()
    try:
        states, unmanaged = certificate_states(db.session, current_settings(), utcnow()), None
    except CertificateError as error:
        states, unmanaged = [], error.message
    return render_template(
        "admin/certificates.html", states=states, unmanaged=unmanaged,
        acme=bool(current_settings().certificates.acme_directory_url), domain_of=policy_domain_from_host,
    )


@bp.post("/certificates/<host>/issue")
def issue(host):
    """Request a certificate now, whatever its state or back-off; the page it came from shows the outcome."""
    require_admin()
    settings = current_settings()
    if host not in wanted_hosts(db.session, settings):
        abort(404, f"{host[:253]} is not a host served here")
    try:
        outcome = issue_certificate(db.session, settings, acme_issuer(db.session, settings), host, utcnow())
    except CertificateError as error:
        flash(error.message, "error")
    else:
        failed = outcome.result == "failed"
        flash(f"{outcome.host}: {outcome.result}: {outcome.detail}", "error" if failed else "message")
    domain = policy_domain_from_host(host)
    if request.form.get("back") == "domain" and domain:
        return redirect(url_for(".domain", name=domain) + "#certificate")
    return redirect(url_for(".certificates"))
