"""The delivery worker: a background loop of every notify instance.

It leases due deliveries (``FOR UPDATE SKIP LOCKED``, with a lease longer than a
request's timeout, so two instances never attempt one delivery at the same time and a
crashed instance's lease expires and is taken over), sends them concurrently, and
stores attempts in batches. It sleeps until ``LISTEN notify_deliveries`` wakes it
(a trigger notifies on every insert) or until the next due time: no busy polling.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import Any

import asyncpg

from reelpolicy_common.db.listen import NotifyListener
from reelpolicy_notify.domain.outcomes import Outcome
from reelpolicy_notify.handlers.delivering import (
    DeliveryPolicy,
    UowFactory,
    attempt_delivery,
    notify_owner_disabled,
)
from reelpolicy_notify.ports import DeliveryQueue, EmailSender, WebhookSender

log = logging.getLogger(__name__)
CHANNEL = "notify_deliveries"


class DeliveryWorker:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        queue: DeliveryQueue,
        uow: UowFactory,
        webhooks: WebhookSender,
        emails: EmailSender,
        policy: DeliveryPolicy,
        concurrency: int,
        batch: int,
        lease_seconds: float,
        max_idle_seconds: float,
        coalesce_seconds: float = 0.005,
    ) -> None:
        self._pool = pool
        self._queue = queue
        self._uow = uow
        self._webhooks = webhooks
        self._emails = emails
        self._policy = policy
        self._concurrency = concurrency
        self._batch = batch
        self._lease = lease_seconds
        self._max_idle = max_idle_seconds
        self._coalesce = coalesce_seconds
        self._wake = asyncio.Event()
        self._inflight: set[asyncio.Task[None]] = set()
        self._outcomes: asyncio.Queue[Outcome] = asyncio.Queue()

    async def run(self) -> None:
        listener = NotifyListener(self._pool, CHANNEL, self._wake)
        recorder = asyncio.create_task(self._record_forever(), name="notify-recorder")
        try:
            while True:
                try:
                    await listener.ensure()
                    await self._tick()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("delivery worker: %r; retrying in 1s", exc)
                    await listener.drop()
                    await asyncio.sleep(1.0)
        finally:
            for task in list(self._inflight):
                task.cancel()
            await asyncio.gather(*self._inflight, return_exceptions=True)
            await self._flush()
            recorder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await recorder
            await listener.drop()

    async def _tick(self) -> None:
        self._wake.clear()
        room = self._concurrency - len(self._inflight)
        if room > 0:
            claimed = await self._queue.claim(
                limit=min(room, self._batch), lease_seconds=self._lease
            )
            for delivery in claimed:
                task = asyncio.create_task(self._attempt(delivery))
                self._inflight.add(task)
                task.add_done_callback(self._done)
            if len(claimed) == min(room, self._batch):
                return  # maybe more are due: claim again at once
        timeout = self._max_idle
        if room > 0:
            due = await self._queue.next_due()
            if due is not None:
                timeout = min(timeout, max((due - datetime.now(UTC)).total_seconds(), 0.0) + 0.01)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout)
            # Woken by an insert: let a few more arrive, then claim them in one query.
            await asyncio.sleep(self._coalesce)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._inflight.discard(task)
        if len(self._inflight) < self._concurrency:
            self._wake.set()

    async def _attempt(self, delivery: Any) -> None:
        try:
            outcome = await attempt_delivery(
                claimed=delivery,
                queue=self._queue,
                webhooks=self._webhooks,
                emails=self._emails,
                policy=self._policy,
            )
        except Exception:  # the lease expires and another attempt follows
            log.exception("delivery %s attempt crashed", delivery.id)
            return
        self._outcomes.put_nowait(outcome)

    async def _record_forever(self) -> None:
        while True:
            first = await self._outcomes.get()
            self._outcomes.put_nowait(first)
            await self._flush()

    async def _flush(self) -> None:
        batch: list[Outcome] = []
        while not self._outcomes.empty() and len(batch) < 1000:
            batch.append(self._outcomes.get_nowait())
        if not batch:
            return
        try:
            disabled = await self._queue.record(batch)
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning(
                "recording %d outcomes failed (%r); their leases will expire", len(batch), exc
            )
            return
        for subscription_id in disabled:
            await notify_owner_disabled(uow=self._uow, subscription_id=subscription_id)


async def scan_deadlines_forever(scan: Any, *, every_seconds: float) -> None:
    """Run the deadline scan now and then every ``every_seconds``."""
    while True:
        try:
            await scan()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("deadline scan failed: %r", exc)
        await asyncio.sleep(every_seconds)
