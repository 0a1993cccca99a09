"""Alerts for people: every alert type in each locale and format (pure).

The words live in one message catalog per locale (``templates/messages/<locale>.toml``,
the same keys in each); the layout lives in one Jinja2 template per format
(``templates/alert.{txt,html,md}``, the HTML one autoescaped). :func:`render` first
composes a :class:`Composed` message (title, one-sentence lead, facts, reasons) in the
locale's words, with amounts and dates formatted by Babel as the locale writes them,
then lays it out. Each body is complete on its own (it starts with the title).

Markdown goes to group robots (WeCom, DingTalk, Feishu), which render some HTML: every
value put into it is escaped so that it can neither form a tag nor markdown syntax.
"""

from __future__ import annotations

import json
import re
import tomllib
from copy import copy
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cache
from importlib.resources import files
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo

from babel import Locale as BabelLocale
from babel.dates import format_date, format_datetime
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from reelpolicy_notify.domain.alerts import DIGEST_TYPE, TEST_TYPE, Alert

Locale = Literal["zh-CN", "en"]
LOCALES: tuple[Locale, ...] = get_args(Locale)
DEFAULT_LOCALE: Locale = "zh-CN"
Format = Literal["text", "html", "markdown"]
DISABLED_TYPE = "endpoint.disabled"
CHINA_TIME = ZoneInfo("Asia/Shanghai")  # the companies' clock, whatever the server's
_TEMPLATES: dict[Format, str] = {"text": "alert.txt", "html": "alert.html", "markdown": "alert.md"}
_LISTED = 10  # subjects, fields or checks named in one list before "(N in all)"


@dataclass(frozen=True)
class RenderedMessage:
    title: str  # one line: an e-mail subject, a robot card's title
    body: str


@dataclass(frozen=True)
class Composed:
    """One alert in a locale's words, before layout."""

    title: str
    lead: str
    facts: tuple[tuple[str, str], ...] = ()
    reasons_label: str = ""
    reasons: tuple[str, ...] = ()
    items: tuple[Composed, ...] = field(default=())
    occurred: str = ""


@cache
def _messages(locale: Locale) -> dict[str, dict[str, str]]:
    raw = files("reelpolicy_notify").joinpath("templates", "messages", f"{locale}.toml")
    return tomllib.loads(raw.read_text(encoding="utf-8"))


class Words:
    """A locale's catalog and its number and date formats."""

    def __init__(self, locale: Locale) -> None:
        self.locale = locale
        self._babel = BabelLocale.parse(locale.replace("-", "_"))
        self._messages = _messages(locale)
        # The locale's currency pattern without its fraction: amounts are whole yuan.
        self._money = copy(self._babel.currency_formats["standard"])
        self._money.frac_prec = (0, 0)

    def __call__(self, key: str, **params: object) -> str:
        section, _, name = key.partition(".")
        return self._messages[section][name].format_map(params)

    def money(self, amount: int | None, *, signed: bool = False) -> str:
        """CNY with the locale's symbol and thousands separators; whole yuan stay whole."""
        if amount is None:
            return self("word.no_cap")
        text = self._money.apply(amount, self._babel, currency="CNY", currency_digits=False)
        return f"+{text}" if signed and amount > 0 else text

    def date(self, value: date | str | None) -> str:
        if value is None:
            return self("word.none")
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value)
            except ValueError:
                return str(value)
        return format_date(value, "medium", locale=self._babel)

    def moment(self, value: datetime) -> str:
        return format_datetime(value, "medium", tzinfo=CHINA_TIME, locale=self._babel)

    def listing(self, values: list[str]) -> str:
        shown = self("word.list_separator").join(values[:_LISTED])
        if len(values) > _LISTED:
            shown = f"{shown} {self('word.more', count=len(values))}"
        return shown or self("word.none")


def _policy_name(words: Words, data: dict[str, Any], *keys: str) -> str:
    """The policy's title in the locale (the Chinese one for zh-CN, when known)."""
    title_key, zh_key = keys
    if words.locale == "zh-CN" and data.get(zh_key):
        return str(data[zh_key])
    return str(data.get(title_key) or data.get("policy_id") or "")


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _failed_checks(node: dict[str, Any]) -> list[dict[str, Any]]:
    """The predicates of a criteria trace that failed (under ``all``/``any``, not ``not``)."""
    if "field" in node:
        return [node] if node.get("result") == "fail" else []
    children = node.get("all") or node.get("any") or []
    return [p for child in children for p in _failed_checks(child)]


def _eligibility_reasons(words: Words, data: dict[str, Any]) -> list[str]:
    """Why, from the explanation and missing fields the event carries."""
    explanation: dict[str, Any] = data.get("explanation") or {}
    status = data.get("status")
    if explanation.get("in_force") is False:
        return [words("reason.not_in_force", date=words.date(explanation.get("today")))]
    reasons: list[str] = []
    if status == "ineligible":
        for check in _failed_checks(explanation.get("criteria") or {})[:_LISTED]:
            reasons.append(
                words(
                    "reason.failed_check",
                    field=check.get("field"),
                    op=check.get("op"),
                    expected=_value(check.get("expected")),
                    actual=_value(check.get("actual")),
                )
            )
        return reasons
    reasons += [words("reason.missing_field", field=f) for f in data.get("missing_fields") or []]
    amount = explanation.get("amount") or {}
    dropped = set()
    for choice in amount.get("exclusive") or []:
        others = [b for b in choice.get("group", []) if b != choice.get("chosen")]
        dropped.update(others)
        reasons.append(
            words("reason.exclusive", chosen=choice.get("chosen"), others=words.listing(others))
        )
    for benefit in amount.get("benefits") or []:
        if benefit.get("id") not in dropped and benefit.get("amount") is not None:
            reasons.append(
                words(
                    "reason.benefit",
                    benefit=benefit.get("id"),
                    kind=benefit.get("kind"),
                    amount=words.money(benefit["amount"]),
                )
            )
    cap, total = amount.get("max_total_cny"), amount.get("sum")
    if cap is not None and total is not None and total > cap:
        reasons.append(words("reason.total_cap", amount=words.money(cap)))
    stacking = explanation.get("stacking")
    if stacking:
        reasons.append(
            words(
                "reason.stacking",
                group=stacking.get("group"),
                cap=words.money(stacking.get("cap_cny")),
                before=words.money(stacking.get("before")),
                after=words.money(stacking.get("after")),
            )
        )
    return reasons


def _eligibility(words: Words, alert: Alert) -> Composed:
    data = alert.data
    subject = f"{words('word.' + str(data.get('subject_type')))} {data.get('subject_id')}"
    policy = _policy_name(words, data, "policy_title", "policy_title_zh")
    status, previous = str(data.get("status")), data.get("previous_status")
    amount, before = data.get("amount_cny"), data.get("previous_amount_cny")
    shown = words.money(amount) if amount is not None else words("word.no_amount")
    says = {"subject": subject, "policy": policy}
    if status == "eligible" and previous == "eligible":
        delta = (amount or 0) - (before or 0)
        lead = words(
            "lead.amount_changed",
            **says,
            old=words.money(before) if before is not None else words("word.no_amount"),
            new=shown,
            delta=words.money(delta, signed=True),
        )
    elif status == "eligible":
        lead = words("lead.now_eligible", **says, amount=shown)
    elif status == "unknown":
        missing = words.listing([str(f) for f in data.get("missing_fields") or []])
        lead = words("lead.unknown", **says, missing=missing)
    else:
        key = "lead.no_longer_eligible" if previous == "eligible" else "lead.not_eligible"
        lead = words(key, **says)
    state = words("word." + status)
    if previous and previous != status:
        state = words("word.status_change", old=words("word." + str(previous)), new=state)
    facts = [
        (words("label.subject"), subject),
        (words("label.policy"), f"{policy} ({data.get('policy_id')})"),
        (words("label.status"), state),
    ]
    if amount is not None:
        facts.append((words("label.amount"), words.money(amount)))
    if before is not None and before != amount:
        facts.append((words("label.previous_amount"), words.money(before)))
        if amount is not None:
            facts.append((words("label.change"), words.money(amount - before, signed=True)))
    return Composed(
        title=words("title.eligibility.changed", policy=policy),
        lead=lead,
        facts=tuple(facts),
        reasons_label=words("label.why"),
        reasons=tuple(_eligibility_reasons(words, data)),
    )


_MONEY_PARAMS = {
    "cap_raised": ("old", "new"),
    "cap_lowered": ("old", "new"),
    "cap_changed": ("old", "new"),
    "fund_changed": ("old", "new"),
    "total_cap_changed": ("old", "new"),
    "benefit_added_cap": ("cap",),
}


def _change_sentence(words: Words, key: str, params: dict[str, Any]) -> str:
    shown: dict[str, object] = dict(params)
    for name in _MONEY_PARAMS.get(key, ()):
        shown[name] = words.money(params.get(name))
    if key.startswith(("deadline_", "start_")):
        for name in ("old", "new"):
            shown[name] = words.date(params.get(name))
    return words("change." + key, **shown)


def _policy_changed(words: Words, alert: Alert) -> Composed:
    data = alert.data
    policy = _policy_name(words, data, "title", "title_zh")
    says = {"policy": policy, "version": data.get("version")}
    if data.get("change") == "revoked":
        title, lead = words("title.policy.revoked", policy=policy), words("lead.revoked", **says)
    elif data.get("previous_version") is None:
        title = words("title.policy.changed", policy=policy)
        lead = words("lead.published_new", **says)
    else:
        title = words("title.policy.changed", policy=policy)
        lead = words("lead.published", **says, previous=data.get("previous_version"))
    items = data.get("change_items")
    if isinstance(items, list):
        changes = [_change_sentence(words, i["key"], i.get("params") or {}) for i in items]
    else:  # stored before the catalogs: only the English sentences exist
        changes = [str(c) for c in data.get("changes") or []]
    return Composed(
        title=title,
        lead=lead,
        facts=(
            (words("label.policy"), f"{policy} ({data.get('policy_id')})"),
            (words("label.version"), str(data.get("version"))),
        ),
        reasons_label=words("label.changes"),
        reasons=tuple(changes),
    )


def _deadline(words: Words, alert: Alert) -> Composed:
    data = alert.data
    policy = _policy_name(words, data, "title", "title_zh")
    when, days = words.date(data.get("expires_on")), data.get("days_left")
    facts = [
        (words("label.policy"), f"{policy} ({data.get('policy_id')})"),
        (words("label.deadline"), when),
        (words("label.days_left"), words("word.days", days=days)),
    ]
    if alert.amount_cny is not None:
        facts.append((words("label.max_amount"), words.money(alert.amount_cny)))
    subjects = [str(s) for s in data.get("eligible_subjects") or []]
    if subjects:
        facts.append((words("label.eligible_subjects"), words.listing(subjects)))
    return Composed(
        title=words("title.policy.deadline", policy=policy),
        lead=words("lead.deadline", policy=policy, date=when, days=days),
        facts=tuple(facts),
    )


def compose(alert: Alert, words: Words) -> Composed:
    """``alert`` in the words of ``words``' locale."""
    data = alert.data
    if alert.type == "eligibility.changed":
        composed = _eligibility(words, alert)
    elif alert.type == "policy.changed":
        composed = _policy_changed(words, alert)
    elif alert.type == "policy.deadline":
        composed = _deadline(words, alert)
    elif alert.type == DIGEST_TYPE:
        items = tuple(compose(Alert.from_body(i), words) for i in data.get("alerts") or [])
        count = data.get("count", len(items))
        composed = Composed(
            title=words("title.digest", count=count),
            lead=words("lead.digest", count=count),
            items=items,
        )
    elif alert.type == TEST_TYPE:
        composed = Composed(title=words("title.test"), lead=words("lead.test"))
    elif alert.type == DISABLED_TYPE:
        target = data.get("url") or data.get("email")
        if data.get("channel") in ("wecom", "dingtalk", "feishu"):  # its URL: scheme and host
            target = words(f"robot.{data['channel']}", host=data.get("url"))
        lead = words("lead.endpoint_disabled", target=target, reason=data.get("reason"))
        composed = Composed(title=words("title.endpoint.disabled"), lead=lead)
    else:
        summary = data.get("summary")
        text = "; ".join(map(str, summary)) if isinstance(summary, list) else str(summary or "")
        composed = Composed(
            title=words("title.other", type=alert.type), lead=words("lead.other", summary=text)
        )
    occurred = words("label.occurred", when=words.moment(alert.occurred_at))
    return replace(composed, occurred=occurred)


# Inside a line (every value follows a label or a marker), these alone start syntax:
# emphasis, code, links, strike-through, table cells.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]~|])")


def markdown_text(value: object) -> str:
    """``value`` as literal markdown text on one line: the punctuation that could start
    markdown syntax is backslash-escaped, and ``<``/``>``/``&`` become their full-width forms, which no
    robot platform reads as the start of a tag or an entity."""
    text = " ".join(str(value).split())
    text = text.replace("<", "＜").replace(">", "＞").replace("&", "＆")
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("reelpolicy_notify", "templates"),
        autoescape=select_autoescape(["html"], default_for_string=False, default=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = markdown_text
    return env


def one_line(value: str) -> str:
    return " ".join(value.split())


def render(
    alert: Alert, *, locale: Locale, fmt: Format, unsubscribe_url: str | None = None
) -> RenderedMessage:
    """``alert`` for a person reading ``locale``, laid out as ``fmt``; an e-mail passes its
    ``unsubscribe_url`` to carry the link (text and HTML)."""
    words = Words(locale)
    message = compose(alert, words)
    template = _environment().get_template(_TEMPLATES[fmt])
    body = template.render(
        m=message,
        colon=words("word.colon"),
        lang=locale,
        unsubscribe_url=unsubscribe_url,
        unsubscribe_text=words("label.unsubscribe", url=unsubscribe_url or ""),
        unsubscribe_before=words("label.unsubscribe_before"),
        unsubscribe_link=words("label.unsubscribe_link"),
    )
    return RenderedMessage(title=one_line(message.title), body=body)


def render_unsubscribe_page(
    *,
    locale: Locale,
    state: Literal["confirm", "done", "unknown"],
    email: str = "",
    action: str | None = None,
) -> str:
    """The page an unsubscribe link opens: a confirmation with its form (``action``), the
    result, or an unknown link."""
    words = Words(locale)
    return (
        _environment()
        .get_template("unsubscribe.html")
        .render(
            lang=locale,
            title=words(f"unsubscribe.{state}_title"),
            text=words(f"unsubscribe.{state}_text", email=email),
            button=words("unsubscribe.confirm_button"),
            action=action if state == "confirm" else None,
        )
    )
