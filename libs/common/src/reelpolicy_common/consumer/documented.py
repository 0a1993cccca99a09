"""What a subscriber's ``/asyncapi`` entry shows: the typed envelopes of its topics.

FastStream documents a subscriber's message by the type of its handler's body
parameter, and validates the body against that same type on every call. The reliable
subscriber's body is the raw batch (the handlers decode each record's envelope
themselves, see :func:`~reelpolicy_contracts.events.envelope.decode_envelope`), so it
would show as an untyped payload. :class:`DocumentedAs` splits the two: the body is
taken as it comes, exactly as with ``Any``, while its JSON Schema is the catalog's
typed envelope of the topics read (:func:`~reelpolicy_contracts.catalog.topic_schema`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema, core_schema

from reelpolicy_contracts import catalog


@dataclass(frozen=True)
class DocumentedAs:
    """An ``Annotated`` marker: no validation or conversion in Python (the value passes
    through unchanged), the JSON Schema of ``shown``."""

    shown: Any

    def __get_pydantic_core_schema__(
        self, _source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        # The JSON branch only feeds the JSON Schema: bodies are validated in Python.
        return core_schema.json_or_python_schema(
            json_schema=handler.generate_schema(self.shown),
            python_schema=core_schema.any_schema(),
        )


def consumed_messages(topic_names: Sequence[str]) -> DocumentedAs | None:
    """The typed envelopes of the catalog's event types on ``topic_names`` (one record's
    value), or None when the catalog knows none of these topics.

    FastStream gives a subscriber one message for all its channels, so a subscriber of
    several topics shows the union of their event types on each of them.
    """
    if not any(catalog.events_on(topic) for topic in topic_names):
        return None
    return DocumentedAs(catalog.topic_schema(*topic_names))
