"""Alerts and weekly digests: rules over reports, DNS checks and certificates, incidents, mail and webhooks.

Under `reports` because alerts read reports (rollups, and the review's findings) and the
policy side never imports reports; the pages and API routes join the admin and API
blueprints, so they share their sign-in, tenancy and security checks.
"""

from flask import Blueprint, Flask

from reports.alerts import cli, views  # noqa: F401  (views: their routes join the admin and API blueprints)

# Only its template folder: the routes join the admin and API blueprints (reports.alerts.views).
templates = Blueprint("alerts", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    app.register_blueprint(templates)
    app.cli.add_command(cli.alerts_cli)
