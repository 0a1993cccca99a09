"""The eligibility rows of an enterprise, and filling a missing field through the registry."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from reelpolicy_portal.domain.errors import NotFoundError
from reelpolicy_portal.domain.fields import FillableField
from reelpolicy_portal.ports import Services


@dataclass(frozen=True)
class FieldForm:
    """What the form to fill one field shows: the record, its current value, its ETag."""

    field: FillableField
    subject_id: str
    subject_name: str
    current: Any
    etag: str


async def field_form(
    services: Services, api_key: str, field: FillableField, subject_id: str
) -> FieldForm:
    """The record the field belongs to (a record not the company's answers 404)."""
    record, etag = await services.record(api_key, field.subject_type, subject_id)
    name = str(record.get("name") or record.get("title") or subject_id)
    return FieldForm(field, subject_id, name, field.current(record), etag)


async def save_field(
    services: Services,
    api_key: str,
    *,
    enterprise_id: str,
    field: FillableField,
    subject_id: str,
    value: Any,
    etag: str,
) -> dict[str, Any]:
    """Merge-patch the one attribute with ``If-Match: etag``. Raises VersionConflictError
    (with the current record) when it changed since the form was shown."""
    if field.subject_type == "enterprise" and subject_id != enterprise_id:
        raise NotFoundError()
    return await services.patch_record(
        api_key, field.subject_type, subject_id, field.patch(value), etag=etag
    )
