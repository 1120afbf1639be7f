"""API tokens: random secrets shown once, stored as SHA-256, revocable.

A token is 256 random bits, so a fast hash is enough to keep the stored form useless
to a thief of the database; the lookup is by that hash.
"""

import hashlib
import secrets
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from stspolicy.accounts.models import ApiToken, User
from stspolicy.accounts.service import AccountError
from stspolicy.base.audit import record_event
from stspolicy.extensions import utcnow

TOKEN_PREFIX = "stsp_"  # noqa: S105 (a public marker, not a secret)
NAME_MAX_LENGTH = 100
# last_used_at is written at most this often, so API reads do not each cost a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def digest_secret(secret: str) -> str:
    """What is stored of a random secret (a token, a password link): enough to find it, useless to a thief."""
    return hashlib.sha256(secret.encode("utf-8", "replace")).hexdigest()


def create_token(session: Session, user: User, name: str, *, actor: str) -> tuple[ApiToken, str]:
    """A new token for `user`; returns it with its secret, which is never stored or shown again."""
    name = name.strip()
    if not name or len(name) > NAME_MAX_LENGTH:
        raise AccountError(f"a token name needs 1 to {NAME_MAX_LENGTH} characters", field="name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user=user, name=name, token_hash=digest_secret(secret), created_at=utcnow())
    session.add(token)
    session.flush()
    record_event(session, actor, "token.create", token_id=token.id, name=name, email=user.email)
    session.commit()
    return token, secret


def user_for_token(session: Session, secret: str) -> tuple[User, ApiToken] | None:
    """The user a bearer secret acts for, or None when it is unknown or revoked."""
    if not secret.startswith(TOKEN_PREFIX) or len(secret) > 100:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == digest_secret(secret)))
    if token is None or token.revoked_at is not None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
        session.commit()
    return token.user, token


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.id)))


def visible_tokens(session: Session, user: User) -> list[ApiToken]:
    """Every token for an admin; a member's own."""
    if user.is_admin:
        return list_tokens(session)
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id).order_by(ApiToken.id)))


def token_for_user(session: Session, user: User, token_id: int) -> ApiToken | None:
    """A token the user may manage (own, or any for an admin), else None."""
    token = session.get(ApiToken, token_id)
    if token is None or not (user.is_admin or token.user_id == user.id):
        return None
    return token


def revoke_token(session: Session, token: ApiToken, *, actor: str) -> None:
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        record_event(session, actor, "token.revoke", token_id=token.id, name=token.name, email=token.user.email)
        session.commit()
