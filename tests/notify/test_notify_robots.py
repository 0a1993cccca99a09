"""Group-robot channels (WeCom, DingTalk, Feishu) at the boundary: events on the real
broker -> the platform's markdown message, signed as the platform checks it, with the
webhook path's retries, delivery log, disabling and replay."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from notify_app import RunningNotify, prepare, running_notify, settled
from notify_events import eligibility_event, produce_eligibility
from robot_receivers import RobotReceiver

from reelpolicy_notify.adapters.secret_box import new_sealing_key
from service_harness import eventually

pytestmark = pytest.mark.servers

SECRETS = {
    "wecom": None,
    "dingtalk": "SEC0f3c1b2a9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1",
    "feishu": "qRsTuVwXyZ0123456789ab",
}


@pytest.fixture
async def notify(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[RunningNotify]:
    await prepare(fresh_database, bootstrap_servers)
    async with running_notify(fresh_database, bootstrap_servers) as running:
        yield running


@pytest.fixture
async def robots() -> AsyncIterator[dict[str, RobotReceiver]]:
    started = {p: await RobotReceiver(p, secret=s).start() for p, s in SECRETS.items()}
    yield started
    for receiver in started.values():
        await receiver.stop()


def enterprise() -> str:
    return f"ent-{uuid.uuid4().hex[:10]}"


async def subscribe(
    notify: RunningNotify, enterprise_id: str, robot: RobotReceiver, **body: Any
) -> tuple[httpx.AsyncClient, dict[str, Any]]:
    client = notify.client(await notify.key(enterprise_id=enterprise_id))
    fields: dict[str, Any] = {
        "channel": robot.platform,
        "url": robot.url,
        "events": ["eligibility.changed"],
    }
    if robot.secret is not None:
        fields["secret"] = robot.secret
    response = await client.post("/v1/subscriptions", json={**fields, **body})
    assert response.status_code == 201, response.text
    return client, response.json()


def markdown_of(platform: str, message: dict[str, Any]) -> str:
    """The text a member of the group reads, from the platform's documented format."""
    if platform == "wecom":
        assert message["msgtype"] == "markdown"
        return str(message["markdown"]["content"])
    if platform == "dingtalk":
        assert message["msgtype"] == "markdown"
        assert message["markdown"]["title"]
        return str(message["markdown"]["text"])
    assert message["msg_type"] == "interactive"
    card = message["card"]
    assert card["header"]["title"]["tag"] == "plain_text"
    assert card["header"]["title"]["content"]
    [element] = card["elements"]
    assert element["tag"] == "markdown"
    return str(element["content"])


@pytest.mark.parametrize("platform", ["wecom", "dingtalk", "feishu"])
async def test_each_robot_receives_an_eligibility_alert_signed_as_its_platform_checks(
    notify: RunningNotify, robots: dict[str, RobotReceiver], platform: str
) -> None:
    robot = robots[platform]
    ent = enterprise()
    client, sub = await subscribe(notify, ent, robot)
    assert sub["secret"] is None  # a robot's secret is never returned, not even now
    await produce_eligibility(notify.bootstrap, eligibility_event(ent))
    [delivery] = await settled(client, 1)
    assert delivery["status"] == "succeeded", delivery
    assert robot.refused_signatures == 0
    [call] = robot.calls
    text = markdown_of(platform, call.json())
    # In the subscription's locale (zh-CN by default), the title once, as a heading or
    # as the card's header.
    assert "现已符合" in text
    assert text.count("资格变化") == (0 if platform == "feishu" else 1)
    if platform == "dingtalk":  # the robot's own query stays, the signature is added
        assert call.query["access_token"] == "abc123"
        assert {"timestamp", "sign"} <= set(call.query)
    if platform == "feishu":
        assert {"timestamp", "sign"} <= set(call.json())
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] == 200
    assert '"errcode": 0' in attempt["response_body"] or '"code": 0' in attempt["response_body"]
    shown = (await client.get(f"/v1/subscriptions/{sub['id']}")).json()
    assert "secret" not in shown


@pytest.mark.parametrize(("platform", "code"), [("dingtalk", 130101), ("feishu", 11232)])
async def test_a_rate_limited_robot_is_retried_and_its_answer_logged(
    notify: RunningNotify, robots: dict[str, RobotReceiver], platform: str, code: int
) -> None:
    robot = robots[platform]
    robot.codes = [code]
    ent = enterprise()
    client, _ = await subscribe(notify, ent, robot)
    await produce_eligibility(notify.bootstrap, eligibility_event(ent))
    [delivery] = await settled(client, 1)
    assert delivery["status"] == "succeeded", delivery
    first, second = delivery["attempts"]
    assert first["status_code"] == 200
    assert f"code {code}" in first["error"]
    assert str(code) in first["response_body"]
    assert second["error"] is None
    assert len(robot.calls) == 2


async def test_a_wrong_secret_fails_for_good_then_replay_delivers(
    notify: RunningNotify, robots: dict[str, RobotReceiver]
) -> None:
    robot = robots["dingtalk"]
    ent = enterprise()
    client, sub = await subscribe(notify, ent, robot, secret="SEC-not-the-robots-secret")
    await produce_eligibility(notify.bootstrap, eligibility_event(ent))
    [failed] = await settled(client, 1)
    assert failed["status"] == "failed"
    [attempt] = failed["attempts"]  # refused for a bad signature: not retried
    assert "code 310000" in attempt["error"]
    assert "sign not match" in attempt["response_body"]
    assert robot.refused_signatures == 1

    fixed = await client.patch(f"/v1/subscriptions/{sub['id']}", json={"secret": robot.secret})
    assert fixed.status_code == 200, fixed.text
    replayed = await client.post(f"/v1/deliveries/{failed['id']}/replay")
    assert replayed.status_code == 200, replayed.text
    [delivery] = await settled(client, 1)
    assert delivery["status"] == "succeeded"
    assert robot.refused_signatures == 1
    assert len(robot.calls) == 2


async def test_a_robot_refusing_everything_is_disabled_and_its_owner_told(
    fresh_database: str, bootstrap_servers: str, robots: dict[str, RobotReceiver]
) -> None:
    await prepare(fresh_database, bootstrap_servers)
    refusing, other = robots["wecom"], robots["feishu"]
    refusing.codes = [45009] * 10  # rate limited on every attempt
    async with running_notify(
        fresh_database, bootstrap_servers, notify_disable_after_seconds=0.1
    ) as notify:
        ent = enterprise()
        client, sub = await subscribe(notify, ent, refusing)
        await subscribe(notify, ent, other, events=["policy.changed"], locale="en")
        await produce_eligibility(notify.bootstrap, eligibility_event(ent))
        await eventually(lambda: other.calls, timeout=20)
        state = (await client.get(f"/v1/subscriptions/{sub['id']}")).json()
        assert state["enabled"] is False
        assert "every attempt failed" in state["disabled_reason"]
        assert len(refusing.calls) >= 2  # retried before it was disabled
        notice = markdown_of("feishu", other.calls[0].json())
        assert f"the WeCom robot at http://127.0.0.1:{refusing.port} was disabled" in notice
        assert "key=" not in notice  # the robot's URL is its credential: not repeated
        assert (await client.get("/v1/deliveries", params={"subscription_id": sub["id"]})).json()[
            "items"
        ][0]["status"] == "failed"


async def test_a_test_message_reaches_the_robot(
    notify: RunningNotify, robots: dict[str, RobotReceiver]
) -> None:
    robot = robots["feishu"]
    client, sub = await subscribe(notify, enterprise(), robot, locale="en")
    queued = await client.post(f"/v1/subscriptions/{sub['id']}/test")
    assert queued.status_code == 202
    [delivery] = await settled(client, 1)
    assert delivery["status"] == "succeeded"
    assert "This is a test message" in markdown_of("feishu", robot.calls[0].json())


async def test_robot_subscriptions_are_checked_field_by_field(
    notify: RunningNotify, robots: dict[str, RobotReceiver]
) -> None:
    ent = enterprise()
    client = notify.client(await notify.key(enterprise_id=ent))
    events = ["eligibility.changed"]
    dingtalk = robots["dingtalk"].url

    async def problem(body: dict[str, Any], status: int) -> str:
        response = await client.post("/v1/subscriptions", json={"events": events, **body})
        assert response.status_code == status, response.text
        return str(response.json()["errors"][0]["field"])

    assert await problem({"channel": "dingtalk", "url": dingtalk}, 422) == "secret"
    assert await problem({"channel": "feishu", "url": robots["feishu"].url}, 422) == "secret"
    assert await problem({"channel": "feishu", "secret": "s"}, 422) == "url"
    assert await problem({"channel": "dingtalk", "url": dingtalk, "secret": ""}, 422) == "secret"
    assert await problem({"channel": "wecom", "url": robots["wecom"].url, "secret": "s"}, 422) == (
        "secret"
    )
    assert await problem({"channel": "webhook", "url": dingtalk, "secret": "s"}, 422) == "secret"
    unsafe = {"channel": "dingtalk", "url": "https://robot.example.invalid/send", "secret": "s"}
    assert await problem(unsafe, 400) == "url"
    credentials = {"channel": "wecom", "url": "http://user:pw@127.0.0.1:1/send"}
    assert await problem(credentials, 400) == "url"

    _, wecom = await subscribe(notify, ent, robots["wecom"])
    patched = await client.patch(f"/v1/subscriptions/{wecom['id']}", json={"secret": "s"})
    assert patched.status_code == 400
    assert patched.json()["errors"][0]["field"] == "secret"
    _, signed = await subscribe(notify, ent, robots["dingtalk"])
    rotated = await client.post(f"/v1/subscriptions/{signed['id']}/rotate-secret")
    assert rotated.status_code == 409
    assert rotated.json()["errors"][0]["field"] == "secret"


async def test_a_robot_secret_that_does_not_open_is_not_sent_until_given_again(
    fresh_database: str, bootstrap_servers: str, robots: dict[str, RobotReceiver]
) -> None:
    await prepare(fresh_database, bootstrap_servers)
    robot = robots["dingtalk"]
    async with running_notify(fresh_database, bootstrap_servers) as notify:
        ent = enterprise()
        await subscribe(notify, ent, robot)

    # the sealing ring lost the key the secret was sealed under
    other_ring = {"notify_sealing_keys": new_sealing_key("other")}
    async with running_notify(fresh_database, bootstrap_servers, **other_ring) as notify:
        client = notify.client(await notify.key(enterprise_id=ent))
        await produce_eligibility(notify.bootstrap, eligibility_event(ent))
        [failed] = await settled(client, 1)
        assert failed["status"] == "failed"
        assert "PATCH secret" in failed["last_error"]
        assert robot.calls == []  # never sent unsigned

        [sub] = (await client.get("/v1/subscriptions")).json()["items"]
        fixed = await client.patch(f"/v1/subscriptions/{sub['id']}", json={"secret": robot.secret})
        assert fixed.status_code == 200, fixed.text
        assert (await client.post(f"/v1/deliveries/{failed['id']}/replay")).status_code == 200
        [delivery] = await settled(client, 1)
        assert delivery["status"] == "succeeded"
        assert robot.refused_signatures == 0
