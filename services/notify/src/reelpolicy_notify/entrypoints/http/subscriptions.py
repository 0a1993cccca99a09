"""``/v1/subscriptions``: create, list, read, change, delete, rotate the secret, test."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Response

from reelpolicy_common.http import (
    ApiError,
    Page,
    problem_example,
    problem_responses,
)
from reelpolicy_common.http.authenticate import CurrentPrincipal, not_found
from reelpolicy_contracts.storable import StoredText
from reelpolicy_notify.domain.filters import Filters
from reelpolicy_notify.domain.rendering import DEFAULT_LOCALE
from reelpolicy_notify.domain.targets import UnsafeTargetError
from reelpolicy_notify.entrypoints.http.deps import NotifyDep
from reelpolicy_notify.entrypoints.http.schemas import (
    SecretRotated,
    SubscriptionCreate,
    SubscriptionCreated,
    SubscriptionOut,
    SubscriptionPatch,
    TestQueued,
    decode_cursor,
    encode_cursor,
)
from reelpolicy_notify.handlers import subscriptions as use_cases
from reelpolicy_notify.handlers.subscriptions import (
    SecretNotOursError,
    SubscriptionNotFoundError,
    SubscriptionQuotaError,
)

router = APIRouter(prefix="/v1/subscriptions", tags=["subscriptions"])


URL_REFUSED = (
    "A webhook or robot `url` refused: not http(s)://host/..., with credentials, a port"
    " outside the allow-list, or a host that does not resolve or resolves to a non-public"
    " address"
)


def _unsafe(exc: UnsafeTargetError) -> ApiError:
    # 400: the request matches its schema; the rule depends on DNS the schema cannot state
    return ApiError(400, f"url refused: {exc}", field="url")


def _create_example(summary: str, **body: object) -> dict[str, object]:
    return {"summary": summary, "value": {**body, "events": ["eligibility.changed"]}}


CREATE_EXAMPLES = {
    "webhook": _create_example(
        "A signed webhook (Standard Webhooks)",
        enterprise_id="0195f3c2-7d7e-7c4b-9a51-3e1f2b6c8d90",
        channel="webhook",
        url="https://hooks.example.com/reelpolicy",
        deadline_days=30,
    ),
    "wecom": _create_example(
        "A WeCom (企业微信) group robot",
        channel="wecom",
        url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx-4bc4-97a0-0ec2sifa5aaa",
    ),
    "dingtalk": _create_example(
        "A DingTalk (钉钉) group robot with signing (加签) on",
        channel="dingtalk",
        url="https://oapi.dingtalk.com/robot/send?access_token=XXXXXX",
        secret="SEC0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd",
    ),
    "feishu": _create_example(
        "A Feishu (飞书) group robot with signature verification on",
        channel="feishu",
        url="https://open.feishu.cn/open-apis/bot/v2/hook/0e2c5a8b-xxxx-xxxx-xxxx-xxxxxxxxxxxx",
        secret="qRsTuVwXyZ0123456789ab",
    ),
}


@router.post(
    "",
    status_code=201,
    response_model=SubscriptionCreated,
    summary="Subscribe",
    responses=problem_responses(
        400,
        descriptions={
            400: URL_REFUSED,
            404: "(company key) `enterprise_id` is not the caller's enterprise",
            422: "Invalid fields, or a channel without its target (or a robot's secret)",
        },
        examples={
            422: problem_example(
                422,
                "secret: a dingtalk subscription needs secret: the robot's signing secret"
                " (enable signing on the robot and copy its secret)",
                (
                    "secret",
                    "a dingtalk subscription needs secret: the robot's signing secret"
                    " (enable signing on the robot and copy its secret)",
                ),
            )
        },
    ),
    openapi_extra={"requestBody": {"content": {"application/json": {"examples": CREATE_EXAMPLES}}}},
)
async def create(
    body: SubscriptionCreate, notify: NotifyDep, principal: CurrentPrincipal
) -> SubscriptionCreated:
    """A ``webhook`` subscription needs ``url`` and no ``email``; an ``email`` one needs
    ``email`` and no ``url``. A group robot (``wecom``, ``dingtalk``, ``feishu``) needs
    its webhook ``url``; ``dingtalk`` and ``feishu`` also need the robot's signing
    ``secret`` (its platform's "加签" setting), which is stored encrypted and never
    returned. Every url must be https (or http) on a public address (400 naming ``url``
    otherwise). ``enterprise_id`` null is platform-wide for an operator; a company key
    subscribes to its own enterprise only (another: 404).
    """
    try:
        subscription, secret = await use_cases.create_subscription(
            uow=notify.uow,
            principal=principal,
            enterprise_id=body.enterprise_id,
            channel=body.channel,
            url=body.url,
            email=body.email,
            events=list(body.events),
            filters=body.filters or Filters(),
            digest_window_seconds=body.digest.window_seconds if body.digest else None,
            deadline_days=body.deadline_days or 30,
            backfill=body.backfill,
            check_target=notify.check_target,
            quota=notify.settings.max_subscriptions_per_company,
            locale=body.locale or DEFAULT_LOCALE,
            robot_secret=body.secret,
        )
    except SubscriptionQuotaError as exc:
        raise ApiError(409, str(exc), field="enterprise_id") from None
    except SubscriptionNotFoundError:
        raise not_found("enterprise", body.enterprise_id or "") from None
    except UnsafeTargetError as exc:
        raise _unsafe(exc) from None
    return SubscriptionCreated(**SubscriptionOut.of(subscription).model_dump(), secret=secret)


@router.get(
    "",
    response_model=Page[SubscriptionOut],
    summary="List subscriptions",
    responses=problem_responses(
        400, descriptions={400: "`cursor` was not given by an earlier page"}
    ),
)
async def list_(
    notify: NotifyDep,
    principal: CurrentPrincipal,
    enterprise_id: StoredText | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: StoredText | None = None,
) -> Page[SubscriptionOut]:
    items = await use_cases.list_subscriptions(
        uow=notify.uow,
        principal=principal,
        enterprise_id=enterprise_id,
        after=decode_cursor(cursor),
        limit=limit + 1,
    )
    more = len(items) > limit
    items = items[:limit]
    next_cursor = encode_cursor(items[-1].created_at, items[-1].id) if more else None
    return Page[SubscriptionOut](
        items=[SubscriptionOut.of(s) for s in items], next_cursor=next_cursor
    )


@router.get(
    "/{subscription_id}",
    response_model=SubscriptionOut,
    summary="One subscription",
    responses=problem_responses(404),
)
async def get(
    subscription_id: uuid.UUID, notify: NotifyDep, principal: CurrentPrincipal
) -> SubscriptionOut:
    try:
        found = await use_cases.get_subscription(
            uow=notify.uow, principal=principal, subscription_id=subscription_id
        )
    except SubscriptionNotFoundError:
        raise not_found("subscription", str(subscription_id)) from None
    return SubscriptionOut.of(found)


@router.patch(
    "/{subscription_id}",
    response_model=SubscriptionOut,
    summary="Change",
    responses=problem_responses(
        400,
        404,
        descriptions={
            400: f"{URL_REFUSED}; or `url` on an email subscription, `email` on another,"
            " `secret` on one that is not dingtalk or feishu",
        },
    ),
)
async def patch(
    subscription_id: uuid.UUID,
    body: SubscriptionPatch,
    notify: NotifyDep,
    principal: CurrentPrincipal,
) -> SubscriptionOut:
    try:
        current = await use_cases.get_subscription(
            uow=notify.uow, principal=principal, subscription_id=subscription_id
        )
        updated = await use_cases.update_subscription(
            uow=notify.uow,
            principal=principal,
            subscription_id=subscription_id,
            changes=body.changes(current),
            check_target=notify.check_target,
        )
    except SubscriptionNotFoundError:
        raise not_found("subscription", str(subscription_id)) from None
    except UnsafeTargetError as exc:
        raise _unsafe(exc) from None
    return SubscriptionOut.of(updated)


@router.delete(
    "/{subscription_id}",
    status_code=204,
    summary="Delete (and its deliveries)",
    responses=problem_responses(404),
)
async def delete(
    subscription_id: uuid.UUID, notify: NotifyDep, principal: CurrentPrincipal
) -> Response:
    try:
        await use_cases.delete_subscription(
            uow=notify.uow, principal=principal, subscription_id=subscription_id
        )
    except SubscriptionNotFoundError:
        raise not_found("subscription", str(subscription_id)) from None
    return Response(status_code=204)


@router.post(
    "/{subscription_id}/rotate-secret",
    response_model=SecretRotated,
    summary="New signing secret; the old one also signs until previous_secret_expires_at",
    responses=problem_responses(
        404,
        409,
        descriptions={
            409: "A group robot: its secret is its platform's; PATCH `secret` to replace it"
        },
    ),
)
async def rotate(
    subscription_id: uuid.UUID, notify: NotifyDep, principal: CurrentPrincipal
) -> SecretRotated:
    try:
        secret, until = await use_cases.rotate_secret(
            uow=notify.uow,
            principal=principal,
            subscription_id=subscription_id,
            overlap_seconds=notify.settings.notify_secret_overlap_seconds,
        )
    except SubscriptionNotFoundError:
        raise not_found("subscription", str(subscription_id)) from None
    except SecretNotOursError as exc:
        raise ApiError(409, str(exc), field="secret") from None
    return SecretRotated(id=subscription_id, secret=secret, previous_secret_expires_at=until)


@router.post(
    "/{subscription_id}/test",
    status_code=202,
    response_model=TestQueued,
    summary="Queue a signed test message",
    responses=problem_responses(404),
)
async def test_message(
    subscription_id: uuid.UUID, notify: NotifyDep, principal: CurrentPrincipal
) -> TestQueued:
    try:
        delivery_id = await use_cases.send_test_message(
            uow=notify.uow, principal=principal, subscription_id=subscription_id
        )
    except SubscriptionNotFoundError:
        raise not_found("subscription", str(subscription_id)) from None
    return TestQueued(delivery_id=delivery_id)
