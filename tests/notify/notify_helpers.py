"""Helpers for the notify boundary tests: a local webhook receiver, the app, producing."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
from aiokafka import AIOKafkaProducer

from reelpolicy_common import topics
from reelpolicy_common.events import Envelope, EventType
from reelpolicy_common.kafka import ensure_topics
from reelpolicy_notify.config import Settings
from reelpolicy_notify.main import create_app
from support import SEALING_KEYS, SECRET_KEY, add_api_key, eventually, migrate_service


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A minimal HTTP/1.1 server on 127.0.0.1: answers from ``statuses`` (then ``default``)."""

    statuses: list[int] = field(default_factory=list)
    default: int = 200
    delay: float = 0.0
    body: bytes = b"ok"
    requests: list[Received] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    async def start(self) -> Receiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Received(headers, body))
                if self.delay:
                    await asyncio.sleep(self.delay)
                status = self.statuses.pop(0) if self.statuses else self.default
                head = f"HTTP/1.1 {status} X\r\ncontent-length: {len(self.body)}\r\n\r\n"
                writer.write(head.encode() + self.body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


def notify_settings(dsn: str, bootstrap: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": dsn,
        "kafka_bootstrap_servers": bootstrap,
        "kafka_consumer_group": f"notify-{uuid.uuid4().hex[:8]}",
        "reelpolicy_secret_key": SECRET_KEY,
        "notify_sealing_keys": SEALING_KEYS,
        "http_port": 1,
        "log_json": False,
        "consumer_max_attempts": 3,
        "consumer_retry_initial_seconds": 0.01,
        "notify_allow_private_targets": True,
        "notify_retry_schedule": "0,0.2,0.2",
        "notify_retry_jitter": 0.0,
        "notify_worker_max_idle_seconds": 1.0,
    }
    return Settings(**{**values, **overrides})


class RunningNotify:
    def __init__(self, app: Any, dsn: str, bootstrap: str) -> None:
        self.app = app
        self.dsn = dsn
        self.bootstrap = bootstrap

    def client(self, key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://notify",
            headers={"Authorization": f"Bearer {key}"},
        )

    async def key(self, *, enterprise_id: str | None = None) -> str:
        role = "company" if enterprise_id else "operator"
        return await add_api_key(self.dsn, role=role, enterprise_id=enterprise_id)


async def prepare(dsn: str, bootstrap: str) -> None:
    await migrate_service(dsn, "reelpolicy_notify.migrations", "notify")
    await ensure_topics(bootstrap_servers=bootstrap)


@contextlib.asynccontextmanager
async def running_notify(
    dsn: str, bootstrap: str, **overrides: Any
) -> AsyncIterator[RunningNotify]:
    app = create_app(notify_settings(dsn, bootstrap, **overrides))
    async with app.router.lifespan_context(app):
        yield RunningNotify(app, dsn, bootstrap)


def eligibility_event(
    enterprise_id: str,
    *,
    policy_id: str = "p-rent",
    status: str = "eligible",
    amount: int = 100_000,
) -> Envelope:
    payload = {
        "subject_type": "enterprise",
        "subject_id": enterprise_id,
        "enterprise_id": enterprise_id,
        "policy_id": policy_id,
        "policy_version": 1,
        "previous_status": None,
        "status": status,
        "previous_amount_cny": None,
        "amount_cny": amount if status == "eligible" else None,
        "cause": "test",
    }
    return Envelope(
        type=EventType.eligibility_changed, producer="rules", key=enterprise_id, payload=payload
    )


def enterprise_event(enterprise_id: str, region_code: str) -> Envelope:
    attributes = {
        "name": "Co",
        "credit_code": "91310000MA1FL0000X",
        "region_code": region_code,
        "kind": "production_company",
    }
    return Envelope(
        type=EventType.enterprise_upserted,
        producer="registry",
        key=enterprise_id,
        payload={"enterprise_id": enterprise_id, "version": 1, "attributes": attributes},
    )


def policy_event(document: dict[str, Any], version: int) -> Envelope:
    return Envelope(
        type=EventType.policy_published,
        producer="ingest",
        key=document["id"],
        payload={
            "policy_id": document["id"],
            "version": version,
            "previous_version": version - 1 or None,
            "document": document,
        },
    )


async def produce(
    bootstrap: str, topic: str, *envelopes: Envelope, headers: dict[str, str] | None = None
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for envelope in envelopes:
            await producer.send_and_wait(
                topic,
                envelope.to_bytes(),
                key=envelope.key.encode(),
                headers=[(k, v.encode()) for k, v in (headers or {}).items()],
            )
    finally:
        await producer.stop()


async def produce_eligibility(
    bootstrap: str, *envelopes: Envelope, headers: dict[str, str] | None = None
) -> None:
    await produce(bootstrap, topics.ELIGIBILITY, *envelopes, headers=headers)


async def deliveries(client: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    response = await client.get("/v1/deliveries", params=params)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def settled(client: httpx.AsyncClient, count: int, **params: Any) -> list[dict[str, Any]]:
    """Wait until ``count`` deliveries exist and none is pending or in flight."""

    async def done() -> list[dict[str, Any]] | None:
        items = await deliveries(client, **params)
        finished = [d for d in items if d["status"] in ("succeeded", "failed")]
        return items if len(items) >= count and len(finished) == len(items) else None

    result: list[dict[str, Any]] = await eventually(done, timeout=20, interval=0.1)
    return result


def now() -> datetime:
    return datetime.now(UTC)
