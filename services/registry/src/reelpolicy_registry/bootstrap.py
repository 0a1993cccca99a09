"""Wires the registry: settings -> runtime -> unit of work, publishers (no consumers).

The registry consumes nothing (it is the source of API keys); it only publishes on
the registry topic, through its outbox.
"""

from __future__ import annotations

from concurrent.futures import Executor
from dataclasses import dataclass

from reelpolicy_common.runtime import ServiceRuntime
from reelpolicy_contracts import catalog, topics
from reelpolicy_registry.adapters.import_workers import validation_processes
from reelpolicy_registry.adapters.postgres import RegistryUnitOfWork
from reelpolicy_registry.config import Settings


@dataclass
class Registry:
    """What the entrypoints need: settings, the runtime, and a unit-of-work factory."""

    settings: Settings
    runtime: ServiceRuntime
    import_validators: Executor | None = None  # IMPORT_PROCESSES worker processes

    def uow(self) -> RegistryUnitOfWork:
        return RegistryUnitOfWork(self.runtime.pool)


def bootstrap(settings: Settings | None = None) -> Registry:
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    runtime.broker.publisher(
        topics.REGISTRY,
        title="registry events",
        description=(
            "enterprise.upserted / enterprise.deleted / production.upserted /"
            " production.deleted (full snapshots with version) and api_key.changed,"
            " keyed by enterprise id (or 'operator'), via the outbox."
        ),
        schema=catalog.topic_schema(topics.REGISTRY),
    )
    validators = validation_processes(settings.import_processes)
    if validators is not None:
        runtime.on_stopped(lambda: validators.shutdown(wait=False, cancel_futures=True))
    return Registry(settings, runtime, validators)
