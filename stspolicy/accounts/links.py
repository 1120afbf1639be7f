"""One-time links that let an account's owner choose a password: invitations and resets.

The secret is shown once to the admin who made the link (to pass on), stored only as a SHA-256
like an API token's, and ends when used, when it expires, or when a newer link for the account
is made.
"""

import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from stspolicy.accounts.models import PasswordLink, User
from stspolicy.accounts.service import hash_password, new_account
from stspolicy.accounts.tokens import digest_secret
from stspolicy.base.audit import record_event
from stspolicy.extensions import utcnow

LIFETIMES = {"invite": timedelta(days=7), "reset": timedelta(days=1)}
SECRET_MAX_LENGTH = 100


def invite_user(session: Session, email: str, role: str, *, actor: str) -> tuple[User, str]:
    """A new account without a password, and the secret of the link that lets its owner choose one."""
    user = new_account(session, email, role)
    record_event(session, actor, "user.invite", email=user.email, role=role)
    secret = _new_link(session, user, "invite")
    session.commit()
    return user, secret


def reset_link(session: Session, user: User, *, actor: str) -> str:
    """A new link for the account (an invitation again if it never had a password); older links end."""
    purpose = "reset" if user.has_password else "invite"
    record_event(session, actor, "user.link", email=user.email, purpose=purpose)
    secret = _new_link(session, user, purpose)
    session.commit()
    return secret


def _new_link(session: Session, user: User, purpose: str) -> str:
    now = utcnow()
    session.flush()
    session.execute(update(PasswordLink).where(PasswordLink.user_id == user.id, PasswordLink.used_at.is_(None))
                    .values(used_at=now))
    secret = secrets.token_urlsafe(32)
    session.add(PasswordLink(user=user, token_hash=digest_secret(secret), purpose=purpose, created_at=now,
                             expires_at=now + LIFETIMES[purpose]))
    return secret


def link_for_secret(session: Session, secret: str, now: datetime) -> PasswordLink | None:
    """The link a secret opens, or None when it is unknown, used, replaced or expired."""
    if not secret or len(secret) > SECRET_MAX_LENGTH:
        return None
    link = session.scalar(select(PasswordLink).where(PasswordLink.token_hash == digest_secret(secret)))
    if link is None or link.used_at is not None or link.expires_at <= now:
        return None
    return link


def use_link(session: Session, link: PasswordLink, password: str) -> User:
    """Set the account's password through its link, which ends; sessions under an old password end too."""
    user = link.user
    user.password_hash = hash_password(password)
    user.session_generation = User.session_generation + 1
    link.used_at = utcnow()
    record_event(session, f"link:{user.email}", "user.password", email=user.email)
    session.commit()
    session.refresh(user)
    return user


def open_links(session: Session, users: list[User], now: datetime) -> dict[int, PasswordLink]:
    """Each account's link still waiting to be used, keyed by user id."""
    links = session.scalars(select(PasswordLink).where(
        PasswordLink.user_id.in_([user.id for user in users]), PasswordLink.used_at.is_(None),
        PasswordLink.expires_at > now))
    return {link.user_id: link for link in links}
