"""Projection rows (attributes as JSON text) -> the engine's columnar frame (pure polars).

The same layout ``reelpolicy_policy.frame.subjects_to_frame`` builds from models, but
vectorised over JSON so a million productions load in seconds: ``enterprise_rows`` and
``production_rows`` decode the stored attributes once; :func:`production_frame` joins a
production with its enterprise's columns (a production of a deleted enterprise is gone;
one whose enterprise is not known yet has unknown enterprise fields).
"""

from __future__ import annotations

from functools import reduce

import polars as pl

from reelpolicy_policy.fields import FIELDS
from reelpolicy_policy.frame import GRANT_DTYPE, ISSUER_LEVELS, frame_schema

_LS = pl.List(pl.String)
ENTERPRISE_JSON = pl.Struct(
    {
        "region_code": pl.String,
        "kind": pl.String,
        "established_on": pl.String,
        "employees": pl.Int64,
        "registered_capital_cny": pl.Int64,
        "sme": pl.Boolean,
    }
)
PRODUCTION_JSON = pl.Struct(
    {
        "region_code": pl.String,
        "filming_region_codes": _LS,
        "episodes": pl.Int64,
        "minutes_per_episode": pl.Float64,
        "budget_cny": pl.Int64,
        "promotion_budget_cny": pl.Int64,
        "release_date": pl.String,
        "platforms": _LS,
        "themes": _LS,
        "awards": _LS,
        "grants": pl.List(
            pl.Struct(
                {"issuer_level": pl.String, "issuer_region_code": pl.String, "amount_cny": pl.Int64}
            )
        ),
        "metrics": pl.Struct({"views": pl.Int64, "rating": pl.Float64}),
        "content_status": pl.String,
        "overseas": pl.Struct({"markets": _LS, "languages": _LS}),
    }
)
ENTERPRISE_COLUMNS = [c for c in frame_schema("enterprise") if c != "subject_id"]


def _mask(col: pl.Expr, path: str) -> pl.Expr:
    bits = [
        col.list.contains(pl.lit(v)).cast(pl.UInt32) * (1 << i)
        for i, v in enumerate(FIELDS[path].vocabulary)
    ]
    total = reduce(lambda a, b: a + b, bits)
    return pl.when(col.is_null()).then(None).otherwise(total).cast(pl.UInt32).alias(path)


def enterprise_rows(raw: pl.DataFrame) -> pl.DataFrame:
    """``enterprise_id, attributes`` (JSON text) -> ``enterprise_id`` + enterprise columns."""
    a = pl.col("a")
    df = raw.select(
        pl.col("enterprise_id"), pl.col("attributes").str.json_decode(ENTERPRISE_JSON).alias("a")
    )
    schema = frame_schema("enterprise")
    return df.select(
        pl.col("enterprise_id"),
        a.struct.field("region_code").cast(pl.UInt32).alias("enterprise.region_code"),
        a.struct.field("kind").cast(schema["enterprise.kind"]).alias("enterprise.kind"),
        a.struct.field("established_on").str.to_date().alias("enterprise.established_on"),
        a.struct.field("employees").alias("enterprise.employees"),
        a.struct.field("registered_capital_cny").alias("enterprise.registered_capital_cny"),
        a.struct.field("sme").alias("enterprise.sme"),
    )


def production_rows(raw: pl.DataFrame) -> pl.DataFrame:
    """``production_id, enterprise_id, attributes`` -> ids + production columns."""
    schema = frame_schema("production")
    a = pl.col("a")
    f = a.struct.field
    grants = f("grants")
    g = pl.element()
    typed_grants = grants.list.eval(
        pl.struct(
            g.struct.field("issuer_level").cast(pl.Enum(ISSUER_LEVELS)).alias("issuer_level"),
            g.struct.field("issuer_region_code").cast(pl.UInt32).alias("issuer_region_code"),
            g.struct.field("amount_cny").alias("amount_cny"),
        )
    ).cast(GRANT_DTYPE)
    levels = grants.list.eval(g.struct.field("issuer_level"))
    markets, languages = (
        f("overseas").struct.field("markets"),
        f("overseas").struct.field("languages"),
    )
    df = raw.select(
        pl.col("production_id").alias("subject_id"),
        pl.col("enterprise_id"),
        pl.col("attributes").str.json_decode(PRODUCTION_JSON).alias("a"),
    )
    return df.select(
        "subject_id",
        "enterprise_id",
        f("region_code").cast(pl.UInt32).alias("production.region_code"),
        f("filming_region_codes").cast(pl.List(pl.UInt32)).alias("production.filming_region_codes"),
        f("episodes").alias("production.episodes"),
        f("minutes_per_episode").alias("production.minutes_per_episode"),
        f("budget_cny").alias("production.budget_cny"),
        f("promotion_budget_cny").alias("production.promotion_budget_cny"),
        f("release_date").str.to_date().alias("production.release_date"),
        _mask(f("platforms"), "production.platforms"),
        _mask(f("themes"), "production.themes"),
        _mask(f("awards"), "production.awards"),
        typed_grants.alias("production.grants"),
        _mask(levels, "production.grants.issuer_levels"),
        grants.list.len().cast(pl.Int64).alias("production.grants.count"),
        pl.when(grants.is_null())
        .then(None)
        .otherwise(grants.list.eval(g.struct.field("amount_cny")).list.sum())
        .cast(pl.Int64)
        .alias("production.grants.total_amount_cny"),
        f("metrics").struct.field("views").alias("production.metrics.views"),
        f("metrics").struct.field("rating").alias("production.metrics.rating"),
        f("content_status")
        .cast(schema["production.content_status"])
        .alias("production.content_status"),
        pl.when(f("overseas").is_null())
        .then(None)
        .otherwise(markets.list.len().fill_null(0))
        .cast(pl.Int64)
        .alias("production.overseas.market_count"),
        pl.when(f("overseas").is_null())
        .then(None)
        .otherwise(languages.list.len().fill_null(0))
        .cast(pl.Int64)
        .alias("production.overseas.language_count"),
    )


def enterprise_frame(enterprises: pl.DataFrame) -> pl.DataFrame:
    """Enterprise subjects in the engine layout, plus their ``enterprise_id``."""
    return enterprises.select(
        pl.col("enterprise_id").alias("subject_id"), *ENTERPRISE_COLUMNS, pl.col("enterprise_id")
    )


def production_frame(productions: pl.DataFrame, enterprises: pl.DataFrame) -> pl.DataFrame:
    """Production subjects with their enterprise's columns, plus ``enterprise_id``.

    ``enterprises`` holds live enterprises; ``deleted_enterprises`` productions are
    dropped by the caller (see :class:`SubjectCache`).
    """
    joined = productions.join(enterprises, on="enterprise_id", how="left")
    return joined.select(
        [pl.col(c).cast(t) for c, t in frame_schema("production").items()]
        + [pl.col("enterprise_id")]
    )
