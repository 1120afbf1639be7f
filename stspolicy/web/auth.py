"""Sign in and out of the admin UI (Flask-Login sessions, rate-limited password checks)."""

import logging
from urllib.parse import urlsplit

import limits
from flask import Blueprint, Flask, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.exceptions import TooManyRequests
from wtforms import EmailField, PasswordField
from wtforms.validators import InputRequired, Length

from stspolicy.accounts.links import link_for_secret, use_link
from stspolicy.accounts.service import PASSWORD_MAX_LENGTH, authenticate, end_sessions
from stspolicy.extensions import db, limiter, utcnow
from stspolicy.web.admin.forms import PASSWORD_HINT, SetPasswordForm

log = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField(_l("E-mail"), validators=[InputRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[InputRequired(), Length(max=PASSWORD_MAX_LENGTH)])


def login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def login():
    """Limited per client address (every attempt) and per account (failed attempts only).

    Once an account has had too many failures, only addresses that made none of them may
    still try it: guessing against one account is slow, and its owner still signs in.
    """
    if current_user.is_authenticated:
        return redirect(url_for("admin.index"))
    form = LoginForm()
    if form.validate_on_submit():
        account, address = form.email.data.strip().lower(), request.remote_addr or ""
        _refuse_after_failures(account, address)
        user = authenticate(db.session, form.email.data, form.password.data)
        if user is not None:
            session.clear()  # a fresh session: nothing set before sign-in carries over
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        _count_failure(account, address)
        form.password.errors = [_("Wrong e-mail or password.")]
    return render_template("auth/login.html", form=form)


def _refuse_after_failures(account: str, address: str) -> None:
    """429 when the account had too many failures in a window and this address made some of them."""
    for limit in limits.parse_many(login_limit()):
        try:
            locked = not limiter.limiter.test(limit, "login-failures", account)
            failed_here = locked and limiter.limiter.get_window_stats(
                limit, "login-failures", account, address).remaining < limit.amount
        except Exception as error:  # the storage's client errors; the per-address limit still holds
            log.warning("rate limit storage unreachable, account limit not checked: %s", error)
            return
        if failed_here:
            raise TooManyRequests("Too many failed sign-ins to this account from here; try again later.",
                                  retry_after=limit.get_expiry())


def _count_failure(account: str, address: str) -> None:
    for limit in limits.parse_many(login_limit()):
        try:
            limiter.limiter.hit(limit, "login-failures", account)
            limiter.limiter.hit(limit, "login-failures", account, address)
        except Exception as error:
            log.warning("rate limit storage unreachable, failed sign-in not counted: %s", error)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Ends every session of the account, in other browsers too: sessions are not stored one by one."""
    end_sessions(db.session, current_user)
    logout_user()
    session.clear()
    flash(_("Signed out."))
    return redirect(url_for("auth.login"))


@bp.route("/password/<secret>", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def set_password(secret):
    """The page an invitation or reset link opens: choose a password, and be signed in with it."""
    link = link_for_secret(db.session, secret, utcnow())
    if link is None:
        abort(404, "This link has been used, replaced by a newer one, or has expired: ask an admin for a new one.")
    form = SetPasswordForm()
    if form.validate_on_submit():
        user = use_link(db.session, link, form.password.data)
        session.clear()
        login_user(user)
        flash(_("Welcome, %(email)s: your password is set and you are signed in.", email=user.email))
        return redirect(url_for("admin.index"))
    return render_template("auth/set_password.html", form=form, link=link, hint=PASSWORD_HINT,
                           replace_url=request.path if form.errors else None), 422 if form.errors else 200


def _safe_next(target: str | None) -> str:
    """Only a path on this site: `next=//evil.example` or `https://...` must not send the user away."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("admin.index")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
