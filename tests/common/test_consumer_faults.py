"""Which errors a consumer waits out (infrastructure) and which it dead-letters (record)."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka import errors as kafka_errors
from pydantic import BaseModel, ValidationError

from reelpolicy_common.consumer.faults import (
    Fault,
    InfrastructureError,
    PermanentError,
    classify,
    is_infrastructure_error,
)


class _Payload(BaseModel):
    n: int


def _validation_error() -> ValidationError:
    try:
        _Payload.model_validate({"n": "not a number"})
    except ValidationError as exc:
        return exc
    raise AssertionError("validated")


def _raised_from(outer: Exception, inner: BaseException) -> Exception:
    try:
        raise outer from inner
    except Exception as exc:
        return exc


def _raised_while_handling(outer: Exception, inner: BaseException) -> Exception:
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904 -- the implicit context is what is tested
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        OSError(113, "No route to host"),
        TimeoutError(),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.ConnectionFailureError("connection failure"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CrashShutdownError("terminating connection because of crash of another"),
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        kafka_errors.KafkaConnectionError("unable to bootstrap"),
        kafka_errors.KafkaTimeoutError(),
        kafka_errors.NodeNotReadyError(),
        kafka_errors.RequestTimedOutError(),  # any error the broker calls retriable
        kafka_errors.NotLeaderForPartitionError(),
        InfrastructureError("dead-letter publish failed"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_of_the_infrastructure_are_waited_out(error: BaseException) -> None:
    assert classify(error) is Fault.INFRASTRUCTURE
    assert is_infrastructure_error(error)


@pytest.mark.parametrize(
    "error",
    [
        PermanentError("payload makes no sense"),
        _validation_error(),
        ValueError("bad subject line"),
        UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte"),
        asyncpg.DataError("invalid input syntax for type integer"),
        asyncpg.UntranslatableCharacterError("unsupported Unicode escape sequence"),
        asyncpg.UniqueViolationError("duplicate key value violates unique constraint"),
        asyncpg.CheckViolationError("new row violates check constraint"),
        asyncpg.exceptions._base.DataError("invalid input for query argument $1"),
        RuntimeError("a bug in the handler"),  # of no known kind: bounded retries, as before
        KeyError("missing"),
        kafka_errors.KafkaError(),  # not retriable
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_of_the_record_are_dead_lettered(error: BaseException) -> None:
    assert classify(error) is Fault.RECORD
    assert not is_infrastructure_error(error)


def test_an_error_raised_from_a_lost_connection_waits() -> None:
    wrapped = _raised_from(RuntimeError("lookup failed"), ConnectionResetError())
    assert is_infrastructure_error(wrapped)
    assert is_infrastructure_error(_raised_while_handling(KeyError("x"), TimeoutError()))


def test_the_outermost_error_of_a_known_kind_decides() -> None:
    # a handler that judged the record after a blip has said what it means
    assert not is_infrastructure_error(_raised_from(PermanentError("bad"), TimeoutError()))
    assert not is_infrastructure_error(
        _raised_while_handling(ValueError("bad"), ConnectionResetError())
    )
    # a lost connection while handling a record error is still a lost connection
    assert is_infrastructure_error(
        _raised_while_handling(asyncpg.InterfaceError("closed"), ValueError("bad"))
    )


def test_a_suppressed_context_is_not_followed() -> None:
    error = _raised_while_handling(RuntimeError("unrelated"), TimeoutError())
    assert is_infrastructure_error(error)
    error.__suppress_context__ = True  # what ``raise ... from None`` sets
    assert not is_infrastructure_error(error)


def test_exception_groups_wait_if_any_member_lost_its_connection() -> None:
    group = ExceptionGroup("tasks", [ValueError("bad"), ConnectionRefusedError()])
    assert is_infrastructure_error(group)
    nested = ExceptionGroup("outer", [ExceptionGroup("inner", [asyncpg.InterfaceError("x")])])
    assert is_infrastructure_error(nested)
    assert not is_infrastructure_error(ExceptionGroup("tasks", [ValueError("a"), KeyError("b")]))
    assert is_infrastructure_error(_raised_from(RuntimeError("task group failed"), nested))


def test_a_cycle_of_contexts_ends() -> None:
    first, second = RuntimeError("a"), RuntimeError("b")
    first.__context__, second.__context__ = second, first
    assert not is_infrastructure_error(first)
