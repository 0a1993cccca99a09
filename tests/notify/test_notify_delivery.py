"""Delivery at the boundary: events on the real broker -> signed webhooks and emails."""

from __future__ import annotations

import asyncio
import email
import email.message
import email.policy
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from notify_app import RunningNotify, deliveries, prepare, running_notify, settled
from notify_events import eligibility_event, produce_eligibility
from scripted_receiver import Receiver
from standardwebhooks import Webhook

from service_harness import eventually

pytestmark = pytest.mark.servers


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = await Receiver().start()
    yield server
    await server.stop()


@pytest.fixture
async def notify(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[RunningNotify]:
    await prepare(fresh_database, bootstrap_servers)
    async with running_notify(fresh_database, bootstrap_servers) as running:
        yield running


async def subscribe(
    notify: RunningNotify, enterprise_id: str, **body: Any
) -> tuple[Any, dict[str, Any]]:
    client = notify.client(await notify.key(enterprise_id=enterprise_id))
    response = await client.post(
        "/v1/subscriptions", json={"channel": "webhook", "events": ["eligibility.changed"], **body}
    )
    assert response.status_code == 201, response.text
    return client, response.json()


def enterprise() -> str:
    return f"ent-{uuid.uuid4().hex[:10]}"


async def test_a_duplicated_event_yields_exactly_one_signed_webhook(
    notify: RunningNotify, receiver: Receiver
) -> None:
    ent = enterprise()
    client, sub = await subscribe(notify, ent, url=receiver.url)
    event = eligibility_event(ent)
    trace_id = uuid.uuid4().hex
    upstream = {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}
    await produce_eligibility(notify.bootstrap, event, event, headers=upstream)  # same id twice
    [delivery] = await settled(client, 1)
    await asyncio.sleep(0.5)  # nothing else arrives
    [request] = receiver.requests
    body = Webhook(sub["secret"]).verify(request.body, request.headers)
    assert body["type"] == "eligibility.changed"
    assert body["data"]["enterprise_id"] == ent
    assert body["data"]["event_id"] == str(event.event_id)
    assert "now eligible" in body["data"]["summary"]
    assert request.headers["webhook-id"] == delivery["id"] == delivery["webhook_id"]
    # The request carries the event's trace (a child span of the consumer's when tracing
    # is configured; the same context otherwise).
    assert request.headers["traceparent"].split("-")[1] == trace_id
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [200]


async def test_a_500_then_200_is_retried_with_the_same_webhook_id(
    notify: RunningNotify, receiver: Receiver
) -> None:
    receiver.statuses = [500]
    ent = enterprise()
    client, sub = await subscribe(notify, ent, url=receiver.url)
    await produce_eligibility(notify.bootstrap, eligibility_event(ent))
    [delivery] = await settled(client, 1)
    assert delivery["status"] == "succeeded"
    assert [a["status_code"] for a in delivery["attempts"]] == [500, 200]
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery["id"]
    Webhook(sub["secret"]).verify(second.body, second.headers)


async def test_410_disables_the_endpoint_and_tells_the_owner(notify: RunningNotify) -> None:
    gone, other = await Receiver(default=410).start(), await Receiver().start()
    try:
        ent = enterprise()
        client, sub = await subscribe(notify, ent, url=gone.url)
        await subscribe(notify, ent, url=other.url, events=["policy.changed"])
        await produce_eligibility(notify.bootstrap, eligibility_event(ent))
        await eventually(lambda: other.requests, timeout=20)
        state = (await client.get(f"/v1/subscriptions/{sub['id']}")).json()
        assert state["enabled"] is False
        assert "410" in state["disabled_reason"]
        notice = other.requests[0].json()
        assert notice["type"] == "endpoint.disabled"
        assert notice["data"]["subscription_id"] == sub["id"]
        failed = await deliveries(client, subscription_id=sub["id"])
        assert [d["status"] for d in failed] == ["failed"]
    finally:
        await gone.stop()
        await other.stop()


async def test_failed_deliveries_are_kept_and_replayed(
    notify: RunningNotify, receiver: Receiver
) -> None:
    receiver.default = 400  # a permanent failure: no retries
    ent = enterprise()
    client, _ = await subscribe(notify, ent, url=receiver.url)
    await produce_eligibility(
        notify.bootstrap,
        eligibility_event(ent, policy_id="p-1"),
        eligibility_event(ent, policy_id="p-2"),
    )
    failed = await settled(client, 2, status="failed")
    assert len(failed) == 2
    receiver.default = 200
    one = await client.post(f"/v1/deliveries/{failed[0]['id']}/replay")
    assert one.status_code == 200, one.text
    again = await client.post(f"/v1/deliveries/{failed[0]['id']}/replay")
    assert again.status_code in (200, 409)
    since = failed[0]["created_at"]
    rest = await client.post("/v1/deliveries/replay", params={"since": since})
    assert rest.status_code == 200
    done = await settled(client, 2)
    assert {d["status"] for d in done} == {"succeeded"}
    ids = [r.headers["webhook-id"] for r in receiver.requests if r is not None]
    assert set(ids) == {d["id"] for d in done}


async def test_email_alerts_reach_an_smtp_sink(fresh_database: str, bootstrap_servers: str) -> None:
    from aiosmtpd.controller import Controller

    from reelpolicy_devstack.servers import free_port

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
            client, _ = await subscribe(
                notify, ent, channel="email", email="ops@example.com", locale="en"
            )
            await produce_eligibility(notify.bootstrap, eligibility_event(ent))
            [delivery] = await settled(client, 1)
            assert delivery["status"] == "succeeded"
            [mail] = inbox
            assert mail.rcpt_tos == ["ops@example.com"]
            message = email.message_from_bytes(mail.content, policy=email.policy.default)
            assert isinstance(message, email.message.EmailMessage)
            assert message["Subject"] == "Eligibility changed: p-rent"
            text = message.get_body(preferencelist=("plain",))
            assert text is not None
            assert "is now eligible for p-rent: CN¥100,000" in text.get_content()
    finally:
        controller.stop()


async def test_after_rotation_test_messages_verify_with_both_secrets(
    notify: RunningNotify, receiver: Receiver
) -> None:
    ent = enterprise()
    client, sub = await subscribe(notify, ent, url=receiver.url)
    rotated = await client.post(f"/v1/subscriptions/{sub['id']}/rotate-secret")
    assert rotated.status_code == 200
    queued = await client.post(f"/v1/subscriptions/{sub['id']}/test")
    assert queued.status_code == 202
    [delivery] = await settled(client, 1)
    assert delivery["id"] == queued.json()["delivery_id"]
    [request] = receiver.requests
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(sub["secret"]).verify(request.body, request.headers)["type"] == "test"
    assert Webhook(rotated.json()["secret"]).verify(request.body, request.headers)["type"] == "test"
