"""The missing fields a company can fill from the portal: which record and attribute a
policy field names, the kind of input it takes, and the merge patch a value makes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from reelpolicy_portal.domain.messages import N_

InputKind = Literal["date", "integer", "decimal", "boolean", "region"]
SubjectType = Literal["enterprise", "production"]

FILLABLE: dict[str, InputKind] = {
    "enterprise.established_on": "date",
    "enterprise.employees": "integer",
    "enterprise.registered_capital_cny": "integer",
    "enterprise.sme": "boolean",
    "production.region_code": "region",
    "production.episodes": "integer",
    "production.minutes_per_episode": "decimal",
    "production.budget_cny": "integer",
    "production.promotion_budget_cny": "integer",
    "production.release_date": "date",
    "production.metrics.views": "integer",
    "production.metrics.rating": "decimal",
}
"""Policy fields that map one to one onto a record attribute a company may patch (the
others, e.g. lists of awards or grants, are edited through the registry's API)."""


class InvalidValueError(ValueError):
    """A value the field's input kind does not accept; the message says what it takes."""


@dataclass(frozen=True)
class FillableField:
    path: str
    """The policy field, e.g. ``enterprise.established_on``."""
    subject_type: SubjectType
    attributes: tuple[str, ...]
    """The attribute path inside the record, e.g. ``("metrics", "views")``."""
    kind: InputKind

    def patch(self, value: Any) -> dict[str, Any]:
        """The RFC 7396 merge patch that sets this attribute (nested objects merge)."""
        patch: dict[str, Any] = {self.attributes[-1]: value}
        for name in reversed(self.attributes[:-1]):
            patch = {name: patch}
        return patch

    def current(self, record: dict[str, Any]) -> Any:
        value: Any = record
        for name in self.attributes:
            value = value.get(name) if isinstance(value, dict) else None
        return value

    def parse(self, text: str) -> Any:
        """The JSON value of what the form sent."""
        text = text.strip()
        if not text:
            raise InvalidValueError(N_("required"))
        if self.kind == "date":
            try:
                return date.fromisoformat(text).isoformat()
            except ValueError:
                raise InvalidValueError(N_("a date (YYYY-MM-DD)")) from None
        if self.kind == "integer":
            digits = text.replace(",", "").replace("_", "")
            if not digits.isdigit():
                raise InvalidValueError(N_("a whole number, 0 or more"))
            return int(digits)
        if self.kind == "decimal":
            try:
                number = float(text)
            except ValueError:
                raise InvalidValueError(N_("a number")) from None
            if number != number or number < 0:  # NaN or negative
                raise InvalidValueError(N_("a number, 0 or more"))
            return number
        if self.kind == "boolean":
            if text not in ("true", "false"):
                raise InvalidValueError(N_("yes or no"))
            return text == "true"
        if not (len(text) == 6 and text.isdigit()):
            raise InvalidValueError(N_("a six-digit region code (GB/T 2260)"))
        return text


def fillable(path: str) -> FillableField | None:
    kind = FILLABLE.get(path)
    if kind is None:
        return None
    subject, *attributes = path.split(".")
    subject_type: SubjectType = "enterprise" if subject == "enterprise" else "production"
    return FillableField(path, subject_type, tuple(attributes), kind)
