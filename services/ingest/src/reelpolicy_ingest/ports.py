"""What the ingest use cases need from the outside world (implemented in adapters)."""

from __future__ import annotations

from typing import Protocol

from reelpolicy_common.uow import PublishingUnitOfWorkPort
from reelpolicy_ingest.domain import StoredPolicy


class PolicyRepository(Protocol):
    async def lock(self, policy_id: str) -> None:
        """Serialise writers of one policy id until the unit of work ends."""

    async def latest(self, policy_id: str) -> StoredPolicy | None: ...

    async def version(self, policy_id: str, version: int) -> StoredPolicy | None: ...

    async def add_version(self, policy: StoredPolicy) -> None: ...

    async def set_revoked(self, policy_id: str, *, revoked: bool) -> None: ...

    async def list_latest(self, *, after: str | None, limit: int) -> list[StoredPolicy]: ...


class UnitOfWork(PublishingUnitOfWorkPort, Protocol):
    @property
    def policies(self) -> PolicyRepository: ...

    async def __aenter__(self) -> UnitOfWork: ...
