"""``/v1/import``: bulk JSON Lines or CSV (operator only), with a per-row report."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel

from reelpolicy_common.http import ApiError, problem_responses
from reelpolicy_common.http.authenticate import OperatorPrincipal
from reelpolicy_common.http.errors import problem_response
from reelpolicy_common.http.problems import problem_body
from reelpolicy_registry.domain.import_files import (
    MalformedFileError,
    csv_lines,
    csv_rows,
    jsonl_lines,
    jsonl_rows,
)
from reelpolicy_registry.entrypoints.http.deps import RegistryDep
from reelpolicy_registry.handlers.imports import ImportReport, import_rows

router = APIRouter(prefix="/v1/import", tags=["import"])

JSONL_TYPES = {"application/x-ndjson", "application/jsonl", "application/json-lines"}
CSV_TYPES = {"text/csv"}


class RowErrorModel(BaseModel):
    row: int
    field: str
    message: str


class ImportReportModel(BaseModel):
    accepted: int
    unchanged: int
    rejected: int
    errors: list[RowErrorModel]


def report_body(report: ImportReport) -> dict[str, Any]:
    return {
        "accepted": report.accepted,
        "unchanged": report.unchanged,
        "rejected": report.rejected,
        "errors": [{"row": e.row, "field": e.field, "message": e.message} for e in report.errors],
    }


@router.post(
    "",
    response_model=ImportReportModel,
    responses=problem_responses(
        403,
        descriptions={
            400: "The file cannot be read: not UTF-8, an empty CSV (no header row), a CSV"
            " header naming unknown columns or no `type` column, or malformed CSV",
            413: "The file is over `MAX_IMPORT_BYTES`",
            415: "Content-Type is neither `application/x-ndjson` nor `text/csv`",
            422: "No row was valid: `errors` names each (`rows[N].field`, with `row`),"
            " and the report's counts are members of the problem",
        },
    ),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "text/csv": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_file(request: Request, registry: RegistryDep, _: OperatorPrincipal) -> Any:
    """Import enterprises and productions (JSON Lines or CSV, see the registry README).

    Valid rows are stored (idempotently: by credit code, and by enterprise and
    ``external_id``), invalid ones reported by row, field and reason. Re-importing
    a file changes nothing and emits nothing. Send ``Content-Type:
    application/x-ndjson`` or ``text/csv``; a CSV file needs a header row with a
    ``type`` column (an empty CSV file is refused with 400). When some rows are valid
    the answer is 200 with the report; when none is, 422.
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type not in JSONL_TYPES | CSV_TYPES:
        raise ApiError(415, "send application/x-ndjson or text/csv", field="Content-Type")
    try:
        text = (await request.body()).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ApiError(400, "the file is not UTF-8", field="body") from None
    try:
        if content_type in JSONL_TYPES:
            rows = jsonl_rows(jsonl_lines(text))
        else:
            rows = csv_rows(csv_lines(text))
        report = await import_rows(
            uow=registry.uow,
            rows=rows,
            chunk_rows=registry.settings.import_chunk_rows,
            writers=registry.settings.import_writers,
            validators=registry.import_validators,
            validate_ahead=max(1, registry.settings.import_processes),
        )
    except MalformedFileError as exc:
        raise ApiError(400, exc.message, field=exc.field) from None
    body = report_body(report)
    if report.rejected and not report.accepted and not report.unchanged:
        errors = [
            {"field": f"rows[{e.row}].{e.field}", "message": e.message, "row": e.row}
            for e in report.errors
        ]
        counts = {k: body[k] for k in ("accepted", "unchanged", "rejected")}
        detail = f"no row was valid ({report.rejected} rejected)"
        return problem_response(problem_body(422, detail, errors=errors, **counts))
    return body
