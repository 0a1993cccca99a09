"""Synthetic registry data: realistic enterprises and productions as JSON Lines rows.

Distributions follow the industry figures of ``catalog/SOURCES.md``: most companies in Zhengzhou, Xi'an
and Chongqing, then Shanghai's districts (Yangpu, Songjiang, Minhang first), Hangzhou,
Shenzhen, Fujian, Changzhou and a long tail; budgets 300k–1.5M yuan; short-video
platforms dominate; awards are rare, some productions already received grants; and
a realistic share of fields is unknown (absent).
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

from stdnum.cn import uscc

from reelpolicy_registry.domain.regions import counties_under

REGION_WEIGHTS: list[tuple[str, float]] = [
    ("4101", 0.22),
    ("6101", 0.18),
    ("50", 0.16),
    ("310110", 0.03),
    ("310117", 0.03),
    ("310112", 0.02),
    ("3101", 0.03),
    ("3301", 0.06),
    ("4403", 0.06),
    ("35", 0.05),
    ("3204", 0.03),
    ("45", 0.03),
    ("1304", 0.02),
    ("4210", 0.02),
    ("330205", 0.01),
    ("11", 0.03),
    ("44", 0.02),
]
PLATFORM_WEIGHTS = {
    "douyin": 0.5,
    "kuaishou": 0.35,
    "hongguo": 0.35,
    "xiaohongshu": 0.1,
    "tencent_video": 0.12,
    "iqiyi": 0.08,
    "youku": 0.08,
    "mango_tv": 0.05,
    "bilibili": 0.06,
}
THEMES = [
    "yellow_river_culture",
    "intangible_heritage",
    "red_culture",
    "cultural_tourism",
    "animation",
    "aigc",
    "law_education",
    "local_ip",
]
AWARDS = ["nrta_outstanding_work", "prestigious_award", "platform_hit", "major_event"]
KINDS = [
    ("production_company", 0.8),
    ("studio_base", 0.05),
    ("individual_team", 0.1),
    ("platform", 0.02),
    ("association", 0.03),
]
TAGS = ["micro_drama", "aigc", "animation", "overseas", "vertical_screen", "mcn"]
_WORDS = ["星", "光", "海", "云", "影", "梦", "华", "锦", "川", "长", "新", "鹏", "悦", "禾"]
_ALPHABET = string.digits + "ABCDEFGHJKLMNPQRTUWXY"


def credit_code(rng: random.Random, region_code: str) -> str:
    """A valid unified social credit code for an enterprise registered in ``region_code``."""
    body = "91" + region_code + "".join(rng.choice(_ALPHABET) for _ in range(9))
    return body + uscc.calc_check_digit(body)


class RegionPicker:
    """Draws an enterprise's region: a prefix by :data:`REGION_WEIGHTS`, then one of its
    districts or counties."""

    def __init__(self) -> None:
        self.prefixes = [p for p, _ in REGION_WEIGHTS]
        self.weights = [w for _, w in REGION_WEIGHTS]
        self.counties = {p: counties_under(p) or [p] for p in self.prefixes}

    def pick(self, rng: random.Random) -> str:
        prefix = rng.choices(self.prefixes, self.weights)[0]
        return rng.choice(self.counties[prefix])


def _maybe(rng: random.Random, share_known: float, value: Any) -> Any:
    return value if rng.random() < share_known else None


def enterprise_row(rng: random.Random, regions: RegionPicker, n: int) -> dict[str, Any]:
    region = regions.pick(rng)
    established = date(2015, 1, 1) + timedelta(days=rng.randrange(0, 3900))
    employees = int(rng.lognormvariate(3.0, 1.0))
    row: dict[str, Any] = {
        "type": "enterprise",
        "name": f"{''.join(rng.choices(_WORDS, k=2))}影视传媒有限公司{n}",
        "credit_code": credit_code(rng, region),
        "region_code": region,
        "kind": rng.choices([k for k, _ in KINDS], [w for _, w in KINDS])[0],
        "tags": rng.sample(TAGS, k=rng.choice([0, 1, 1, 2])),
        "established_on": _maybe(rng, 0.9, established.isoformat()),
        "employees": _maybe(rng, 0.7, employees),
        "registered_capital_cny": _maybe(rng, 0.8, rng.choice([1, 3, 5, 10, 50, 100]) * 100_000),
        "sme": _maybe(rng, 0.6, employees < 300),
    }
    return {k: v for k, v in row.items() if v is not None}


def production_row(
    rng: random.Random, regions: RegionPicker, enterprise: dict[str, Any], n: int
) -> dict[str, Any]:
    region = enterprise["region_code"] if rng.random() < 0.8 else regions.pick(rng)
    platforms = [p for p, w in PLATFORM_WEIGHTS.items() if rng.random() < w] or ["douyin"]
    budget = rng.randint(300, 1500) * 1000
    grants = None
    if rng.random() < 0.05:
        level = rng.choice(["national", "provincial", "municipal", "district"])
        grants = [
            {
                "issuer_level": level,
                "issuer_region_code": region,
                "amount_cny": rng.randint(5, 100) * 10_000,
                "received_on": f"2025-{rng.randint(1, 12):02d}-15",
            }
        ]
    row: dict[str, Any] = {
        "type": "production",
        "enterprise_credit_code": enterprise["credit_code"],
        "external_id": f"P{n:08d}",
        "title": f"{''.join(rng.choices(_WORDS, k=3))}第{n}部",
        "region_code": _maybe(rng, 0.9, region),
        "filming_region_codes": _maybe(rng, 0.6, [region]),
        "episodes": _maybe(rng, 0.9, rng.randint(30, 100)),
        "minutes_per_episode": _maybe(rng, 0.8, round(rng.uniform(1.0, 3.0), 1)),
        "budget_cny": _maybe(rng, 0.75, budget),
        "promotion_budget_cny": _maybe(rng, 0.4, budget * rng.randint(1, 5)),
        "release_date": _maybe(rng, 0.7, f"{rng.randint(2022, 2026)}-{rng.randint(1, 12):02d}-01"),
        "platforms": _maybe(rng, 0.85, platforms),
        "themes": _maybe(rng, 0.7, rng.sample(THEMES, k=rng.choice([0, 1, 1, 2]))),
        "awards": _maybe(rng, 0.5, [rng.choice(AWARDS)] if rng.random() < 0.02 else []),
        "grants": grants,
        "metrics": _maybe(
            rng,
            0.5,
            {"views": int(rng.lognormvariate(13, 2)), "rating": round(rng.uniform(5, 9.5), 1)},
        ),
        "content_status": _maybe(
            rng, 0.8, rng.choices(["filed", "approved", "taken_down"], [0.3, 0.67, 0.03])[0]
        ),
    }
    return {k: v for k, v in row.items() if v is not None}


def generate_rows(*, enterprises: int, productions: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """All enterprises first, then productions spread over them (a few prolific ones)."""
    rng = random.Random(seed)
    regions = RegionPicker()
    made = [enterprise_row(rng, regions, n) for n in range(enterprises)]
    yield from made
    if not made:
        return
    for n in range(productions):
        owner = (
            made[min(int(rng.paretovariate(1.2)) - 1, len(made) - 1)]
            if rng.random() < 0.1
            else rng.choice(made)
        )
        yield production_row(rng, regions, owner, n)
