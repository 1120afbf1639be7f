"""The admin pages: domains, their policies, access, API tokens and the audit log."""

from .views import bp, init_app

__all__ = ["bp", "init_app"]
