"""The admin pages: domains, their policies, DNS and certificates, serving nodes, access, API tokens, the audit log."""

from stspolicy.web.admin import certificates, dns, nodes, users  # noqa: F401  (their routes join the blueprint)
from stspolicy.web.admin.views import bp, init_app

__all__ = ["bp", "init_app"]
