"""The language of the web pages: the user's choice on their account page, else the browser's
Accept-Language, else English. Texts come from the catalogues in stspolicy/translations
(`make messages` extracts and compiles them); dates and numbers are formatted by Babel."""

from datetime import datetime

from flask import Flask, request
from flask_babel import format_date, format_datetime, format_decimal, get_locale
from flask_login import current_user

from stspolicy.accounts.models import LANGUAGES
from stspolicy.extensions import babel


def select_language() -> str:
    if current_user and current_user.is_authenticated and current_user.language:
        return current_user.language
    return request.accept_languages.best_match(LANGUAGES, default=LANGUAGES[0])


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=select_language)
    app.add_template_global(get_locale)  # <html lang="...">
    app.add_template_filter(percentage)
    app.add_template_filter(whole_number)


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
