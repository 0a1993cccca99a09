"""Wires the notify service: settings -> runtime -> units of work, consumer, worker."""

from __future__ import annotations

from dataclasses import dataclass, field

from reelpolicy_common.runtime import ServiceRuntime
from reelpolicy_notify.adapters.delivery_gauges import watch_delivery_gauges
from reelpolicy_notify.adapters.email_client import SmtpEmailSender
from reelpolicy_notify.adapters.postgres import NotifyUnitOfWork
from reelpolicy_notify.adapters.queue import PostgresDeliveryQueue
from reelpolicy_notify.adapters.secret_box import SecretBox
from reelpolicy_notify.adapters.webhook_client import WebhookHttpSender, check_url
from reelpolicy_notify.config import Settings
from reelpolicy_notify.handlers.deadlines import scan_deadlines
from reelpolicy_notify.handlers.delivering import DeliveryPolicy


@dataclass
class Notify:
    """What the entrypoints need: settings, the runtime, units of work, target checks."""

    settings: Settings
    runtime: ServiceRuntime
    box: SecretBox = field(init=False)

    def __post_init__(self) -> None:
        self.box = self.settings.secret_box()

    def uow(self) -> NotifyUnitOfWork:
        return NotifyUnitOfWork(self.runtime.pool, self.box)

    async def check_target(self, url: str) -> None:
        await check_url(
            url,
            allow_private=self.settings.notify_allow_private_targets,
            allowed_hosts=self.settings.allowed_hosts,
            allowed_ports=self.settings.allowed_ports,
        )

    def delivery_policy(self) -> DeliveryPolicy:
        s = self.settings
        return DeliveryPolicy(
            s.retry_schedule, s.notify_retry_jitter, s.notify_disable_after_seconds
        )

    async def run_worker(self) -> None:
        from reelpolicy_notify.entrypoints.worker import DeliveryWorker

        s = self.settings
        webhooks = WebhookHttpSender(
            timeout=s.notify_request_timeout_seconds,
            body_limit=s.notify_response_body_limit,
            allow_private=s.notify_allow_private_targets,
            allowed_hosts=s.allowed_hosts,
            allowed_ports=s.allowed_ports,
        )
        emails = SmtpEmailSender(
            host=s.smtp_host, port=s.smtp_port, sender=s.smtp_from, timeout=s.smtp_timeout_seconds
        )
        worker = DeliveryWorker(
            pool=self.runtime.pool,
            queue=PostgresDeliveryQueue(self.runtime.pool, self.box),
            uow=self.uow,
            webhooks=webhooks,
            emails=emails,
            policy=self.delivery_policy(),
            concurrency=s.notify_worker_concurrency,
            batch=s.notify_worker_batch,
            lease_seconds=2 * s.notify_request_timeout_seconds + 30,
            max_idle_seconds=s.notify_worker_max_idle_seconds,
        )
        try:
            await worker.run()
        finally:
            await webhooks.aclose()

    async def run_deadline_scans(self) -> None:
        from reelpolicy_notify.entrypoints.worker import scan_deadlines_forever

        await scan_deadlines_forever(
            lambda: scan_deadlines(uow=self.uow),
            every_seconds=self.settings.notify_deadline_scan_seconds,
        )


def bootstrap(settings: Settings | None = None, *, worker: bool = True) -> Notify:
    from reelpolicy_notify.entrypoints.consumers import register_consumers

    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    notify = Notify(settings, runtime)
    register_consumers(runtime, notify.uow)
    if worker:
        runtime.add_background(notify.run_worker, name="notify-worker")
        runtime.add_background(notify.run_deadline_scans, name="notify-deadline-scans")
        runtime.add_background(lambda: watch_delivery_gauges(runtime.pool), name="notify-gauges")
    return notify
