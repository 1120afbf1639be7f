"""Accounts, passwords and tenancy: who may see and change which domain.

Every view reaches a domain through `domain_for_user`: another tenant's domain is
indistinguishable from one that is not hosted (404), a viewer asking to change is a 403.
"""

import functools
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stspolicy.accounts.models import GRANT_ROLES, LANGUAGES, NO_PASSWORD, ROLES, Grant, User
from stspolicy.base.audit import record_event
from stspolicy.policies.errors import DomainError, DomainNotFound
from stspolicy.policies.models import Domain
from stspolicy.policies.queries import find_domain, list_domains

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 1024
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,253}$")

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the e-mail is unknown, so a login takes as long either way."""
    return _hasher.hash("not a password of anyone")


class AccountError(ValueError):
    """A request about accounts that cannot be done; `field` names the input at fault."""

    def __init__(self, message: str, field: str = "email"):
        super().__init__(message)
        self.field = field
        self.message = message


class AccessDenied(DomainError):
    """The user sees the domain but may not do this to it."""

    status = 403


def normalize_email(email: str) -> str:
    text = email.strip().lower()
    if len(text) > 254 or not _EMAIL.match(text):
        raise AccountError(f"invalid e-mail address {email[:80]!r}")
    return text


def hash_password(password: str) -> str:
    if len(password) < PASSWORD_MIN_LENGTH:
        raise AccountError(f"the password needs at least {PASSWORD_MIN_LENGTH} characters", field="password")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise AccountError(f"the password has more than {PASSWORD_MAX_LENGTH} characters", field="password")
    return _hasher.hash(password)


def find_user(session: Session, email: str) -> User | None:
    try:
        return session.scalar(select(User).where(User.email == normalize_email(email)))
    except AccountError:
        return None


def get_user(session: Session, email: str) -> User:
    user = find_user(session, email)
    if user is None:
        raise AccountError(f"no account {email[:254]!r}")
    return user


def new_account(session: Session, email: str, role: str, password: str | None = None) -> User:
    """An account added to the session, not committed; without a password until its owner sets one."""
    if role not in ROLES:
        raise AccountError(f"invalid role {role!r}: must be one of {', '.join(ROLES)}", field="role")
    email = normalize_email(email)
    if find_user(session, email) is not None:
        raise AccountError(f"an account {email} exists already")
    user = User(email=email, password_hash=hash_password(password) if password is not None else NO_PASSWORD,
                role=role)
    session.add(user)
    return user


def create_user(session: Session, email: str, password: str, role: str, *, actor: str) -> User:
    user = new_account(session, email, role, password)
    record_event(session, actor, "user.create", email=user.email, role=role)
    session.commit()
    return user


def set_password(session: Session, user: User, password: str, *, actor: str) -> None:
    """A new password, which ends every session signed in with the old one."""
    user.password_hash = hash_password(password)
    user.session_generation = User.session_generation + 1
    record_event(session, actor, "user.password", email=user.email)
    session.commit()


def set_language(session: Session, user: User, language: str | None) -> None:
    """The language of the user's web pages: one of LANGUAGES, or None to follow the browser's."""
    if language is not None and language not in LANGUAGES:
        raise AccountError(f"no such language: {language}")
    user.language = language
    session.commit()


def end_sessions(session: Session, user: User) -> None:
    """Sign the account out everywhere: a session cookie copied before stops working too."""
    user.session_generation = User.session_generation + 1
    session.commit()


def remove_user(session: Session, user: User, *, actor: str) -> None:
    """Delete an account with its grants and tokens; its signed-in sessions end at their next request.

    The last admin stays: without one, nobody could manage accounts from the browser.
    """
    if user.is_admin and session.scalar(select(func.count()).where(User.role == "admin")) <= 1:
        raise AccountError(f"{user.email} is the last admin: make another admin first")
    record_event(session, actor, "user.remove", email=user.email)
    session.delete(user)
    session.commit()


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The user with this e-mail and password, or None; never says which of the two was wrong."""
    user = find_user(session, email) if len(password) <= PASSWORD_MAX_LENGTH else None
    try:
        _hasher.verify(user.password_hash if user else _dummy_hash(), password[:PASSWORD_MAX_LENGTH])
    except (VerificationError, InvalidHashError):
        return None
    if user is None:
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
        session.commit()
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def user_for_admin(session: Session, user: User, user_id: int) -> User | None:
    """The account `user_id` if `user` may manage it (admins manage every account), else None."""
    return session.get(User, user_id) if user.is_admin else None


def visible_domains(session: Session, user: User) -> list[Domain]:
    """Every domain for an admin; a member's granted domains."""
    if user.is_admin:
        return list_domains(session)
    return list(session.scalars(
        select(Domain).join(Grant, Grant.domain_id == Domain.id).where(Grant.user_id == user.id).order_by(Domain.name)
    ))


def grant_role(session: Session, user: User, domain: Domain) -> str | None:
    """`admin`, `editor`, `viewer`, or None when the user may not see the domain."""
    if user.is_admin:
        return "admin"
    return session.scalar(select(Grant.role).where(Grant.user_id == user.id, Grant.domain_id == domain.id))


def domain_for_user(session: Session, user: User, name: str, need: str = "view") -> Domain:
    """The domain `name` if `user` may `need` ("view", "edit" or "admin") it.

    DomainNotFound (404) when the user may not even see it, AccessDenied (403) otherwise.
    """
    try:
        domain = find_domain(session, name)
    except DomainError:
        domain = None
    role = grant_role(session, user, domain) if domain else None
    if role is None:
        raise DomainNotFound(f"domain {name[:253]} is not hosted here")
    allowed = {"view": ("admin", "editor", "viewer"), "edit": ("admin", "editor"), "admin": ("admin",)}[need]
    if role not in allowed:
        raise AccessDenied(f"your {role} access to {domain.name} does not allow this", field="domain")
    return domain


def domain_grants(session: Session, domain: Domain) -> list[Grant]:
    return list(session.scalars(
        select(Grant).join(User).where(Grant.domain_id == domain.id).order_by(User.email)
    ))


def set_grant(session: Session, user: User, domain: Domain, role: str, *, actor: str) -> Grant:
    """Give a member `editor` or `viewer` access to a domain (replacing any earlier grant)."""
    if role not in GRANT_ROLES:
        raise AccountError(f"invalid access {role!r}: must be one of {', '.join(GRANT_ROLES)}", field="role")
    if user.is_admin:
        raise AccountError(f"{user.email} is an admin and sees every domain already")
    grant = session.scalar(select(Grant).where(Grant.user_id == user.id, Grant.domain_id == domain.id))
    if grant is None:
        grant = Grant(user=user, domain=domain, role=role)
        session.add(grant)
    grant.role = role
    record_event(session, actor, "grant.set", domain, email=user.email, role=role)
    session.commit()
    return grant


def remove_grant(session: Session, user: User, domain: Domain, *, actor: str) -> None:
    grant = session.scalar(select(Grant).where(Grant.user_id == user.id, Grant.domain_id == domain.id))
    if grant is None:
        raise AccountError(f"{user.email} has no access to {domain.name}")
    session.delete(grant)
    record_event(session, actor, "grant.remove", domain, email=user.email)
    session.commit()

