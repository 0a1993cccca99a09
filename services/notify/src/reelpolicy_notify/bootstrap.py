"""Wires the notify service: settings -> runtime, units of work and the adapters its
entrypoints need (``main.create_app`` registers the consumer and starts the worker)."""

from __future__ import annotations

from dataclasses import dataclass, field

from reelpolicy_common.runtime import ServiceRuntime
from reelpolicy_notify.adapters.delivery_queue import PostgresDeliveryQueue
from reelpolicy_notify.adapters.email_client import SmtpEmailSender
from reelpolicy_notify.adapters.postgres import NotifyUnitOfWork
from reelpolicy_notify.adapters.secret_box import SecretBox
from reelpolicy_notify.adapters.webhook_client import WebhookHttpSender, check_url
from reelpolicy_notify.config import Settings
from reelpolicy_notify.handlers.delivery_attempts import DeliveryPolicy


@dataclass
class Notify:
    """What the entrypoints need: settings, the runtime, units of work, target checks,
    and the delivery worker's queue and senders."""

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

    def delivery_queue(self) -> PostgresDeliveryQueue:
        return PostgresDeliveryQueue(self.runtime.pool, self.box)

    def webhook_sender(self) -> WebhookHttpSender:
        """A new sender with its own connection pool: the caller closes it (``aclose``)."""
        s = self.settings
        return WebhookHttpSender(
            timeout=s.notify_request_timeout_seconds,
            body_limit=s.notify_response_body_limit,
            allow_private=s.notify_allow_private_targets,
            allowed_hosts=s.allowed_hosts,
            allowed_ports=s.allowed_ports,
        )

    def email_sender(self) -> SmtpEmailSender:
        s = self.settings
        return SmtpEmailSender(
            host=s.smtp_host,
            port=s.smtp_port,
            sender=s.smtp_from,
            timeout=s.smtp_timeout_seconds,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            starttls=s.smtp_starttls,
            implicit_tls=s.smtp_tls,
            ca_file=s.smtp_ca_file,
            public_base_url=s.notify_public_base_url,
            unsubscribe_key=self.unsubscribe_key(),
        )

    def unsubscribe_key(self) -> bytes:
        return self.settings.reelpolicy_secret_key.get_secret_value().encode()


def bootstrap(settings: Settings | None = None) -> Notify:
    settings = settings or Settings()
    return Notify(settings, ServiceRuntime(settings))
