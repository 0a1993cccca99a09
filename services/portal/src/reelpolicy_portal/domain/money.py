"""Amounts and dates as a locale writes them (Babel's CLDR data)."""

from __future__ import annotations

from datetime import date

from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

Locale = str
"""``zh-CN`` or ``en`` (see :data:`LOCALES`)."""
LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"


def babel_locale(locale: Locale) -> str:
    return "zh_CN" if locale == "zh-CN" else "en"


def cny(amount: int, locale: Locale) -> str:
    """Whole yuan with the currency sign and thousands separators: ¥3,000,000."""
    return format_currency(
        amount, "CNY", format="¤#,##0", locale=babel_locale(locale), currency_digits=False
    )


def number(value: int, locale: Locale) -> str:
    return format_decimal(value, locale=babel_locale(locale))


def long_date(value: date, locale: Locale) -> str:
    return format_date(value, format="long", locale=babel_locale(locale))
