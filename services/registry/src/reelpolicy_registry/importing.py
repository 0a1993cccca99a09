"""Bulk import: validate every row, upsert the valid ones, report the rest.

Rows are handled in chunks (one transaction each): enterprises of the chunk first,
then its productions, which find their enterprise by credit code (or id) among the
stored ones, so an enterprise must come before (or in the same chunk as) its
productions. Idempotent: enterprises by credit code, productions by
(enterprise, external_id); unchanged rows are neither written nor announced. Each
created or changed row emits exactly one event (outbox, via COPY).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from pydantic import ValidationError

from reelpolicy_common import topics
from reelpolicy_common.events import Envelope
from reelpolicy_registry.domain import EnterpriseInput, InvalidRecordError, ProductionInput
from reelpolicy_registry.events import raw_enterprise_event, raw_production_event
from reelpolicy_registry.ports import UnitOfWork
from reelpolicy_registry.rows import RawRow, RowError

UowFactory = Callable[[], UnitOfWork]


@dataclass
class ImportReport:
    accepted: int = 0
    unchanged: int = 0
    rejected: int = 0
    errors: list[RowError] = field(default_factory=list)

    def reject(self, errors: Iterable[RowError]) -> None:
        before = len(self.errors)
        self.errors.extend(errors)
        self.rejected += len({e.row for e in self.errors[before:]})


@dataclass
class _Seen:
    """What earlier chunks established: keys already imported, enterprises found."""

    credit_codes: dict[str, int] = field(default_factory=dict)
    productions: dict[tuple[str, str], int] = field(default_factory=dict)
    enterprise_by_code: dict[str, str] = field(default_factory=dict)
    live_ids: set[str] = field(default_factory=set)


def _errors(row: int, exc: Exception) -> list[RowError]:
    if isinstance(exc, InvalidRecordError):
        return [RowError(row, str(e["field"]), str(e["message"])) for e in exc.errors]
    return [RowError(row, "row", str(exc))]


def _valid_enterprises(
    rows: list[RawRow], seen: _Seen, report: ImportReport
) -> list[tuple[uuid.UUID, str, str]]:
    staged = []
    for raw in rows:
        try:
            attributes = EnterpriseInput.model_validate(raw.data)
        except ValidationError as exc:
            report.reject(_errors(raw.row, InvalidRecordError.from_validation(exc)))
            continue
        first = seen.credit_codes.setdefault(attributes.credit_code, raw.row)
        if first != raw.row:
            report.reject([RowError(raw.row, "credit_code", f"repeats row {first}")])
            continue
        staged.append((uuid.uuid4(), attributes.credit_code, attributes.model_dump_json()))
    return staged


async def _resolve(work: UnitOfWork, rows: list[RawRow], seen: _Seen) -> None:
    codes = {r.data.get("enterprise_credit_code") for r in rows} - seen.enterprise_by_code.keys()
    ids = {r.data.get("enterprise_id") for r in rows} - seen.live_ids
    codes_list = [c for c in codes if isinstance(c, str)]
    ids_list = [i for i in ids if isinstance(i, str)]
    if codes_list or ids_list:
        by_code, live = await work.bulk.enterprise_ids(credit_codes=codes_list, ids=ids_list)
        seen.enterprise_by_code.update(by_code)
        seen.live_ids.update(live)


def _valid_productions(
    rows: list[RawRow], seen: _Seen, report: ImportReport
) -> list[tuple[uuid.UUID, str, str | None, str]]:
    staged = []
    for raw in rows:
        data = raw.data
        code = data.pop("enterprise_credit_code", None)
        if code is not None:
            enterprise_id = seen.enterprise_by_code.get(code) if isinstance(code, str) else None
            if enterprise_id is None or data.get("enterprise_id", enterprise_id) != enterprise_id:
                report.reject([RowError(raw.row, "enterprise_credit_code", "no such enterprise")])
                continue
            data["enterprise_id"] = enterprise_id
        elif data.get("enterprise_id") not in seen.live_ids:
            report.reject([RowError(raw.row, "enterprise_id", "no such enterprise")])
            continue
        try:
            attributes = ProductionInput.model_validate(data)
        except ValidationError as exc:
            report.reject(_errors(raw.row, InvalidRecordError.from_validation(exc)))
            continue
        if attributes.external_id is not None:
            key = (attributes.enterprise_id, attributes.external_id)
            first = seen.productions.setdefault(key, raw.row)
            if first != raw.row:
                report.reject([RowError(raw.row, "external_id", f"repeats row {first}")])
                continue
        staged.append(
            (
                uuid.uuid4(),
                attributes.enterprise_id,
                attributes.external_id,
                attributes.model_dump_json(),
            )
        )
    return staged


async def _import_chunk(
    work: UnitOfWork, chunk: list[RawRow], seen: _Seen, report: ImportReport
) -> None:
    enterprises = _valid_enterprises([r for r in chunk if r.type == "enterprise"], seen, report)
    events: list[Envelope] = []
    if enterprises:
        json_by_code = {code: text for _, code, text in enterprises}
        changed = await work.bulk.upsert_enterprises(enterprises)
        events += [
            raw_enterprise_event(r["id"], r["version"], json_by_code[r["credit_code"]])
            for r in changed
        ]
        report.accepted += len(changed)
        report.unchanged += len(enterprises) - len(changed)
    production_rows = [r for r in chunk if r.type == "production"]
    if production_rows:
        await _resolve(work, production_rows, seen)
        productions = _valid_productions(production_rows, seen, report)
        json_by_key: dict[Any, str] = {}
        for pid, enterprise_id, external_id, text in productions:
            json_by_key[(enterprise_id, external_id) if external_id else str(pid)] = text
        changed = await work.bulk.upsert_productions(productions) if productions else []
        for r in changed:
            key = (r["enterprise_id"], r["external_id"]) if r["external_id"] else r["id"]
            events.append(
                raw_production_event(r["id"], r["enterprise_id"], r["version"], json_by_key[key])
            )
        report.accepted += len(changed)
        report.unchanged += len(productions) - len(changed)
    await work.publish_many(topics.REGISTRY, events)


async def import_rows(
    *,
    uow: UowFactory,
    rows: Iterable[RawRow | RowError],
    chunk_rows: int = 20_000,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Import ``rows`` (from :mod:`reelpolicy_registry.rows`); returns the per-row report."""
    report = ImportReport()
    seen = _Seen()
    iterator = iter(rows)
    while batch := list(islice(iterator, chunk_rows)):
        chunk = [r for r in batch if isinstance(r, RawRow)]
        report.reject(r for r in batch if isinstance(r, RowError))
        if chunk:
            async with uow() as work:
                await _import_chunk(work, chunk, seen, report)
                await work.commit()
        if progress is not None:
            progress(len(batch))
    report.errors.sort(key=lambda e: e.row)
    return report
