"""The delivery worker and the deadline scans: background loops of every notify instance.

It leases due deliveries (``FOR UPDATE SKIP LOCKED``, with a lease longer than a
request's timeout, so two instances never attempt one delivery at the same time and a
crashed instance's lease expires and is taken over), sends them concurrently, and
stores attempts in batches. It sleeps until ``LISTEN notify_deliveries`` wakes it
(a trigger notifies on every insert) or until the next due time: no busy polling.

Nothing one delivery does stops the worker: an attempt that raises is recorded as a
failed attempt (retried on schedule), and a batch of outcomes the database refuses
is stored row by row (a row refused alone is stored without its details). The loop
beats (``reelpolicy_common.supervisor.heartbeat``) every tick, so a stuck worker
shows in ``/healthz``; an unexpected error is logged and the loop goes on.

The deadline scans file ``policy.deadline`` alerts on a timer (``handlers.deadlines``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from reelpolicy_common.db.listen import NotifyListener
from reelpolicy_common.supervisor import heartbeat
from reelpolicy_notify.bootstrap import Notify
from reelpolicy_notify.domain.attempt_outcomes import Outcome, without_details
from reelpolicy_notify.handlers.deadlines import scan_deadlines
from reelpolicy_notify.handlers.delivery_attempts import (
    DeliveryPolicy,
    attempt_delivery,
    crashed_outcome,
    notify_owner_disabled,
)
from reelpolicy_notify.ports import DeliveryQueue, EmailSender, UowFactory, WebhookSender

log = logging.getLogger(__name__)
CHANNEL = "notify_deliveries"
TICK_SLACK_SECONDS = 30.0  # a tick's own queries, beyond its idle wait
RECORD_BATCH = 1000

# Errors that say the database cannot be reached now, not that a row is bad: the
# outcomes are kept and stored once it answers again.
UNREACHABLE = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
)


def _unreachable(exc: BaseException) -> bool:
    # asyncpg's client-side DataError (a value it cannot encode) is an InterfaceError
    # and a ValueError: a bad row, not a lost connection
    return isinstance(exc, UNREACHABLE) and not isinstance(exc, ValueError)


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
                heartbeat(within=self._max_idle + TICK_SLACK_SECONDS)
                if recorder.done():  # cannot happen (it catches everything), but never silently
                    log.error("the outcome recorder stopped (%r); starting it again", recorder)
                    recorder = asyncio.create_task(self._record_forever(), name="notify-recorder")
                try:
                    await listener.ensure()
                    await self._tick()
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    log.warning("delivery worker: %r; retrying in 1s", exc)
                    await listener.drop()
                    await asyncio.sleep(1.0)
                except Exception:
                    log.exception("delivery worker: unexpected error; retrying in 1s")
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
        except Exception as exc:
            log.exception("delivery %s: the attempt raised", delivery.id)
            outcome = crashed_outcome(claimed=delivery, error=exc, policy=self._policy)
        self._outcomes.put_nowait(outcome)

    async def _record_forever(self) -> None:
        while True:
            first = await self._outcomes.get()
            self._outcomes.put_nowait(first)
            try:
                stored = await self._flush()
            except Exception:
                log.exception("recording outcomes failed")
                stored = False
            if not stored:
                await asyncio.sleep(1.0)

    async def _flush(self) -> bool:
        """Store the queued outcomes; False if the database could not be reached (they
        are queued again, for the next try)."""
        batch: list[Outcome] = []
        while not self._outcomes.empty() and len(batch) < RECORD_BATCH:
            batch.append(self._outcomes.get_nowait())
        if not batch:
            return True
        try:
            disabled = await self._queue.record(batch)
        except Exception as exc:
            if _unreachable(exc):
                log.warning("recording %d outcomes: %r; trying again", len(batch), exc)
                for outcome in batch:
                    self._outcomes.put_nowait(outcome)
                return False
            log.warning("recording %d outcomes: %r; storing them one by one", len(batch), exc)
            disabled = await self._record_one_by_one(batch)
        for subscription_id in disabled:
            try:
                await notify_owner_disabled(uow=self._uow, subscription_id=subscription_id)
            except Exception:
                log.exception("telling the owner of subscription %s failed", subscription_id)
        return True

    async def _record_one_by_one(self, batch: list[Outcome]) -> list[uuid.UUID]:
        disabled: list[uuid.UUID] = []
        for outcome in batch:
            try:
                disabled += await self._queue.record([outcome])
                continue
            except Exception as exc:
                if _unreachable(exc):
                    self._outcomes.put_nowait(outcome)
                    continue
                reason = f"the attempt's outcome could not be stored: {type(exc).__name__}"
                log.exception("delivery %s: %s", outcome.delivery_id, reason)
            try:
                disabled += await self._queue.record([without_details(outcome, reason=reason)])
            except Exception:  # its lease expires and the delivery is attempted again
                log.exception(
                    "delivery %s: not even its bare outcome was stored", outcome.delivery_id
                )
        return disabled


async def scan_deadlines_forever(
    scan: Callable[[], Awaitable[object]], *, every_seconds: float
) -> None:
    """Run the deadline scan now and then every ``every_seconds``; a scan that fails is
    logged and the next one follows on time."""
    while True:
        heartbeat(within=every_seconds + TICK_SLACK_SECONDS)
        try:
            await scan()
        except (OSError, asyncpg.PostgresError) as exc:
            log.warning("deadline scan failed: %r", exc)
        except Exception:
            log.exception("deadline scan failed")
        await asyncio.sleep(every_seconds)


async def run_worker(notify: Notify) -> None:
    """The delivery worker of ``notify``, until cancelled."""
    s = notify.settings
    webhooks = notify.webhook_sender()
    worker = DeliveryWorker(
        pool=notify.runtime.pool,
        queue=notify.delivery_queue(),
        uow=notify.uow,
        webhooks=webhooks,
        emails=notify.email_sender(),
        policy=notify.delivery_policy(),
        concurrency=s.notify_worker_concurrency,
        batch=s.notify_worker_batch,
        lease_seconds=2 * s.notify_request_timeout_seconds + 30,
        max_idle_seconds=s.notify_worker_max_idle_seconds,
    )
    try:
        await worker.run()
    finally:
        await webhooks.aclose()


async def run_deadline_scans(notify: Notify) -> None:
    """The deadline scans of ``notify``, every ``NOTIFY_DEADLINE_SCAN_SECONDS``, until cancelled."""
    await scan_deadlines_forever(
        lambda: scan_deadlines(uow=notify.uow),
        every_seconds=notify.settings.notify_deadline_scan_seconds,
    )
