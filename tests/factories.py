"""Rows for tests, and the three personas every view test module uses (admin, member, outsider)."""

import functools
import json
import re
from dataclasses import dataclass

from reports.ingest import Settings, ingest_report
from stspolicy.accounts.models import User
from stspolicy.accounts.service import hash_password, set_grant
from stspolicy.dns.models import DnsObservation, MxObservation
from stspolicy.policies.models import Domain
from stspolicy.policies.rules import make_policy
from stspolicy.policies.service import add_domain

PASSWORD = "correct horse battery staple"


@functools.cache
def password_hash() -> str:
    """argon2 is slow on purpose: hash the shared test password once per process."""
    return hash_password(PASSWORD)


def make_user(session, email: str, role: str = "member") -> User:
    user = User(email=email, password_hash=password_hash(), role=role)
    session.add(user)
    session.commit()
    return user


def host(session, name: str, mode: str = "testing", mx: tuple[str, ...] = ("mx1.{}", "*.mx.{}")) -> Domain:
    version = add_domain(session, name, make_policy(mode, [p.format(name) for p in mx], 604800), actor="test")
    return version.domain


@dataclass
class People:
    """`admin` sees all; `editor` and `viewer` share `shared`; `outsider` is a member with `foreign` only."""

    admin: User
    editor: User
    viewer: User
    outsider: User
    shared: Domain
    foreign: Domain


def make_people(session) -> People:
    shared, foreign = host(session, "shared.example"), host(session, "foreign.example")
    admin = make_user(session, "admin@provider.example", "admin")
    editor = make_user(session, "editor@customer.example")
    viewer = make_user(session, "viewer@customer.example")
    outsider = make_user(session, "outsider@other.example")
    set_grant(session, editor, shared, "editor", actor="test")
    set_grant(session, viewer, shared, "viewer", actor="test")
    set_grant(session, outsider, foreign, "editor", actor="test")
    return People(admin, editor, viewer, outsider, shared, foreign)


def sign_in(client, user: User) -> None:
    """Be `user` in this test client without paying for a password check (tests of login do it for real)."""
    with client.session_transaction() as session:
        session["_user_id"] = user.get_id()
        session["_fresh"] = True


def csrf_token(client, page: str = "/login") -> str:
    """The CSRF token of the client's session, read from a page as a browser would."""
    html = client.get(page).get_data(as_text=True)
    return re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html).group(1)


def stored_check(session, domain: Domain, findings: list[dict], mx_hosts: tuple[str, ...] = ()) -> DnsObservation:
    """A finished `dns check` of `domain` that saw `mx_hosts` and found `findings` (as checks.Finding.as_dict)."""
    observation = DnsObservation(
        domain=domain, kind="check", status="problems" if findings else "ok", policy_id="1", findings=findings,
        mx_hosts=[MxObservation(host=host, preference=10, tlsa_name=f"_25._tcp.{host}", tlsa_state="insecure",
                                tlsa_records=[], starttls=True) for host in mx_hosts])
    session.add(observation)
    session.commit()
    return observation


def store_report(session, document: dict, body: bytes | None = None, **options) -> int:
    """Take in a report (JSON `document`, or `body` as sent) as the intake does; its row id.
    Reports about no hosted domain are kept."""
    body = body if body is not None else json.dumps(document).encode()
    return ingest_report(session, body, Settings(accept_unhosted=True), source="https", **options).row_id
