"""Per-tenant report URLs (`/tlsrpt/<token>`): each routes reports about its domains."""


import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from reports.models import ReportToken
from stspolicy.policies.queries import get_domain


def create_report_token(session: Session, domains: list[str], label: str) -> ReportToken:
    """A new rua token for reports about `domains` (each hosted here)."""
    token = ReportToken(token=secrets.token_urlsafe(18), label=label,
                        domains=[get_domain(session, name) for name in domains])
    session.add(token)
    session.commit()
    return token


def list_report_tokens(session: Session) -> list[ReportToken]:
    return list(session.scalars(select(ReportToken).order_by(ReportToken.id)))
