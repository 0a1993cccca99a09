"""Supervised background work: restarted when it raises, named by /healthz when it is
down or stuck, its heartbeat on /metrics (real runtime, PostgreSQL and broker)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY

from reelpolicy_common.db.migrations import apply_migrations, common_migrations
from reelpolicy_common.http import create_service_app
from reelpolicy_common.kafka import ensure_topics
from reelpolicy_common.runtime import ServiceRuntime
from reelpolicy_common.settings import ServiceSettings
from reelpolicy_common.supervisor import heartbeat
from service_harness import eventually, unique_topic
from tcp_fault_proxy import postgres_proxy, through

pytestmark = pytest.mark.servers

HEARTBEAT = "reelpolicy_task_heartbeat_timestamp_seconds"


def runtime_for(dsn: str, bootstrap: str, **overrides: Any) -> ServiceRuntime:
    values: dict[str, Any] = {
        "service_name": "probe",
        "database_url": dsn,
        "kafka_bootstrap_servers": bootstrap,
        "kafka_consumer_group": f"probe-{uuid.uuid4().hex[:8]}",
        "http_port": 1,
        "log_json": False,
        "task_restart_initial_seconds": 0.05,
        "task_restart_max_seconds": 0.2,
        **overrides,
    }
    return ServiceRuntime(ServiceSettings(**values))


@asynccontextmanager
async def serving(runtime: ServiceRuntime) -> AsyncIterator[httpx.AsyncClient]:
    conn = await asyncpg.connect(runtime.settings.database_url)
    try:
        await apply_migrations(conn, common_migrations())  # the relay's outbox table
    finally:
        await conn.close()
    app: FastAPI = create_service_app(runtime, title="probe", description="probe", routers=[])
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as c,
    ):
        yield c


async def health(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]]:
    response = await client.get("/healthz")
    body: dict[str, Any] = response.json()
    return response.status_code, body


def task_name() -> str:
    return f"probe-task-{uuid.uuid4().hex[:6]}"


async def test_a_task_that_raises_is_restarted_and_its_heartbeat_moves_on(
    fresh_database: str, bootstrap_servers: str
) -> None:
    name = task_name()
    runs: list[float | None] = []

    async def flaky() -> None:
        heartbeat(within=5)
        runs.append(REGISTRY.get_sample_value(HEARTBEAT, {"task": name}))
        if len(runs) == 1:
            raise RuntimeError("an exception nobody expected")
        while True:
            await asyncio.sleep(0.05)
            heartbeat(within=5)

    runtime = runtime_for(fresh_database, bootstrap_servers)
    runtime.add_background(flaky, name=name)
    async with serving(runtime) as client:
        await eventually(lambda: len(runs) >= 2, timeout=10)
        first_beat = runs[0]
        assert first_beat is not None

        async def moved_on() -> bool:
            now = REGISTRY.get_sample_value(HEARTBEAT, {"task": name})
            return now is not None and now > first_beat

        await eventually(moved_on, timeout=5)
        restarts = REGISTRY.get_sample_value("reelpolicy_task_restarts_total", {"task": name})
        assert restarts == 1
        status, body = await eventually(lambda: _healthy_within(client), timeout=30, interval=0.2)
        assert (status, body) == (200, {"status": "ok"})
        metrics = (await client.get("/metrics")).text
        assert f'{HEARTBEAT}{{task="{name}"}}' in metrics
        assert f'{HEARTBEAT}{{task="outbox-relay"}}' in metrics
        assert f'reelpolicy_task_restarts_total{{task="{name}"}} 1.0' in metrics


async def _healthy_within(client: httpx.AsyncClient) -> tuple[int, dict[str, Any]] | None:
    status, body = await health(client)
    return (status, body) if status == 200 else None


async def _unhealthy(client: httpx.AsyncClient, name: str) -> str | None:
    status, body = await health(client)
    if status != 503:
        return None
    problem: str | None = body["problems"].get(name)
    return problem


@pytest.mark.parametrize(
    ("behaviour", "expected"),
    [("returns", "returned"), ("stops beating", "no heartbeat")],
)
async def test_a_task_that_is_gone_or_stuck_makes_healthz_answer_503_naming_it(
    fresh_database: str, bootstrap_servers: str, behaviour: str, expected: str
) -> None:
    name = task_name()

    async def returns() -> None:
        heartbeat(within=60)

    async def stops_beating() -> None:
        heartbeat(within=0.2)
        await asyncio.Event().wait()  # a loop stuck on something that never comes

    tasks: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {
        "returns": returns,
        "stops beating": stops_beating,
    }
    runtime = runtime_for(fresh_database, bootstrap_servers, task_heartbeat_grace_seconds=0.3)
    runtime.add_background(tasks[behaviour], name=name)
    async with serving(runtime) as client:
        problem = await eventually(lambda: _unhealthy(client, name), timeout=10, interval=0.1)
        assert expected in problem


async def test_a_consumer_whose_consume_task_stopped_makes_healthz_answer_503(
    fresh_database: str, bootstrap_servers: str
) -> None:
    topic = unique_topic("probe")
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topic])
    runtime = runtime_for(fresh_database, bootstrap_servers)
    subscriber = runtime.broker.subscriber(
        topic, group_id=runtime.settings.consumer_group, title=f"probe:{topic}"
    )

    @subscriber
    async def handle(body: Any) -> None:
        return None

    async with serving(runtime) as client:
        assert await _unhealthy(client, f"consumer:probe:{topic}") is None
        # The consume loop returns for good once its Kafka consumer has stopped (as when
        # aiokafka gives up on it); FastStream does not start it again.
        assert subscriber.consumer is not None
        await subscriber.consumer.stop()
        problem = await eventually(
            lambda: _unhealthy(client, f"consumer:probe:{topic}"), timeout=10, interval=0.1
        )
        assert "consume task(s) stopped" in problem


async def test_healthz_names_a_dead_database_without_its_error_text(
    fresh_database: str, bootstrap_servers: str, caplog: pytest.LogCaptureFixture
) -> None:
    proxy = postgres_proxy(fresh_database)
    try:
        dsn = through(proxy, fresh_database)
        runtime = runtime_for(dsn, bootstrap_servers)
        async with serving(runtime) as client:
            assert await health(client) == (200, {"status": "ok"})
            proxy.stop()  # the database's address now refuses connections
            status, body = await eventually(
                lambda: _unhealthy_with(client, "database"), timeout=10, interval=0.1
            )
            assert status == 503
            assert body["problems"]["database"] == "unreachable"
            answered = json.dumps(body)
            user = urlsplit(dsn).username
            assert user
            assert user not in answered
            for leak in (str(proxy.port), "127.0.0.1", "Error", "Connect call failed"):
                assert leak not in answered, (leak, answered)

            async def logged_with_address() -> bool:  # a new connection's error names it
                status, body = await health(client)
                assert status == 503
                assert str(proxy.port) not in json.dumps(body)
                return any(
                    m.startswith("unhealthy") and "database: " in m and str(proxy.port) in m
                    for m in (r.getMessage() for r in caplog.records)
                )

            await eventually(logged_with_address, timeout=10, interval=0.1)
    finally:
        proxy.stop()


async def _unhealthy_with(client: httpx.AsyncClient, name: str) -> tuple[int, Any] | None:
    status, body = await health(client)
    return (status, body) if name in body.get("problems", {}) else None
