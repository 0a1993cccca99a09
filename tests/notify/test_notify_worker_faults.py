"""The delivery worker against what one delivery can throw at it (real PostgreSQL and
broker): a secret that does not open, a subject with a line break, a response body
PostgreSQL refuses, an attempt that raises, an outcome the database will not store.
Each must end in a recorded outcome, and the worker must go on with the others."""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from notify_app import RunningNotify, notify_settings, prepare, running_notify, settled
from notify_events import eligibility_event, produce_eligibility
from scripted_receiver import Receiver

from reelpolicy_devstack.servers import free_port
from reelpolicy_notify.adapters.delivery_queue import PostgresDeliveryQueue
from reelpolicy_notify.adapters.email_client import SmtpEmailSender
from reelpolicy_notify.adapters.webhook_client import WebhookHttpSender
from reelpolicy_notify.bootstrap import Notify, bootstrap
from reelpolicy_notify.domain.records import SendResult
from reelpolicy_notify.entrypoints.worker import DeliveryWorker
from reelpolicy_notify.main import create_app

pytestmark = pytest.mark.servers


def enterprise() -> str:
    return f"ent-{uuid.uuid4().hex[:10]}"


async def subscribe(notify: RunningNotify, enterprise_id: str, **body: Any) -> tuple[Any, str]:
    client = notify.client(await notify.key(enterprise_id=enterprise_id))
    response = await client.post(
        "/v1/subscriptions", json={"channel": "webhook", "events": ["eligibility.changed"], **body}
    )
    assert response.status_code == 201, response.text
    return client, response.json()["id"]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    yield server
    await server.stop()


async def test_a_secret_that_does_not_open_fails_its_delivery_for_good(
    fresh_database: str, bootstrap_servers: str, receiver: Receiver
) -> None:
    await prepare(fresh_database, bootstrap_servers)
    async with running_notify(fresh_database, bootstrap_servers) as notify:
        broken, intact = enterprise(), enterprise()
        broken_client, broken_id = await subscribe(notify, broken, url=receiver.url)
        intact_client, _ = await subscribe(notify, intact, url=receiver.url)
        # What a changed server key looks like to this server: a sealed secret that no
        # longer authenticates (one character of the ciphertext changed).
        conn = await asyncpg.connect(fresh_database)
        try:
            sealed = await conn.fetchval(
                "SELECT secret_sealed FROM subscriptions WHERE id = $1", uuid.UUID(broken_id)
            )
            flipped = "B" if sealed[-6] == "A" else "A"
            await conn.execute(
                "UPDATE subscriptions SET secret_sealed = $2 WHERE id = $1",
                uuid.UUID(broken_id),
                sealed[:-6] + flipped + sealed[-5:],
            )
        finally:
            await conn.close()
        await produce_eligibility(
            notify.bootstrap, eligibility_event(broken), eligibility_event(intact)
        )
        [failed] = await settled(broken_client, 1)
        assert failed["status"] == "failed"
        assert "signing secret does not open" in failed["last_error"]
        assert [a["status_code"] for a in failed["attempts"]] == [None]  # never retried
        [delivered] = await settled(intact_client, 1)  # the worker went on
        assert delivered["status"] == "succeeded"
        assert len(receiver.requests) == 1


async def test_a_subject_with_a_line_break_is_folded_and_the_alert_delivered(
    fresh_database: str, bootstrap_servers: str
) -> None:
    from aiosmtpd.controller import Controller

    inbox: list[Any] = []

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            inbox.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        await prepare(fresh_database, bootstrap_servers)
        async with running_notify(
            fresh_database, bootstrap_servers, smtp_host="127.0.0.1", smtp_port=port
        ) as notify:
            ent = enterprise()
            client, _ = await subscribe(notify, ent, channel="email", email="ops@example.com")
            policy = "p-rent\r\nBcc: someone@example.org"  # lands in the summary: the subject
            await produce_eligibility(notify.bootstrap, eligibility_event(ent, policy_id=policy))
            [delivery] = await settled(client, 1)
            assert delivery["status"] == "succeeded", delivery
            [mail] = inbox
            assert mail.rcpt_tos == ["ops@example.com"]
            message = email.message_from_bytes(mail.content, policy=email.policy.default)
            # the alert's title in the default locale (zh-CN), folded onto one line
            assert message["Subject"] == "资格变化：p-rent Bcc: someone@example.org"
            assert message["Bcc"] is None
    finally:
        controller.stop()


async def test_a_response_body_with_a_nul_byte_is_stored_and_the_batch_kept(
    fresh_database: str, bootstrap_servers: str
) -> None:
    await prepare(fresh_database, bootstrap_servers)
    nul = await Receiver(body=b"accepted\x00 thanks").start()
    plain = await Receiver().start()
    try:
        async with running_notify(fresh_database, bootstrap_servers) as notify:
            ent = enterprise()
            client, _ = await subscribe(notify, ent, url=nul.url)
            await subscribe(notify, ent, url=plain.url)
            await produce_eligibility(notify.bootstrap, eligibility_event(ent))
            done = await settled(client, 2)
            assert {d["status"] for d in done} == {"succeeded"}
            bodies = {d["attempts"][0]["response_body"] for d in done}
            assert bodies == {"accepted\ufffd thanks", "ok"}
    finally:
        await nul.stop()
        await plain.stop()


class MisbehavingSender:
    """The real webhook sender, but the first request raises and requests to
    ``unstorable_url`` report a latency PostgreSQL's ``integer`` cannot hold."""

    def __init__(self, real: WebhookHttpSender, *, unstorable_url: str | None = None) -> None:
        self._real = real
        self._unstorable_url = unstorable_url
        self.raised = False

    async def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> SendResult:
        if not self.raised and self._unstorable_url is None:
            self.raised = True
            raise RuntimeError("a failure nobody planned for")
        result = await self._real.post(url, body=body, headers=headers)
        if url == self._unstorable_url:
            return SendResult(result.status_code, 2**40, response_body=result.response_body)
        return result


@contextlib.asynccontextmanager
async def worker_with(notify: Notify, sender: MisbehavingSender) -> AsyncIterator[None]:
    s = notify.settings
    worker = DeliveryWorker(
        pool=notify.runtime.pool,
        queue=PostgresDeliveryQueue(notify.runtime.pool, notify.box),
        uow=notify.uow,
        webhooks=sender,
        emails=SmtpEmailSender(host="127.0.0.1", port=1, sender=s.smtp_from, timeout=1),
        policy=notify.delivery_policy(),
        concurrency=10,
        batch=10,
        lease_seconds=2.0,  # a lost outcome would show as a second attempt within the test
        max_idle_seconds=0.5,
    )
    task = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def notify_without_worker(dsn: str, bootstrap: str) -> AsyncIterator[RunningNotify]:
    await prepare(dsn, bootstrap)
    notify = bootstrap_notify(dsn, bootstrap)
    app = create_app(notify=notify, worker=False)
    async with app.router.lifespan_context(app):
        running = RunningNotify(app, dsn, bootstrap)
        running.notify = notify  # type: ignore[attr-defined]
        yield running


def bootstrap_notify(dsn: str, bootstrap_servers: str) -> Notify:
    return bootstrap(notify_settings(dsn, bootstrap_servers))


async def test_an_attempt_that_raises_is_recorded_as_a_failed_attempt_and_retried(
    fresh_database: str, bootstrap_servers: str, receiver: Receiver
) -> None:
    async with notify_without_worker(fresh_database, bootstrap_servers) as running:
        notify: Notify = running.notify  # type: ignore[attr-defined]
        sender = MisbehavingSender(_real_sender(notify))
        async with worker_with(notify, sender):
            ent = enterprise()
            client, _ = await subscribe(running, ent, url=receiver.url)
            await produce_eligibility(running.bootstrap, eligibility_event(ent))
            [delivery] = await settled(client, 1)
        assert delivery["status"] == "succeeded"
        first, second = delivery["attempts"]
        assert first["status_code"] is None
        assert "RuntimeError: a failure nobody planned for" in first["error"]
        assert second["status_code"] == 200


async def test_an_outcome_the_database_refuses_is_stored_bare_and_the_others_kept(
    fresh_database: str, bootstrap_servers: str, receiver: Receiver
) -> None:
    other = await Receiver().start()
    try:
        async with notify_without_worker(fresh_database, bootstrap_servers) as running:
            notify: Notify = running.notify  # type: ignore[attr-defined]
            sender = MisbehavingSender(_real_sender(notify), unstorable_url=other.url)
            async with worker_with(notify, sender):
                ent = enterprise()
                client, _ = await subscribe(running, ent, url=receiver.url)
                await subscribe(running, ent, url=other.url)
                await produce_eligibility(running.bootstrap, eligibility_event(ent))
                done = await settled(client, 2)
                await asyncio.sleep(2.5)  # a lost outcome's lease would expire by now
            after = await settled(client, 2)
        assert [d["attempts"] for d in after] == [d["attempts"] for d in done]
        by_status = sorted(done, key=lambda d: d["attempts"][0]["status_code"] is None)
        kept, bare = by_status
        assert [a["status_code"] for a in kept["attempts"]] == [200]
        assert [a["status_code"] for a in bare["attempts"]] == [None]
        assert "could not be stored" in bare["attempts"][0]["error"]
        assert bare["status"] == "succeeded"  # the endpoint took it: not sent again
        assert len(other.requests) == 1
    finally:
        await other.stop()


def _real_sender(notify: Notify) -> WebhookHttpSender:
    s = notify.settings
    return WebhookHttpSender(
        timeout=s.notify_request_timeout_seconds,
        body_limit=s.notify_response_body_limit,
        allow_private=s.notify_allow_private_targets,
        allowed_hosts=s.allowed_hosts,
    )
