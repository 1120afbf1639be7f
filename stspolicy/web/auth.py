"""Sign in and out of the admin UI (Flask-Login sessions, rate-limited password checks)."""

from urllib.parse import urlsplit

from flask import Blueprint, Flask, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField
from wtforms.validators import InputRequired, Length

from stspolicy.accounts.service import PASSWORD_MAX_LENGTH, authenticate, end_sessions
from stspolicy.extensions import db, limiter

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField("E-mail", validators=[InputRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[InputRequired(), Length(max=PASSWORD_MAX_LENGTH)])


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


def _submitted_email() -> str:
    return "login:" + request.form.get("email", "").strip().lower()[:254]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(_login_limit, methods=["POST"])
@limiter.limit(_login_limit, methods=["POST"], key_func=_submitted_email)
def login():
    """Per client address and per account: guessing is slow from one place and against one account."""
    if current_user.is_authenticated:
        return redirect(url_for("admin.index"))
    form = LoginForm()
    if form.validate_on_submit():
        user = authenticate(db.session, form.email.data, form.password.data)
        if user is not None:
            session.clear()  # a fresh session: nothing set before sign-in carries over
            login_user(user)
            return redirect(_safe_next(request.args.get("next")))
        form.password.errors = ["Wrong e-mail or password."]
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    """Ends every session of the account, in other browsers too: sessions are not stored one by one."""
    end_sessions(db.session, current_user)
    logout_user()
    session.clear()
    flash("Signed out.")
    return redirect(url_for("auth.login"))


def _safe_next(target: str | None) -> str:
    """Only a path on this site: `next=//evil.example` or `https://...` must not send the user away."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc:
            return target
    return url_for("admin.index")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
