"""The language of the web pages: the user's choice on their account page, else the browser's
Accept-Language, else English. Texts come from the catalogues in stspolicy/translations
(`make messages` extracts and compiles them); dates and numbers are formatted by Babel."""

from datetime import date, datetime

from flask import Flask, request
from flask_babel import format_date, format_datetime, format_decimal, get_locale, get_translations
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from stspolicy.accounts.models import LANGUAGES
from stspolicy.base.words import translate
from stspolicy.extensions import babel

# The roles of accounts (accounts.models.ROLES) and of grants (GRANT_ROLES) as the pages name them.
ROLE_NAMES = {"admin": _l("admin"), "member": _l("member"), "editor": _l("editor"), "viewer": _l("viewer")}


def select_language() -> str:
    if current_user and current_user.is_authenticated and current_user.language:
        return current_user.language
    return request.accept_languages.best_match(LANGUAGES, default=LANGUAGES[0])


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_language)
    app.add_template_global(get_locale)  # <html lang="...">
    app.add_template_filter(percentage)
    app.add_template_filter(whole_number)
    app.add_template_filter(translated)
    app.add_template_filter(day)
    app.add_template_filter(role_name)


def local_datetime(moment: datetime, precision: str = "minutes") -> str:
    """A UTC time in the page's language. English keeps ISO 8601 (2026-11-01 12:00), read alike in every
    English-speaking region; other languages get their medium date and a 24-hour time (1 nov. 2026 12:00)."""
    time_pattern = "HH:mm:ss" if precision == "seconds" else "HH:mm"
    if str(get_locale()) == LANGUAGES[0]:
        return format_datetime(moment, f"yyyy-MM-dd {time_pattern}")
    return f"{format_date(moment, 'medium')} {format_datetime(moment, time_pattern)}"


def percentage(rate: float) -> str:
    """A rate of 0..1 as a percentage with one decimal in the page's language: 12.5 %, 12,5 %."""
    return f"{format_decimal(rate * 100, '0.0')} %"


def whole_number(value: float) -> str:
    """A count rounded to a whole number, grouped in the page's language: 1,234 or 1 234."""
    return format_decimal(round(value), "#,##0")


def translated(text) -> str:
    """Words (stspolicy.base.words) in the page's language; any other text as it is."""
    catalogue = get_translations()
    return translate(text, catalogue.ugettext, catalogue.ungettext)


def day(moment: date | None) -> str:
    """A UTC day in the page's language: 2026-11-01 in English (as in `local_datetime`), 1 nov. 2026 in French."""
    if moment is None:
        return "–"
    if str(get_locale()) == LANGUAGES[0]:
        return moment.strftime("%Y-%m-%d")
    return format_date(moment, "medium")


def role_name(role: str) -> str:
    """A role in the page's language (the stored value stays English)."""
    return str(ROLE_NAMES.get(role, role))
