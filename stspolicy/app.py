"""The application factory: it only wires configuration, extensions, entry points and the CLI."""

import os
from collections.abc import Mapping
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from reports import alerts, review
from reports import cli as report_cli
from reports.channels import https as report_intake
from stspolicy import cli, propagation, web
from stspolicy.config import build_settings, load_config
from stspolicy.extensions import csrf, db, limiter, migrate
from stspolicy.policies import snapshot
from stspolicy.web import security, wellknown


def create_app(config: Mapping[str, str] | None = None) -> Flask:
    """Build the application from environment-style settings (os.environ when None)."""
    app = Flask("stspolicy", instance_relative_config=True)
    environment = os.environ if config is None else config
    app.config.update(load_config(environment, Path(app.instance_path)))
    app.extensions["settings"] = build_settings(app.config)  # once: services get them from the entry points
    _init_extensions(app)
    _register_entry_points(app)
    cli.init_app(app)
    report_cli.init_app(app)
    _trust_proxies(app)
    return app


def _trust_proxies(app: Flask) -> None:
    """Behind nginx (PROXY_HOPS=1) the client address and scheme come from X-Forwarded-For/-Proto.

    Last, so that it wraps the WSGI fronts (policy hosts, report intake) as well as Flask.
    """
    hops = app.config["PROXY_HOPS"]
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)


def _init_extensions(app: Flask) -> None:
    db.init_app(app)
    migrate.init_app(app, db, directory=str(Path(app.root_path).parent / "migrations"))
    snapshot.init_app(app)
    propagation.init_app(app)
    security.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)


def _register_entry_points(app: Flask) -> None:
    report_intake.init_app(app)
    wellknown.init_app(app)  # after the report intake: a policy host answers everything sent to it
    web.init_app(app)
    alerts.init_app(app)  # its routes joined the admin and API blueprints when it was imported
    review.init_app(app)  # so did the review's, and its commands the report group
