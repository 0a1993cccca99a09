"""Benchmark: columnar evaluation of the whole catalog over synthetic productions, vs CEL.

    .venv/bin/python bench/engine.py [--productions 1000000] [--cel-sample 20000] [--runs 3]

Builds the columnar frame directly (numpy -> polars, layout of
``reelpolicy_policy.frame``) with distributions loosely following the industry figures
of catalog/SOURCES.md, evaluates every production policy of ``catalog/`` with the columnar evaluator,
then runs the same policies translated to CEL (``common-expression-language``) on a
sample, asserts identical verdicts (status and amount) and compares rates.
Peak memory is ``ru_maxrss`` (tracemalloc does not see polars' allocations).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import cel
import numpy as np
import polars as pl

from reelpolicy_policy import STATUS_NAMES, cel_context, evaluate_columnar, load_catalog, to_cel
from reelpolicy_policy.frame import GRANT_DTYPE, enum_mask, frame_schema, frame_to_values

ROOT = Path(__file__).resolve().parent.parent
TODAY = date(2026, 3, 1)
# (city prefix, weight, district suffixes): Xi'an ~60% of output, Zhengzhou 800+ firms...
REGIONS: list[tuple[int, float, list[int]]] = [
    (6101, 0.34, [2, 3, 4, 11, 12, 13, 14, 16, 18]),  # Xi'an
    (4101, 0.20, [2, 3, 4, 5, 22, 81]),  # Zhengzhou
    (5001, 0.12, [1, 3, 5, 6, 7, 8, 12]),  # Chongqing (500101...)
    (3101, 0.08, [1, 4, 5, 6, 7, 9, 10, 12, 13, 14, 15, 16, 17]),  # Shanghai districts
    (3301, 0.07, [2, 5, 6, 8, 9, 10]),  # Hangzhou
    (4403, 0.06, [3, 4, 5, 6, 7]),  # Shenzhen
    (1101, 0.04, [1, 2, 5, 8]),  # Beijing
    (3501, 0.02, [2, 3, 4]),  # Fuzhou (Fujian)
    (4501, 0.02, [2, 3, 7]),  # Nanning (Guangxi)
    (3204, 0.02, [2, 4, 11]),  # Changzhou
    (1304, 0.015, [2, 3, 4]),  # Handan
    (4210, 0.01, [2, 3]),  # Jingzhou
    (3302, 0.015, [3, 5]),  # Ningbo (330205 Jiangbei)
]
PLATFORM_P = {
    "douyin": 0.5,
    "hongguo": 0.35,
    "kuaishou": 0.3,
    "tencent_video": 0.08,
    "iqiyi": 0.06,
    "youku": 0.05,
    "mango_tv": 0.04,
    "bilibili": 0.05,
    "xiaohongshu": 0.05,
}
THEME_P = {
    "cultural_tourism": 0.06,
    "yellow_river_culture": 0.02,
    "local_ip": 0.04,
    "intangible_heritage": 0.02,
    "animation": 0.02,
    "aigc": 0.05,
    "red_culture": 0.02,
    "law_education": 0.01,
}
AWARD_P = {
    "nrta_outstanding_work": 0.003,
    "prestigious_award": 0.004,
    "platform_hit": 0.01,
    "major_event": 0.005,
}


def _regions(rng: np.random.Generator, n: int) -> np.ndarray:
    w = np.array([r[1] for r in REGIONS])
    city = rng.choice(len(REGIONS), size=n, p=w / w.sum())
    out = np.empty(n, dtype=np.uint32)
    for i, (prefix, _, districts) in enumerate(REGIONS):
        idx = np.nonzero(city == i)[0]
        out[idx] = prefix * 100 + rng.choice(districts, size=idx.size)
    return out


def _mask(rng: np.random.Generator, n: int, path: str, probs: dict[str, float]) -> np.ndarray:
    m = np.zeros(n, dtype=np.uint32)
    for name, p in probs.items():
        m |= (rng.random(n) < p).astype(np.uint32) * np.uint32(enum_mask(path, [name]))
    return m


def _null(rng: np.random.Generator, n: int, p: float) -> np.ndarray:
    return rng.random(n) < p


def build_frame(n: int, seed: int = 7) -> pl.DataFrame:
    """``n`` synthetic productions (with their enterprises) directly as a columnar frame."""
    rng = np.random.default_rng(seed)
    region = _regions(rng, n)
    budget = rng.integers(300_000, 1_500_001, n)
    has_grant = rng.random(n) < 0.02
    levels = ("national", "provincial", "municipal", "district")
    glevel = rng.choice(len(levels), size=n, p=[0.2, 0.2, 0.3, 0.3])
    gamount = rng.integers(50_000, 3_000_000, n)
    schema = frame_schema("production")
    days = (np.datetime64("2026-03-01") - np.datetime64("1970-01-01")).astype(int)
    cols: dict[str, Any] = {
        "subject_id": pl.int_range(0, n, eager=True).cast(pl.String),
        "enterprise.region_code": region,
        "enterprise.kind": rng.choice(
            ["production_company", "platform", "studio_base"], n, p=[0.9, 0.02, 0.08]
        ),
        "enterprise.established_on": (days - rng.integers(30, 3650, n)).astype("datetime64[D]"),
        "enterprise.employees": rng.integers(3, 300, n),
        "enterprise.registered_capital_cny": rng.integers(100_000, 10_000_000, n),
        "enterprise.sme": rng.random(n) < 0.9,
        "production.region_code": region,
        "production.episodes": rng.integers(50, 120, n),
        "production.minutes_per_episode": rng.choice([1.0, 1.5, 2.0, 3.0], n),
        "production.budget_cny": budget,
        "production.promotion_budget_cny": budget * rng.integers(10, 60, n) // 100,
        "production.release_date": (days - rng.integers(-90, 1100, n)).astype("datetime64[D]"),
        "production.platforms": _mask(rng, n, "production.platforms", PLATFORM_P),
        "production.themes": _mask(rng, n, "production.themes", THEME_P),
        "production.awards": _mask(rng, n, "production.awards", AWARD_P),
        "production.grants.issuer_levels": np.where(has_grant, 1 << glevel, 0).astype(np.uint32),
        "production.grants.count": has_grant.astype(np.int64),
        "production.grants.total_amount_cny": np.where(has_grant, gamount, 0),
        "production.metrics.views": rng.lognormal(14, 2, n).astype(np.int64),
        "production.metrics.rating": np.round(rng.uniform(4, 9.8, n), 1),
        "production.content_status": rng.choice(
            ["filed", "approved", "taken_down"], n, p=[0.12, 0.86, 0.02]
        ),
        "production.overseas.market_count": (
            (rng.random(n) < 0.05).astype(np.int64) * rng.integers(1, 6, n)
        ),
        "production.overseas.language_count": (rng.random(n) < 0.05).astype(np.int64),
    }
    df = pl.DataFrame(cols)
    nulls = {
        c: _null(rng, n, p)
        for c, p in [
            ("production.region_code", 0.02),
            ("enterprise.established_on", 0.05),
            ("production.promotion_budget_cny", 0.10),
            ("production.metrics.views", 0.10),
            ("production.metrics.rating", 0.10),
            ("production.content_status", 0.01),
            ("production.themes", 0.05),
            ("production.platforms", 0.03),
        ]
    }
    grant_struct = pl.struct(
        pl.lit(pl.Series(np.array(levels)[glevel])).alias("issuer_level"),
        pl.lit(pl.Series(region)).alias("issuer_region_code"),
        pl.lit(pl.Series(gamount)).alias("amount_cny"),
    )
    df = df.with_columns(
        *[
            pl.when(pl.lit(pl.Series(m))).then(None).otherwise(pl.col(c)).alias(c)
            for c, m in nulls.items()
        ],
        pl.when(pl.lit(pl.Series(nulls["production.region_code"])))
        .then(None)
        .otherwise(pl.concat_list(pl.col("production.region_code")))
        .alias("production.filming_region_codes"),
    )
    df = df.with_columns(
        pl.when(pl.lit(pl.Series(has_grant)))
        .then(pl.concat_list(grant_struct))
        .otherwise(pl.lit(pl.Series([[]], dtype=GRANT_DTYPE)))
        .alias("production.grants")
    )
    return df.select([pl.col(c).cast(t) for c, t in schema.items()])


def _time(fn: Any, runs: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--productions", type=int, default=1_000_000)
    ap.add_argument("--cel-sample", type=int, default=20_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--catalog", type=Path, default=ROOT / "catalog")
    a = ap.parse_args(argv)
    policies = [p for p in load_catalog(a.catalog) if p.subject == "production"]
    t0 = time.perf_counter()
    frame = build_frame(a.productions)
    print(
        f"built {frame.height:,} productions x {len(frame.columns)} columns "
        f"in {time.perf_counter() - t0:.2f}s; {len(policies)} production policies"
    )
    secs, bulk = _time(lambda: evaluate_columnar(policies, frame, today=TODAY), a.runs)
    evals = frame.height * len(policies)
    rate = evals / secs
    print(f"bulk: {evals:,} evaluations in {secs:.3f}s (median of {a.runs}) = {rate:,.0f}/s")

    sample = frame.head(min(a.cel_sample, frame.height))
    contexts = [cel_context(v, TODAY) for v in frame_to_values(sample)]
    programs = [(p.id, cel.compile(to_cel(p))) for p in policies]
    funcs = {"sum_ints": lambda xs: sum(xs)}
    ctxs = [cel.Context(variables=c, functions=funcs) for c in contexts]

    def run_cel() -> dict[str, list[Any]]:
        return {pid: [prog.execute(c) for c in ctxs] for pid, prog in programs}

    cel_runs = max(1, min(a.runs, 3))
    cel_secs, cel_out = _time(run_cel, cel_runs)
    cel_rate = sample.height * len(policies) / cel_secs
    print(
        f"cel:  {sample.height * len(policies):,} evaluations in {cel_secs:.3f}s "
        f"(median of {cel_runs}) = {cel_rate:,.0f}/s"
    )
    head = bulk.frame.head(sample.height)
    mismatches = 0
    for pid, outs in cel_out.items():
        statuses = head[f"{pid}:status"].to_list()
        amounts = head[f"{pid}:amount"].to_list()
        for i, (st, amt) in enumerate(outs):
            if (STATUS_NAMES[st], amt) != (STATUS_NAMES[statuses[i]], amounts[i]):
                mismatches += 1
    counts = {
        name: sum(int((bulk.frame[f"{p.id}:status"] == code).sum()) for p in policies)
        for code, name in enumerate(STATUS_NAMES)
    }
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    ratio = rate / cel_rate
    print(f"verdicts: {counts}")
    print(f"ratio bulk/CEL per evaluation: {ratio:,.1f}x")
    print(f"peak memory (ru_maxrss): {peak_mb:,.0f} MB")
    print(f"CEL agreement on {sample.height:,} productions: {mismatches} mismatches")
    print(f"targets: rate>=5M/s {rate >= 5e6}, >=50x CEL {ratio >= 50}, peak<2GB {peak_mb < 2048}")
    assert mismatches == 0, "bulk and CEL verdicts differ"
    return 0


if __name__ == "__main__":
    sys.exit(main())
