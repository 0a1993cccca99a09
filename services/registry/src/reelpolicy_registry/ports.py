"""What the registry use cases need from the outside world (implemented in adapters)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Protocol

from reelpolicy_common.auth import Role
from reelpolicy_common.uow import PublishingUnitOfWorkPort
from reelpolicy_registry.domain import StoredEnterprise, StoredProduction


class DuplicateError(Exception):
    """A uniqueness rule was broken (credit code, or external id per enterprise)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    key_hash: str
    role: Role
    enterprise_id: str | None
    label: str | None
    created_at: datetime
    revoked: bool
    version: int | None = None
    """1 when issued, one more per change; ``None`` for a key stored without one."""


class EnterpriseRepository(Protocol):
    async def get(
        self, enterprise_id: str, *, for_update: bool = False
    ) -> StoredEnterprise | None: ...

    async def add(
        self, attributes: dict[str, Any], *, region_since: date | None
    ) -> StoredEnterprise: ...

    async def update(
        self, enterprise_id: str, attributes: dict[str, Any], *, region_since: date | None
    ) -> StoredEnterprise: ...

    async def soft_delete(self, enterprise_id: str) -> StoredEnterprise: ...

    async def snapshots(self, *, after: str | None, limit: int) -> list[StoredEnterprise]: ...


class ProductionRepository(Protocol):
    async def get(
        self, production_id: str, *, for_update: bool = False
    ) -> StoredProduction | None: ...

    async def add(self, attributes: dict[str, Any]) -> StoredProduction: ...

    async def count_live(self, enterprise_id: str) -> int: ...

    async def update(self, production_id: str, attributes: dict[str, Any]) -> StoredProduction: ...

    async def soft_delete(self, production_id: str) -> StoredProduction: ...

    async def soft_delete_of_enterprise(self, enterprise_id: str) -> list[StoredProduction]: ...

    async def snapshots(self, *, after: str | None, limit: int) -> list[StoredProduction]: ...


class ApiKeyRepository(Protocol):
    async def store(
        self,
        *,
        key_id: str,
        key_hash: str,
        role: Role,
        enterprise_id: str | None,
        label: str | None,
        revoked: bool,
        version: int,
    ) -> None: ...

    async def get(self, key_id: str) -> ApiKeyRecord | None: ...

    async def find_by_hash(self, key_hash: str) -> ApiKeyRecord | None: ...

    async def find(self) -> list[ApiKeyRecord]: ...


ProductionStage = tuple[str, str, str | None, str | None, bytes]
"""A production row for the bulk import: candidate id, enterprise id, external id,
import key (the row's fingerprint, when it has no external id) and attributes JSON."""


@dataclass(frozen=True)
class EventHead:
    """What the events of one bulk upsert share: the envelope's fields but its id, key
    and payload, and the outbox row's topic and headers."""

    topic: str
    event_type: str
    schema_version: int
    occurred_at: str
    producer: str
    headers: dict[str, str]


class BulkLoader(Protocol):
    """COPY-based upserts; each returns only the rows that were created or changed."""

    async def upsert_enterprises(self, rows: list[tuple[uuid.UUID, str, str]]) -> list[Any]: ...

    async def upsert_productions(self, rows: list[ProductionStage], *, events: EventHead) -> int:
        """Store new and changed rows, queue their events; returns how many."""
        ...

    async def insert_new_productions(
        self, rows: list[ProductionStage], *, events: EventHead
    ) -> bool:
        """Store rows that cannot exist yet (their enterprise was created by this
        import) and queue their events; if one exists after all, none of them: False."""
        ...

    async def enterprise_ids(
        self, *, credit_codes: list[str], ids: list[str]
    ) -> tuple[dict[str, str], set[str]]: ...


class UnitOfWork(PublishingUnitOfWorkPort, Protocol):
    @property
    def enterprises(self) -> EnterpriseRepository: ...

    @property
    def productions(self) -> ProductionRepository: ...

    @property
    def api_keys(self) -> ApiKeyRepository: ...

    @property
    def bulk(self) -> BulkLoader: ...

    async def __aenter__(self) -> UnitOfWork: ...
