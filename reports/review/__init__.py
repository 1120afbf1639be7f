"""Report review: the overview, each domain's dashboard, its reports and one report, with CSV of every
table; the API's reports and failure groups; `flask report show|failures|prune`.

Under `reports`, above the entry points it joins: the pages and API routes join the admin and API
blueprints (sign-in, tokens, CSRF, the admin-host check and tenancy are theirs), the commands the
`flask report` group. Charts and totals read the rollups by hosted domain (rollups), never the detail rows.
"""

from flask import Blueprint, Flask

from reports.review import api, cli, pages  # noqa: F401  (api, pages: their routes join the admin and API blueprints)

# Only its template folder: the routes join the admin and API blueprints.
templates = Blueprint("review", __name__, template_folder="templates")


def init_app(app: Flask) -> None:
    app.register_blueprint(templates)
    cli.init_app()
