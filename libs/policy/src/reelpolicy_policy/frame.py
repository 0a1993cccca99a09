"""The columnar layout of subjects for the columnar evaluator (one polars column per field).

Layout (column name = field path, ``None``/null = unknown):

* ``subject_id``: ``String``
* region fields: ``UInt32`` (the six-digit code as an integer, so ``within 31`` is
  ``code // 10_000 == 31``); region lists: ``List(UInt32)``
* enum fields: ``Enum(vocabulary)``; enum sets (platforms, themes, awards, grant issuer
  levels): ``UInt32`` bitmask, bit ``i`` = ``vocabulary[i]``
* int: ``Int64``; float: ``Float64``; bool: ``Boolean``; date: ``Date``
* ``production.grants``: ``List(Struct{issuer_level: Enum, issuer_region_code: UInt32,
  amount_cny: Int64})``

``enterprise.age_days`` is not stored: the columnar evaluator derives it from
``enterprise.established_on`` and ``today``. A production frame also carries its
enterprise's ``enterprise.*`` columns. Build one with :func:`subjects_to_frame`, or
directly (benchmarks) following :func:`frame_schema`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import polars as pl

from reelpolicy_contracts.subjects import IssuerLevel
from reelpolicy_policy.fields import FIELDS, FieldType, Subject, SubjectType, flatten_subject

ISSUER_LEVELS = tuple(m.value for m in IssuerLevel)
GRANT_DTYPE = pl.List(
    pl.Struct(
        {
            "issuer_level": pl.Enum(ISSUER_LEVELS),
            "issuer_region_code": pl.UInt32,
            "amount_cny": pl.Int64,
        }
    )
)
STORED_DERIVED_EXCLUDED = frozenset({"enterprise.age_days"})


def _dtype(path: str) -> Any:
    spec = FIELDS[path]
    t = spec.type
    if t is FieldType.region:
        return pl.UInt32
    if t is FieldType.region_list:
        return pl.List(pl.UInt32)
    if t is FieldType.enum:
        return pl.Enum(spec.vocabulary)
    if t is FieldType.enum_set:
        return pl.UInt32
    if t is FieldType.grants:
        return GRANT_DTYPE
    return {
        FieldType.int: pl.Int64,
        FieldType.float: pl.Float64,
        FieldType.bool: pl.Boolean,
        FieldType.date: pl.Date,
    }[t]


def frame_schema(subject: SubjectType) -> dict[str, Any]:
    """Column name -> polars dtype of a frame of ``subject``s."""
    cols = [
        p
        for p, s in FIELDS.items()
        if p not in STORED_DERIVED_EXCLUDED and (subject == "production" or s.subject == subject)
    ]
    return {"subject_id": pl.String, **{p: _dtype(p) for p in cols}}


def enum_mask(path: str, values: Iterable[str]) -> int:
    """Bitmask of ``values`` in the vocabulary of enum-set field ``path``."""
    vocab = FIELDS[path].vocabulary
    mask = 0
    for v in values:
        mask |= 1 << vocab.index(v)
    return mask


def _column(path: str, values: list[Any]) -> list[Any]:
    t = FIELDS[path].type
    if t is FieldType.region:
        return [None if v is None else int(v) for v in values]
    if t is FieldType.region_list:
        return [None if v is None else [int(c) for c in v] for v in values]
    if t is FieldType.enum_set:
        return [None if v is None else enum_mask(path, v) for v in values]
    if t is FieldType.grants:
        return [
            None
            if v is None
            else [
                {
                    "issuer_level": lvl,
                    "issuer_region_code": None if reg is None else int(reg),
                    "amount_cny": amt,
                }
                for lvl, reg, amt in v
            ]
            for v in values
        ]
    return values


def subjects_to_frame(
    subjects: Sequence[Subject], *, subject: SubjectType | None = None
) -> pl.DataFrame:
    """Columnar frame of subjects (all of one type; give ``subject`` for an empty list)."""
    kind = subject or (subjects[0].type if subjects else "production")
    schema = frame_schema(kind)
    flat = [flatten_subject(s) for s in subjects]
    if any(s.type != kind for s in subjects):
        raise ValueError(f"all subjects must be {kind}s")
    data: dict[str, list[Any]] = {"subject_id": [s.subject_id for s in subjects]}
    for path in schema:
        if path != "subject_id":
            data[path] = _column(path, [f.get(path) for f in flat])
    return pl.DataFrame(data, schema=schema)


def frame_subject_type(frame: pl.DataFrame) -> SubjectType:
    return "production" if "production.region_code" in frame.columns else "enterprise"


def _decode(path: str, v: Any) -> Any:
    if v is None:
        return None
    t = FIELDS[path].type
    if t is FieldType.region:
        return str(v)
    if t is FieldType.region_list:
        return tuple(str(c) for c in v)
    if t is FieldType.enum_set:
        vocab = FIELDS[path].vocabulary
        return frozenset(x for i, x in enumerate(vocab) if v >> i & 1)
    if t is FieldType.grants:
        return tuple(
            (
                g["issuer_level"],
                None if g["issuer_region_code"] is None else str(g["issuer_region_code"]),
                g["amount_cny"],
            )
            for g in v
        )
    return v


def frame_to_values(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Inverse of the layout: per row, ``{field path: value}`` as ``flatten_subject`` gives."""
    cols = [c for c in frame.columns if c in FIELDS]
    return [
        {c: _decode(c, row[c]) for c in cols} for row in frame.select(cols).iter_rows(named=True)
    ]
