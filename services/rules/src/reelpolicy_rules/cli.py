"""``reelpolicy-rules``: serve, migrate, rebuild (the projection, from the topics),
restore-reconcile (a restored database, with what was published)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from typing import TypedDict

from reelpolicy_common.cli import service_main
from reelpolicy_common.db.pool import create_pool
from reelpolicy_rules.adapters.cache import InMemoryPolicyBook, PolarsSubjectCache
from reelpolicy_rules.adapters.consumer_groups import JOIN_TIMEOUT_SECONDS, KafkaConsumerGroups
from reelpolicy_rules.adapters.postgres import RulesUnitOfWork
from reelpolicy_rules.adapters.topic_reader import STALL_SECONDS, KafkaTopicReader
from reelpolicy_rules.bootstrap import system_clock
from reelpolicy_rules.config import Settings
from reelpolicy_rules.domain.calendar import local_day
from reelpolicy_rules.handlers.rebuild import SnapshotError, rebuild_projection
from reelpolicy_rules.handlers.restore_reconcile import Reconciled, reconcile_restore
from reelpolicy_rules.main import create_app
from reelpolicy_rules.ports import (
    ConsumerGroups,
    PolicyBook,
    SubjectCache,
    TopicReader,
    UnitOfWorkFactory,
)


class OfflinePorts(TypedDict):
    """What an offline command (rebuild, restore-reconcile) runs with."""

    uow: UnitOfWorkFactory
    reader: TopicReader
    groups: ConsumerGroups
    cache: SubjectCache
    book: PolicyBook
    today: date
    trace_limit: int


@asynccontextmanager
async def offline_ports(
    settings: Settings, *, stall_seconds: float, join_timeout: float
) -> AsyncIterator[OfflinePorts]:
    """The database, the topics and fresh caches for a command run with the service
    stopped; the pool closes after."""
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        yield OfflinePorts(
            uow=lambda: RulesUnitOfWork(pool),
            reader=KafkaTopicReader(settings, stall_seconds=stall_seconds),
            groups=KafkaConsumerGroups(settings, join_timeout=join_timeout),
            cache=PolarsSubjectCache(),
            book=InMemoryPolicyBook(),
            today=local_day(system_clock(), settings.timezone),
            trace_limit=settings.bulk_trace_limit,
        )
    finally:
        await pool.close()


async def rebuild(
    settings: Settings,
    *,
    stall_seconds: float = STALL_SECONDS,
    join_timeout: float = JOIN_TIMEOUT_SECONDS,
) -> int:
    """``reelpolicy-rules rebuild`` (:mod:`reelpolicy_rules.handlers.rebuild`); prints
    what it did. Raises :class:`SnapshotError` when it refuses."""
    async with offline_ports(
        settings, stall_seconds=stall_seconds, join_timeout=join_timeout
    ) as ports:
        rebuilt = await rebuild_projection(**ports)
    replay = rebuilt.replay
    used = ", ".join(
        f"{topic} {marker.snapshot_id} ({marker.records} record(s))"
        for topic, marker in sorted(replay.snapshots.items())
    )
    print(f"complete snapshots: {used}")
    print(
        f"rebuilt the projection from {replay.applied} record(s) ({replay.skipped} skipped);"
        f" {rebuilt.changed} result(s) differed; consumer groups moved: {rebuilt.moved}"
    )
    return 0


async def restore_reconcile(
    settings: Settings,
    *,
    stall_seconds: float = STALL_SECONDS,
    join_timeout: float = JOIN_TIMEOUT_SECONDS,
) -> Reconciled:
    """``reelpolicy-rules restore-reconcile``
    (:mod:`reelpolicy_rules.handlers.restore_reconcile`); prints what it did."""
    async with offline_ports(
        settings, stall_seconds=stall_seconds, join_timeout=join_timeout
    ) as ports:
        done = await reconcile_restore(**ports)
    print(
        f"read {done.eligibility_read} published change(s): {done.written_back} made after"
        f" the dump written back, {done.resent_dropped} unsent in the dump and published"
        f" since dropped from the outbox; caught up from {done.applied} record(s)"
        f" ({done.skipped} skipped); {done.changed} result(s) differed from what was"
        f" published and were published; consumer groups moved: {done.moved}"
    )
    return done


def _restore_reconcile_command(_: argparse.Namespace) -> int:
    asyncio.run(restore_reconcile(Settings()))
    return 0


def _rebuild_command(_: argparse.Namespace) -> int:
    try:
        return asyncio.run(rebuild(Settings()))
    except SnapshotError as exc:
        print(f"error: rebuild refused: {exc}", file=sys.stderr)
        return 2


def _extra(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    again = commands.add_parser(
        "rebuild",
        help="rebuild the projection from the latest complete snapshot of the registry and"
        " policy topics (republish first; service stopped); keeps results",
    )
    again.set_defaults(handler=_rebuild_command)
    reconcile = commands.add_parser(
        "restore-reconcile",
        help="after restoring the database from a backup (service stopped): write back the"
        " changes published after the dump, catch up from the registry and policy topics,"
        " publish only what differs from what was published; moves the consumer groups",
    )
    reconcile.set_defaults(handler=_restore_reconcile_command)


def main(argv: list[str] | None = None) -> int:
    return service_main(
        argv,
        settings_factory=Settings,
        app_factory=create_app,
        migrations_package="reelpolicy_rules.migrations",
        description="reelpolicy rules: policy and registry events in, eligibility events out.",
        extra=_extra,
    )


if __name__ == "__main__":
    sys.exit(main())
