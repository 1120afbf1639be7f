"""Serving nodes (admins): whether each serves the current revision, when it was last seen, its last error."""

from flask import render_template

from stspolicy.base.settings import current_settings
from stspolicy.extensions import db, utcnow
from stspolicy.nodes.service import node_statuses, serving_revision
from stspolicy.web.admin.views import bp, require_admin


@bp.get("/nodes")
def nodes():
    require_admin()
    settings = current_settings().nodes
    now = utcnow()
    return render_template("admin/nodes.html", statuses=node_statuses(db.session, settings, now),
                           revision=serving_revision(db.session), silent_seconds=settings.silent_seconds, now=now)
