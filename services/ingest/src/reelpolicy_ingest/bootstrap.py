"""Wires the ingest service: settings -> runtime -> unit of work and the policy publisher."""

from __future__ import annotations

from dataclasses import dataclass

from reelpolicy_common.runtime import ServiceRuntime
from reelpolicy_contracts import catalog, topics
from reelpolicy_ingest.adapters.postgres import IngestUnitOfWork
from reelpolicy_ingest.config import Settings


@dataclass
class Ingest:
    """What the entrypoints need: settings, the runtime, and a unit-of-work factory."""

    settings: Settings
    runtime: ServiceRuntime

    def uow(self) -> IngestUnitOfWork:
        return IngestUnitOfWork(self.runtime.pool)


def bootstrap(settings: Settings | None = None) -> Ingest:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    runtime.broker.publisher(
        topics.POLICY,
        title="policy events",
        description="policy.published / policy.revoked, keyed by policy id (via the outbox).",
        schema=catalog.topic_schema(topics.POLICY),
    )
    return Ingest(settings, runtime)
