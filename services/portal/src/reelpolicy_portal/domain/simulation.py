"""The operator's policy simulation (pure): a draft YAML read safely into the JSON
document rules' ``POST /v1/simulate`` takes, and the bars of its chart."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import yaml

MAX_DRAFT_BYTES = 512 * 1024
CHART_WIDTH = 100.0
"""Bar lengths are percentages of the chart's width (the SVG scales to its box)."""


class DraftRejectedError(Exception):
    """The upload is not a YAML mapping; ``problems`` are (where, what) pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{where}: {what}" for where, what in problems))
        self.problems = problems


def _plain(value: Any) -> Any:
    """YAML's dates and timestamps as the ISO text the policy language expects."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a policy value")


def draft_json(upload: bytes) -> bytes:
    """The draft as JSON bytes. ``yaml.safe_load`` builds plain data only: no tag of the
    upload can construct an object."""
    if not upload.strip():
        raise DraftRejectedError([("draft", "The file is empty.")])
    if len(upload) > MAX_DRAFT_BYTES:
        raise DraftRejectedError([("draft", f"The file is larger than {MAX_DRAFT_BYTES} bytes.")])
    try:
        document = yaml.safe_load(upload)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "draft"
        problem = getattr(exc, "problem", None) or str(exc)
        raise DraftRejectedError([(where, str(problem))]) from None
    if not isinstance(document, dict):
        raise DraftRejectedError([("draft", "A policy document is a mapping (id:, title:, ...).")])
    try:
        return json.dumps(document, default=_plain, ensure_ascii=False).encode()
    except (TypeError, ValueError) as exc:
        raise DraftRejectedError([("draft", str(exc))]) from None


@dataclass(frozen=True)
class Bar:
    label: str
    value: int
    shown: str
    """The value as the page writes it (a count, or yuan with separators)."""
    length: float
    """Percent of the chart's width: the largest value of the chart fills it."""


def bars(values: list[tuple[str, int, str]]) -> list[Bar]:
    largest = max((v for _, v, _ in values), default=0)
    return [
        Bar(label, value, shown, 0.0 if largest <= 0 else CHART_WIDTH * max(value, 0) / largest)
        for label, value, shown in values
    ]
