"""TLS-RPT (RFC 8460): reports received by HTTPS, mail, IMAP and from files, stored once."""

from flask import Flask

from reports import alerts, cli
from reports.channels import https


def init_app(app: Flask) -> None:
    https.init_app(app)
    cli.init_app(app)
    alerts.init_app(app)
