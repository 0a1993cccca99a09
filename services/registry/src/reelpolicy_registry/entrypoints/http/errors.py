"""The registry's use-case errors as HTTP problems."""

from __future__ import annotations

from typing import Any

from reelpolicy_common.http import ApiError
from reelpolicy_registry.domain.errors import (
    DuplicateError,
    InvalidRecordError,
    NotFoundError,
    QuotaExceededError,
    StaleVersionError,
)


async def call(operation: Any) -> Any:
    """Await a use case, turning its domain errors into HTTP errors.

    A request reaches a use case only once it matches its schema, so a record the
    registry refuses breaks a rule the schema cannot state: 400 (a check digit, a region
    code absent from GB/T 2260, a region history over its bound).
    """
    try:
        return await operation
    except InvalidRecordError as exc:
        raise ApiError(400, str(exc), details=exc.errors) from None
    except NotFoundError as exc:
        raise ApiError(404, str(exc), field=exc.field) from None
    except StaleVersionError as exc:
        raise ApiError(412, str(exc), field="If-Match", extra={"version": exc.current}) from None
    except DuplicateError as exc:
        raise ApiError(409, exc.message, field=exc.field) from None
    except QuotaExceededError as exc:
        raise ApiError(409, str(exc), field=exc.field) from None
