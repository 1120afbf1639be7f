"""JSON API under /api/v1 with bearer tokens, described by /api/v1/openapi.json."""

from stspolicy.web.api.views import bp, init_app

__all__ = ["bp", "init_app"]
