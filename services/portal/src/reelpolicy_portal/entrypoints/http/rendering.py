"""Pages from Jinja2 templates, every text from the message catalogs.

The English texts are the message ids; ``locales/zh_CN/LC_MESSAGES/messages.po`` holds
their Chinese. The catalogs are compiled (Babel) when the process starts, so the .po
files are the only source kept. zh-CN is the default locale; English is chosen with
the switch (``?lang=en`` or ``/lang/en``, remembered in a cookie).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from reelpolicy_portal.domain.money import DEFAULT_LOCALE, LOCALES, cny, long_date, number
from reelpolicy_portal.entrypoints.http import labels

PACKAGE = Path(__file__).resolve().parents[2]
TEMPLATES = PACKAGE / "templates"
LOCALE_DIR = PACKAGE / "locales"
LANG_COOKIE = "rp_lang"
PRESESSION_COOKIE = "rp_presession"


@functools.cache
def translations(locale: str) -> NullTranslations:
    if locale == "en":
        return NullTranslations()
    path = LOCALE_DIR / locale.replace("-", "_") / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as po:
        catalog = read_po(po, locale=locale.replace("-", "_"))
    # each part of the site may keep its messages in a catalog of its own beside this one
    for part in sorted(path.parent.glob("*.po")):
        if part != path:
            with part.open("rb") as po:
                for message in read_po(po, locale=locale.replace("-", "_")):
                    if message.id:
                        catalog[message.id] = message
    compiled = io.BytesIO()
    write_mo(compiled, catalog)
    compiled.seek(0)
    return Translations(compiled)


@functools.cache
def environment(locale: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.filters["cny"] = lambda amount: "" if amount is None else cny(int(amount), locale)
    env.filters["number"] = lambda value: number(int(value), locale)
    env.filters["day"] = _day(locale)
    env.filters["value"] = _value(locale)
    env.globals["labels"] = labels
    env.globals["policy_title"] = _policy_title(locale)
    env.globals["locale"] = locale
    env.globals["html_lang"] = "zh-CN" if locale == "zh-CN" else "en"
    return env


def _day(locale: str) -> Callable[[object], str]:
    def format_day(value: object) -> str:
        if isinstance(value, str):
            text = value
            try:
                value = date.fromisoformat(text[:10])
            except ValueError:
                return text
        if isinstance(value, datetime):
            value = value.date()
        return long_date(value, locale) if isinstance(value, date) else ""

    return format_day


def _value(locale: str) -> Callable[[object], str]:
    """A value of an explanation as the locale writes it: dates, lists, unknowns."""
    format_day = _day(locale)

    def value(item: object) -> str:
        if isinstance(item, list):
            return ", ".join(value(v) for v in item)
        if isinstance(item, str) and len(item) == 10 and item[4] == "-" and item[7] == "-":
            return format_day(item)
        if isinstance(item, bool) or item is None:
            return gettext(locale, labels.VALUES[item])
        return str(item)

    return value


def _policy_title(locale: str) -> Any:
    key = "zh" if locale == "zh-CN" else "en"

    def policy_title(titles: dict[str, dict[str, str]], policy_id: str) -> str:
        return (titles.get(policy_id) or {}).get(key) or policy_id

    return policy_title


def request_locale(request: Request) -> str:
    """The ``lang`` query (which the response then remembers), else the cookie, else zh-CN."""
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        if candidate in LOCALES:
            return candidate
    return DEFAULT_LOCALE


def gettext(locale: str, message: str) -> str:
    translated: str = translations(locale).gettext(message)
    return translated


def render(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    locale = request_locale(request)
    html = environment(locale).get_template(template).render(request=request, **context)
    response = HTMLResponse(html, status_code=status_code)
    remember_locale(request, response, locale)
    if context.get("presession"):  # the value a signed-out browser's CSRF token binds to
        response.set_cookie(
            PRESESSION_COOKIE,
            context["presession"],
            httponly=True,
            samesite="lax",
            secure=request.app.state.portal.settings.portal_secure_cookies,
            path="/",
        )
    return response


def remember_locale(request: Request, response: Any, locale: str) -> None:
    if request.query_params.get("lang") == locale and request.cookies.get(LANG_COOKIE) != locale:
        settings = request.app.state.portal.settings
        response.set_cookie(
            LANG_COOKIE,
            locale,
            max_age=365 * 24 * 3600,
            httponly=True,
            samesite="lax",
            secure=settings.portal_secure_cookies,
        )
