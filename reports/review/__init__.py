"""Report review: what the stored reports say, in plain words, with the correlation behind them.

Under `reports`, below the alerts (which raise incidents from its findings) and above the entry
points it joins: its API routes join the API blueprint (tokens and tenancy are theirs), its
commands the `flask report` group.
"""

from flask import Flask

from reports.cli import report_cli
from reports.review import findings_api  # noqa: F401  (its route joins the API blueprint)
from reports.review.findings_cli import findings_command


def init_app(app: Flask) -> None:
    report_cli.add_command(findings_command)
