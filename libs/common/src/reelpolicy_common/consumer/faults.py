"""Whose fault is an error: the record's (dead-letter it) or the infrastructure's (wait).

A record error (a payload that does not validate, a constraint the data breaks, a
handler's :class:`PermanentError`) fails the same way every time, so after bounded
retries the record goes to the DLQ. An infrastructure error (a connection refused,
reset or closed, a database shutting down or out of connections, a broker that does
not answer, a timeout) says nothing about the record: the consumer waits it out and
handles the record again, however long that takes.

:func:`is_infrastructure_error` walks what an error was raised from (``__cause__``)
or while handling (``__context__``) and the members of exception groups. The first
error with a known kind, from the outermost inwards, decides: a handler that turns a
lost connection into its own error (``raise LookupFailed from exc``) still waits,
while one that raises ``ValueError`` on purpose has judged the record. Errors of
no known kind count as record errors, which keeps the bounded retries for them.
"""

from __future__ import annotations

from enum import Enum

import asyncpg
from aiokafka import errors as kafka_errors


class PermanentError(Exception):
    """An event that can never succeed (bad payload): dead-letter it without retrying."""


class InfrastructureError(Exception):
    """Records were left unhandled because of an infrastructure error (the cause):
    they are to be handled again once the infrastructure is back, never dead-lettered."""


class Fault(Enum):
    RECORD = "record"
    INFRASTRUCTURE = "infrastructure"


_RECORD_ERRORS: tuple[type[BaseException], ...] = (
    PermanentError,
    ValueError,  # pydantic's ValidationError, asyncpg's argument DataError, bad Unicode
    asyncpg.DataError,  # 22xxx: a value the column or function refuses
    asyncpg.IntegrityConstraintViolationError,  # 23xxx: a constraint the data breaks
)

INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (
    InfrastructureError,
    OSError,  # ConnectionError (refused, reset, aborted), TimeoutError, unreachable hosts
    asyncpg.InterfaceError,  # the connection is closed or was lost mid-operation
    asyncpg.PostgresConnectionError,  # 08xxx, ConnectionDoesNotExistError among them
    asyncpg.OperatorInterventionError,  # 57xxx: shutdown, crash, cannot connect now,
    # and QueryCanceledError (a statement or command timeout)
    asyncpg.InsufficientResourcesError,  # 53xxx: too many connections, disk full
    kafka_errors.KafkaConnectionError,
    kafka_errors.KafkaTimeoutError,
    kafka_errors.NodeNotReadyError,
)


def _own_kind(exc: BaseException) -> Fault | None:
    if isinstance(exc, _RECORD_ERRORS):
        return Fault.RECORD
    if isinstance(exc, INFRASTRUCTURE_ERRORS):
        return Fault.INFRASTRUCTURE
    if isinstance(exc, kafka_errors.KafkaError) and exc.retriable:
        return Fault.INFRASTRUCTURE
    return None


def classify(exc: BaseException) -> Fault:
    """:attr:`Fault.INFRASTRUCTURE` if ``exc`` comes from the infrastructure."""
    return _classify(exc, seen=set()) or Fault.RECORD


def _classify(exc: BaseException, *, seen: set[int]) -> Fault | None:
    if id(exc) in seen:  # a cycle of causes and contexts
        return None
    seen.add(id(exc))
    if isinstance(exc, BaseExceptionGroup):
        # One member that lost its connection makes the whole group wait: the record
        # errors among the others show again once the infrastructure is back.
        kinds = {_classify(member, seen=seen) for member in exc.exceptions}
        for decided in (Fault.INFRASTRUCTURE, Fault.RECORD):
            if decided in kinds:
                return decided
    kind = _own_kind(exc)
    if kind is not None:
        return kind
    if exc.__cause__ is not None:
        return _classify(exc.__cause__, seen=seen)
    if exc.__context__ is not None and not exc.__suppress_context__:
        return _classify(exc.__context__, seen=seen)
    return None


def is_infrastructure_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the infrastructure's fault (see the module's docstring)."""
    return classify(exc) is Fault.INFRASTRUCTURE
