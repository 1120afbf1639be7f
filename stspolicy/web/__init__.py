"""The HTTP entry points: policy hosts, sign-in, admin pages, API, metrics; one error handler for all."""

from flask import Flask

from stspolicy.web import admin, api, auth, errors, locale, metrics


def init_app(app: Flask) -> None:
    locale.init_app(app)
    errors.init_app(app)
    metrics.init_app(app)
    auth.init_app(app)
    admin.init_app(app)
    api.init_app(app)
