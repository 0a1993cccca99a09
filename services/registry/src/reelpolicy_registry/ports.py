"""What the registry use cases need from the outside world (implemented in adapters)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, Protocol

from reelpolicy_common.uow import PublishingUnitOfWorkPort
from reelpolicy_registry.domain.api_keys import ApiKeyRecord, Role
from reelpolicy_registry.domain.events import EventHead
from reelpolicy_registry.domain.records import StoredEnterprise, StoredProduction


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


class PortalLinkRepository(Protocol):
    async def add(
        self, *, token_hash: str, enterprise_id: str, created_at: datetime, expires_at: datetime
    ) -> None: ...

    async def claim(self, token_hash: str, *, now: datetime) -> str | None:
        """Mark the link redeemed if it is unused and unexpired at ``now``; its enterprise
        id, or ``None``. Of concurrent claims of one link, one gets it."""
        ...

    async def record_key(self, token_hash: str, key_id: str) -> None: ...


ProductionStage = tuple[str, str, str | None, str | None, bytes]
"""A production row of an import: candidate id, enterprise id, external id,
import key (the row's fingerprint, when it has no external id) and attributes JSON."""


class ImportStaging(Protocol):
    """An import's writes, a chunk at a time: upserts that return (or count) only the
    rows created or changed, and the look-up of the enterprises rows name."""

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
    def portal_links(self) -> PortalLinkRepository: ...

    @property
    def import_staging(self) -> ImportStaging: ...

    async def __aenter__(self) -> UnitOfWork: ...


UowFactory = Callable[[], UnitOfWork]
"""A new unit of work per call: what every use case takes."""
