"""Report review: the overview, each domain's dashboard, its reports and one report, with CSV of every
table; the API's reports, failure groups and findings; `flask report show|failures|prune|findings`;
and the correlation behind the findings.

Under `reports`, below the alerts (which raise incidents from its findings) and above the entry
points it joins: the pages and API routes join the admin and API blueprints (sign-in, tokens, CSRF,
the admin-host check and tenancy are theirs), the commands the `flask report` group. Charts and
totals read the rollups by hosted domain (rollups), never the detail rows.
"""

from flask import Blueprint, Flask

from reports.cli import report_cli
from reports.review import api, cli, findings_api, pages, reading  # noqa: F401  (routes join the admin and API blueprints)
from reports.review.findings_cli import findings_command

# Only its template folder: the routes join the admin and API blueprints.
templates = Blueprint("review", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    app.register_blueprint(templates)
    cli.init_app()
    reading.init_app(app)
    report_cli.add_command(findings_command)
