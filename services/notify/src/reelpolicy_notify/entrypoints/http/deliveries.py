"""``/v1/deliveries``: list with attempts, read one, replay one or all failed since T."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query

from reelpolicy_common.http import ApiError, Page, problem_responses
from reelpolicy_common.http.authenticate import CurrentPrincipal, not_found
from reelpolicy_contracts.storable import PgTimestamp, StoredText
from reelpolicy_notify.entrypoints.http.deps import NotifyDep
from reelpolicy_notify.entrypoints.http.schemas import (
    DeliveryOut,
    Replayed,
    decode_cursor,
    encode_cursor,
)
from reelpolicy_notify.handlers import deliveries as use_cases
from reelpolicy_notify.handlers.deliveries import DeliveryNotFoundError, NotReplayableError

router = APIRouter(prefix="/v1/deliveries", tags=["deliveries"])
Status = Literal["pending", "delivering", "succeeded", "failed"]


def _aware(when: datetime, field: str) -> datetime:
    if when.tzinfo is None:
        raise ApiError(422, "give a timezone (e.g. 2026-01-01T00:00:00Z)", field=field)
    return when


@router.get(
    "",
    response_model=Page[DeliveryOut],
    summary="Deliveries with their attempts",
    responses=problem_responses(
        400,
        descriptions={
            400: "`cursor` was not given by an earlier page",
            422: "Invalid parameters, or `since` without a timezone",
        },
    ),
)
async def list_(
    notify: NotifyDep,
    principal: CurrentPrincipal,
    subscription_id: uuid.UUID | None = None,
    status: Status | None = None,
    since: Annotated[PgTimestamp | None, Query(description="created at or after")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: StoredText | None = None,
) -> Page[DeliveryOut]:
    items = await use_cases.list_deliveries(
        uow=notify.uow,
        principal=principal,
        subscription_id=subscription_id,
        status=status,
        since=_aware(since, "since") if since else None,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if more else None
    return Page[DeliveryOut](items=[DeliveryOut.of(d) for d in items], next_cursor=next_cursor)


@router.post(
    "/replay",
    response_model=Replayed,
    summary="Replay every failed delivery since T",
    description="`since` must carry a timezone (e.g. `2026-01-01T00:00:00Z`; 422 otherwise).",
    responses=problem_responses(
        descriptions={422: "`since` missing, malformed or without a timezone"}
    ),
)
async def replay_since(
    notify: NotifyDep,
    principal: CurrentPrincipal,
    since: Annotated[PgTimestamp, Query(description="failed at or after this time")],
) -> Replayed:
    count = await use_cases.replay_failed_since(
        uow=notify.uow, principal=principal, since=_aware(since, "since")
    )
    return Replayed(replayed=count)


@router.get(
    "/{delivery_id}",
    response_model=DeliveryOut,
    summary="One delivery",
    responses=problem_responses(404),
)
async def get(
    delivery_id: uuid.UUID, notify: NotifyDep, principal: CurrentPrincipal
) -> DeliveryOut:
    try:
        found = await use_cases.get_delivery(
            uow=notify.uow, principal=principal, delivery_id=delivery_id
        )
    except DeliveryNotFoundError:
        raise not_found("delivery", str(delivery_id)) from None
    return DeliveryOut.of(found)


@router.post(
    "/{delivery_id}/replay",
    response_model=DeliveryOut,
    summary="Replay one failed delivery",
    responses=problem_responses(
        404, descriptions={409: "The delivery is not failed (only failed ones replay)"}
    ),
)
async def replay(
    delivery_id: uuid.UUID, notify: NotifyDep, principal: CurrentPrincipal
) -> DeliveryOut:
    try:
        found = await use_cases.replay_delivery(
            uow=notify.uow, principal=principal, delivery_id=delivery_id
        )
    except DeliveryNotFoundError:
        raise not_found("delivery", str(delivery_id)) from None
    except NotReplayableError as exc:
        raise ApiError(409, str(exc), field="delivery_id") from None
    return DeliveryOut.of(found)
