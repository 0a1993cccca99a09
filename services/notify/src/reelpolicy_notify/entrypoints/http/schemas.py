"""Request and response bodies of the notify HTTP API, and keyset cursors."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from annotated_types import Interval
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic.config import JsonDict
from pydantic_core import InitErrorDetails, PydanticCustomError

from reelpolicy_common.http import ApiError
from reelpolicy_contracts.storable import (
    StoredText,
    refuse_non_integer_json,
    refuse_unstorable,
    refuse_unstorable_timestamp,
)
from reelpolicy_notify.domain.alerts import AlertType
from reelpolicy_notify.domain.filters import Filters
from reelpolicy_notify.domain.records import (
    SIGNED_ROBOT_CHANNELS,
    URL_CHANNELS,
    Channel,
    Delivery,
    Subscription,
)
from reelpolicy_notify.domain.rendering import DEFAULT_LOCALE, Locale

Email = str


class Digest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    window_seconds: Annotated[
        int, Interval(ge=1, le=7 * 24 * 3600), BeforeValidator(refuse_non_integer_json)
    ]


EMAIL_PATTERN = r"^[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+$"
"""An address with no control character or space: explicit ASCII classes, as the
published (ECMA) pattern and pydantic's (Rust) read ``\\s`` differently (U+0085)."""

EmailAddress = Annotated[
    str, StringConstraints(pattern=EMAIL_PATTERN, max_length=320), AfterValidator(refuse_unstorable)
]
"""Its own pattern: StoredText's documented one would replace it in the schema."""


RobotSecret = Annotated[StoredText, StringConstraints(min_length=1, max_length=200)]
"""A DingTalk or Feishu robot's signing secret ("加签", ``SEC...`` on DingTalk)."""

SECRET_DESCRIPTION = (
    "dingtalk and feishu only: the robot's signing secret, as its platform shows it"
    " (加签). Stored encrypted; never returned."
)


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: StoredText | None = Field(
        default=None,
        max_length=2000,
        description="webhook: the endpoint; wecom, dingtalk, feishu: the robot's webhook URL.",
    )
    email: EmailAddress | None = None
    secret: RobotSecret | None = Field(default=None, description=SECRET_DESCRIPTION)
    events: list[AlertType] | None = Field(default=None, min_length=1)
    filters: Filters | None = None
    digest: Digest | None = None
    deadline_days: (
        Annotated[int, Interval(ge=1, le=366), BeforeValidator(refuse_non_integer_json)] | None
    ) = None
    locale: Locale | None = Field(
        default=None,
        description=f"The language of its alerts (e-mail, group robots); {DEFAULT_LOCALE}"
        " when not given.",
    )


# channel: (its target, the target it must not have, whether it takes a robot secret)
CHANNEL_TARGETS: dict[str, tuple[str, str, bool]] = {
    "webhook": ("url", "email", False),
    "email": ("email", "url", False),
    "wecom": ("url", "email", False),
    "dingtalk": ("url", "email", True),
    "feishu": ("url", "email", True),
}

CHANNEL_TARGET_SCHEMA: JsonDict = {
    "anyOf": [
        {
            "properties": {
                "channel": {"const": channel},
                target: {"type": "string", "minLength": 1},
                other: {"type": "null"},
                "secret": {"type": "string", "minLength": 1} if signed else {"type": "null"},
            },
            "required": [target, "secret"] if signed else [target],
        }
        for channel, (target, other, signed) in CHANNEL_TARGETS.items()
    ]
}
"""The channel-target rule of :class:`SubscriptionCreate`, published with its schema."""


def _field_error(field: str, message: str, value: object) -> ValidationError:
    """A validation error located at ``field`` (a model rule names the field it is about)."""
    return ValidationError.from_exception_data(
        "SubscriptionCreate",
        [
            InitErrorDetails(
                type=PydanticCustomError("channel_target", message), loc=(field,), input=value
            )
        ],
    )


class SubscriptionCreate(_Fields):
    model_config = ConfigDict(extra="forbid", json_schema_extra=CHANNEL_TARGET_SCHEMA)

    enterprise_id: StoredText | None = Field(
        default=None, description="Null: platform-wide (operator)."
    )
    channel: Channel
    events: list[AlertType] = Field(min_length=1)
    backfill: bool = Field(default=False, description="Send current eligible results now.")

    @model_validator(mode="after")
    def _channel_target(self) -> SubscriptionCreate:
        channel = self.channel
        target, other, signed = CHANNEL_TARGETS[channel]
        if not getattr(self, target):
            raise _field_error(target, f"a {channel} subscription needs {target}", None)
        if getattr(self, other):
            raise _field_error(
                other, f"a {channel} subscription has no {other}", getattr(self, other)
            )
        if signed and not self.secret:
            raise _field_error(
                "secret",
                f"a {channel} subscription needs secret: the robot's signing secret"
                " (enable signing on the robot and copy its secret)",
                None,
            )
        if not signed and self.secret is not None:
            raise _field_error("secret", f"a {channel} subscription takes no secret", "(not shown)")
        return self


class SubscriptionPatch(_Fields):
    enabled: bool | None = None

    def changes(self, current: Subscription) -> dict[str, Any]:
        given = self.model_fields_set
        if "url" in given and current.channel not in URL_CHANNELS:
            raise ApiError(400, "url applies to webhook and group-robot subscriptions", field="url")
        if "email" in given and current.channel != "email":
            raise ApiError(400, "email applies to email subscriptions", field="email")
        if "secret" in given and current.channel not in SIGNED_ROBOT_CHANNELS:
            raise ApiError(
                400, "secret applies to dingtalk and feishu subscriptions", field="secret"
            )
        changes: dict[str, Any] = {}
        for name in (
            "url",
            "email",
            "secret",
            "events",
            "filters",
            "deadline_days",
            "locale",
            "enabled",
        ):
            value = getattr(self, name)
            if name in given and value is not None:
                changes[name] = value
        if "digest" in given:
            changes["digest_window_seconds"] = self.digest.window_seconds if self.digest else None
        return changes


class SubscriptionOut(BaseModel):
    id: uuid.UUID
    enterprise_id: str | None
    channel: Channel
    url: str | None
    email: str | None
    events: list[str]
    filters: dict[str, Any]
    digest: Digest | None
    deadline_days: int
    locale: Locale
    enabled: bool
    disabled_reason: str | None
    disabled_at: datetime | None
    previous_secret_expires_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None

    @classmethod
    def of(cls, s: Subscription) -> SubscriptionOut:
        window = s.digest_window_seconds
        return cls(
            id=s.id,
            enterprise_id=s.enterprise_id,
            channel=s.channel,
            url=s.url,
            email=s.email,
            events=list(s.events),
            filters=s.filters.model_dump(exclude_none=True),
            digest=Digest(window_seconds=window) if window else None,
            deadline_days=s.deadline_days,
            locale=s.locale,
            enabled=s.enabled,
            disabled_reason=s.disabled_reason,
            disabled_at=s.disabled_at,
            previous_secret_expires_at=s.previous_secret_expires_at,
            created_at=s.created_at,
            updated_at=s.updated_at,
        )


class SubscriptionCreated(SubscriptionOut):
    secret: str | None = Field(
        description="webhook and email: whsec_..., shown once; verify signatures with it."
        " Null for group robots (DingTalk and Feishu sign with the robot's own secret)."
    )


class SecretRotated(BaseModel):
    id: uuid.UUID
    secret: str
    previous_secret_expires_at: datetime


class AttemptOut(BaseModel):
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None


class DeliveryOut(BaseModel):
    id: uuid.UUID
    webhook_id: str
    subscription_id: uuid.UUID
    enterprise_id: str | None
    alert_key: str
    event_type: str
    status: Literal["pending", "delivering", "succeeded", "failed"]
    body: dict[str, Any] | None
    attempt_count: int
    next_attempt_at: datetime | None
    occurred_at: datetime
    created_at: datetime
    finished_at: datetime | None
    last_error: str | None
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, d: Delivery) -> DeliveryOut:
        return cls(
            id=d.id,
            webhook_id=str(d.id),
            subscription_id=d.subscription_id,
            enterprise_id=d.enterprise_id,
            alert_key=d.alert_key,
            event_type=d.event_type,
            status=d.status,
            body=d.body,
            attempt_count=d.total_attempts,
            next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
            occurred_at=d.occurred_at,
            created_at=d.created_at,
            finished_at=d.finished_at,
            last_error=d.last_error,
            attempts=[AttemptOut(**a.__dict__) for a in d.attempts],
        )


class TestQueued(BaseModel):
    delivery_id: uuid.UUID


class Replayed(BaseModel):
    replayed: int


def encode_cursor(created_at: datetime | None, ident: uuid.UUID) -> str:
    raw = f"{created_at.isoformat() if created_at else ''}|{ident}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_cursor(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    if not cursor:
        return None
    try:
        when, ident = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return refuse_unstorable_timestamp(datetime.fromisoformat(when)), uuid.UUID(ident)
    except ValueError:
        raise ApiError(400, "malformed cursor", field="cursor") from None
