"""Accounts in the browser: admins invite people, give and take their domain access, make
set-password links and remove accounts; everyone changes their own password. Every change is
audited by the account services it calls."""

from flask import abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_user

from stspolicy.accounts.links import invite_user, open_links, reset_link
from stspolicy.accounts.service import (
    AccountError,
    authenticate,
    list_users,
    remove_grant,
    remove_user,
    set_grant,
    set_language,
    set_password,
    user_for_admin,
)
from stspolicy.extensions import db, limiter, utcnow
from stspolicy.policies.queries import get_domain, list_domains
from stspolicy.web.admin.forms import PASSWORD_HINT, AccountGrantForm, ChangePasswordForm, InviteForm, LanguageForm
from stspolicy.web.admin.views import actor, both_forms, bp, require_admin, show_password_link, take_shown_once
from stspolicy.web.auth import login_limit
from stspolicy.web.locale import role_name


@bp.get("/users")
def users():
    require_admin()
    return _users_page(InviteForm(formdata=None))


@bp.post("/users")
def invite():
    require_admin()
    form = InviteForm()
    if form.validate_on_submit():
        try:
            user, secret = invite_user(db.session, form.email.data, form.role.data, actor=actor())
        except AccountError as error:
            form.email.errors = [*form.email.errors, error.message]
        else:
            show_password_link(user, secret)
            flash(_("Invited %(email)s as %(role)s: pass the link below on to them.", email=user.email,
                    role=role_name(user.role)))
            return redirect(url_for(".user", user_id=user.id))
    return _users_page(form, status=422)


def _users_page(form: InviteForm, status: int = 200):
    accounts = list_users(db.session)
    return render_template("admin/users.html", users=accounts, form=form,
                           links=open_links(db.session, accounts, utcnow()),
                           replace_url=url_for(".users") if status != 200 else None), status


@bp.get("/users/<int:user_id>")
def user(user_id):
    return _user_page(_account(user_id), AccountGrantForm(formdata=None))


@bp.post("/users/<int:user_id>/grants")
def user_grant(user_id):
    account = _account(user_id)
    form = _grant_form(AccountGrantForm())
    if form.validate_on_submit():
        try:
            grant = set_grant(db.session, account, get_domain(db.session, form.domain.data), form.role.data,
                              actor=actor())
        except AccountError as error:
            form.domain.errors = [*form.domain.errors, error.message]
        else:
            flash(_("%(email)s is now %(role)s of %(domain)s.",
                    email=account.email, role=role_name(grant.role), domain=grant.domain.unicode_name))
            return redirect(url_for(".user", user_id=account.id) + "#access")
    return _user_page(account, form, status=422)


@bp.post("/users/<int:user_id>/grants/<name>/remove")
def user_revoke(user_id, name):
    account = _account(user_id)
    domain = get_domain(db.session, name)
    try:
        remove_grant(db.session, account, domain, actor=actor())
    except AccountError:
        abort(404)
    flash(_("%(email)s has no access to %(domain)s any more.", email=account.email, domain=domain.unicode_name))
    return redirect(url_for(".user", user_id=account.id) + "#access")


@bp.post("/users/<int:user_id>/link")
def user_link(user_id):
    account = _account(user_id)
    show_password_link(account, reset_link(db.session, account, actor=actor()))
    flash(_("A new set-password link for %(email)s: pass it on to them. Older links no longer work.",
            email=account.email))
    return redirect(url_for(".user", user_id=account.id))


@bp.post("/users/<int:user_id>/remove")
def user_remove(user_id):
    account = _account(user_id)
    if account.id == current_user.id:
        abort(403, "You cannot remove your own account; another admin can.")
    email = account.email
    try:
        remove_user(db.session, account, actor=actor())
    except AccountError as error:
        flash(error.message, "error")
        return redirect(url_for(".user", user_id=account.id))
    flash(_("Removed the account %(email)s, its domain access and API tokens.", email=email))
    return redirect(url_for(".users"))


@bp.route("/account", methods=["GET", "POST"])
@limiter.limit(login_limit, methods=["POST"])
def account():
    """Everyone's own password; a new one ends every other session of the account.

    Limited like sign-in: the current password is checked here too."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        if authenticate(db.session, current_user.email, form.current.data) is None:
            form.current.errors = [*form.current.errors, _("This is not your current password.")]
        else:
            user = current_user._get_current_object()
            set_password(db.session, user, form.password.data, actor=actor())
            db.session.refresh(user)
            login_user(user)  # this session goes on under the new session generation
            flash(_("Your password is changed. Your other sessions have ended."))
            return redirect(url_for(".account"))
    status = 422 if form.errors else 200
    return _account_page(form, LanguageForm(formdata=None, language=current_user.language or ""), status)


@bp.post("/account/language")
def account_language():
    """Everyone's own language for these pages; none follows the browser's."""
    form = LanguageForm()
    if not form.validate_on_submit():
        return _account_page(ChangePasswordForm(formdata=None), form, 422)
    set_language(db.session, current_user._get_current_object(), form.language.data or None)
    flash(_("The pages are now shown in the language you chose."))
    return redirect(url_for(".account"))


def _account_page(form: ChangePasswordForm, language_form: LanguageForm, status: int):
    return render_template("admin/account.html", form=form, language_form=language_form, hint=PASSWORD_HINT,
                           replace_url=url_for(".account") if status != 200 else None), status


def _account(user_id: int):
    require_admin()
    found = user_for_admin(db.session, current_user, user_id)
    if found is None:
        abort(404, f"There is no account #{user_id}.")
    return found


def _grant_form(form: AccountGrantForm) -> AccountGrantForm:
    form.domain.choices = [(domain.name, both_forms(domain.name)) for domain in list_domains(db.session)]
    return form


def _user_page(account, form: AccountGrantForm, status: int = 200):
    link = take_shown_once("password_link")
    return render_template(
        "admin/user.html", account=account, form=_grant_form(form),
        grants=sorted(account.grants, key=lambda grant: grant.domain.name),
        link=link if link and link["user_id"] == account.id else None,
        open_link=open_links(db.session, [account], utcnow()).get(account.id),
        replace_url=url_for(".user", user_id=account.id) if status != 200 else None,
    ), status
