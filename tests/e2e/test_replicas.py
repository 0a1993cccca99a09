"""Replicas proven: 3 rules and 2 notify processes in their groups, one of each killed.

The same input runs twice, each on its own embedded broker and fresh databases (one per
service, shared by that service's replicas): once with one rules and one notify process
(the reference), once with three rules and two notify processes, where one rules and one
notify process are SIGKILLed between two waves of the load. The input is a policy, then
waves of ``enterprise.upserted`` versions (with redelivered copies) for enterprises
whose keys hash to every partition of the registry and eligibility topics (both are
keyed by enterprise id and have the same partition count); a platform-wide webhook
subscription receives every ``eligibility.changed`` alert.

Asserted of the replica run:

- every process held partitions and did work, from its own ``/metrics``: the
  ``reelpolicy_consumer_lag`` gauge is labelled by the partitions the member handled
  records of, and ``reelpolicy_consumer_messages_total`` counts what it processed;
- the registry records landed on every partition (``send`` reports it) and so did the
  eligibility events (read back from the topic);
- the eligibility events and the alerts equal the reference run's: compared per key
  (enterprise) as sequences of content (payload without event ids and timestamps), in
  topic order for events (a key's events share one partition). Alerts carry the event
  id of their eligibility event: their per-key order is that of their events on the
  topic (notify's delivery workers send concurrently, so arrival order at the receiver
  is not a per-key order notify promises). Copies of one event (the outbox publishes
  at least once) or one webhook (a retry keeps its ``webhook-id``) count once; two
  webhooks for one event are a duplicate alert and fail the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from reelpolicy_common.kafka import ensure_topics, key_hash
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope, EventType
from reelpolicy_devstack.servers import (
    EmbeddedBroker,
    EmbeddedPostgres,
    database_uri,
    ensure_database,
    free_port,
)
from reelpolicy_devstack.services import ServiceGroup, ServiceProcess, run
from service_harness import add_api_key, eventually, service_env
from webhook_receiver import WebhookReceiver

pytestmark = [pytest.mark.servers, pytest.mark.e2e]

PARTITIONS = topics.partitions(topics.REGISTRY)
POLICY_ID = "replicas-headcount"
MIN_EMPLOYEES = 10
ENTERPRISES = 4 * PARTITIONS
WAVES = 4
EMPLOYEES = (5, 20, None)  # ineligible, eligible, unknown (a missing field)


POLICY = {
    "id": POLICY_ID,
    "title": {"zh": "副本测试", "en": "Replicas test"},
    "issuer": {"name": "Test", "level": "municipal", "region_code": "310000"},
    "sources": [{"fact": "F-SH-01"}],
    "effective": {"from": "2024-01-01"},
    "subject": "enterprise",
    "criteria": {
        "all": [
            {"field": "enterprise.region_code", "op": "within", "value": "31"},
            {"field": "enterprise.employees", "op": "gte", "value": MIN_EMPLOYEES},
        ]
    },
    "benefits": [{"id": "grant", "kind": "subsidy", "basis": "fixed", "max_amount_cny": 100000}],
}


def policy_event() -> Envelope:
    payload = {"policy_id": POLICY_ID, "version": 1, "document": {**POLICY, "version": 1}}
    return Envelope(
        type=EventType.policy_published, producer="test", key=POLICY_ID, payload=payload
    )


def enterprise_event(eid: str, version: int, *, employees: int | None) -> Envelope:
    attributes = {
        "name": "E",
        "credit_code": "9" * 18,
        "region_code": "310110",
        "employees": employees,
        "kind": "production_company",
    }
    payload = {"enterprise_id": eid, "version": version, "attributes": attributes}
    return Envelope(type=EventType.enterprise_upserted, producer="test", key=eid, payload=payload)


def enterprise_ids() -> list[str]:
    """Ids covering every partition, the way the producer partitions (murmur2 of the key)."""
    ids = [f"rep-ent-{i:03d}" for i in range(ENTERPRISES)]
    assert topics.partitions(topics.ELIGIBILITY) == PARTITIONS
    assert {key_hash(i.encode()) % PARTITIONS for i in ids} == set(range(PARTITIONS))
    return ids


def load() -> list[list[Envelope]]:
    """The registry input in waves: every enterprise's next version, plus redelivered copies."""
    rng = random.Random(24)
    ids = enterprise_ids()
    waves = []
    for version in range(1, WAVES + 1):
        wave = [enterprise_event(e, version, employees=rng.choice(EMPLOYEES)) for e in ids]
        wave += rng.sample(wave, len(wave) // 8)  # the same records again (a redelivery)
        waves.append(wave)
    return waves


def final_status(waves: list[list[Envelope]]) -> dict[str, str]:
    """What each enterprise ends as, worked out from the input (the convergence check)."""
    last: dict[str, Any] = {}
    for wave in waves:
        for e in wave:
            last[e.key] = e.payload["attributes"]["employees"]
    return {
        k: "unknown" if n is None else "eligible" if n >= MIN_EMPLOYEES else "ineligible"
        for k, n in last.items()
    }


@dataclass
class Outcome:
    """What a run produced, per key: event contents in topic order, alert contents."""

    events: dict[str, list[str]]
    alerts: dict[str, list[str]]
    event_partitions: set[int]
    registry_partitions: set[int]
    held: dict[str, set[int]] = field(default_factory=dict)
    processed: dict[str, float] = field(default_factory=dict)


def content(payload: dict[str, Any]) -> str:
    drop = {"event_id", "occurred_at", "timestamp"}
    return json.dumps({k: v for k, v in payload.items() if k not in drop}, sort_keys=True)


async def read_eligibility(bootstrap: str) -> list[tuple[int, int, Envelope]]:
    """Every ``eligibility.changed`` of the eligibility topic now: (partition, offset,
    envelope); the topic's ``policy.impact`` records (keyed by policy) are left out."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tps = [TopicPartition(topics.ELIGIBILITY, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        found: list[tuple[int, int, Envelope]] = []
        idle = 0
        while idle < 3:
            batch = await consumer.getmany(timeout_ms=200)
            idle = 0 if batch else idle + 1
            for records in batch.values():
                for r in records:
                    envelope = Envelope.model_validate_json(r.value)
                    if envelope.type is EventType.eligibility_changed:
                        found.append((r.partition, r.offset, envelope))
        return found
    finally:
        await consumer.stop()


def scrape(proc: ServiceProcess, topic: str) -> tuple[set[int], float]:
    """The partitions of ``topic`` this process shows a lag for, and what it processed."""
    text = httpx.get(f"{proc.url}/metrics", timeout=5).text
    held: set[int] = set()
    processed = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("topic") != topic:
                continue
            if s.name == "reelpolicy_consumer_lag":
                held.add(int(s.labels["partition"]))
            elif (
                s.name == "reelpolicy_consumer_messages_total"
                and s.labels.get("outcome") == "processed"
            ):
                processed += s.value
    return held, processed


async def run_platform(
    postgres: EmbeddedPostgres,
    logs: Path,
    *,
    policy: Envelope,
    waves: list[list[Envelope]],
    rules: int,
    notify: int,
    kill: bool,
) -> Outcome:
    """Run the input (the same envelopes, so the same event ids, in every run)."""
    os.makedirs(logs)
    broker = EmbeddedBroker.start(log_file=logs / "broker.log")
    group = ServiceGroup()
    receiver = WebhookReceiver()
    tag = logs.name.replace("-", "_")
    try:
        bootstrap = broker.bootstrap_servers
        await ensure_topics(bootstrap_servers=bootstrap)
        envs = {}
        for name in ("rules", "notify"):
            db = f"rep_{name}_{tag}"
            await ensure_database(postgres.uri(), db, fresh=True)
            dsn = database_uri(postgres.uri(), db)
            env = service_env(service=name, database_url=dsn, bootstrap_servers=bootstrap)
            env |= {
                "KAFKA_CONSUMER_GROUP": f"rep-{name}",
                "NOTIFY_ALLOW_PRIVATE_TARGETS": "true",
                "NOTIFY_RETRY_SCHEDULE": "0,1,2",
                "LOG_JSON": "true",
            }
            await asyncio.to_thread(run, name, "migrate", env=env)
            envs[name] = (env, dsn)
        started = {
            name: [
                group.start(name, port=free_port(), env=envs[name][0], log_dir=logs)
                for _ in range(count)
            ]
            for name, count in (("rules", rules), ("notify", notify))
        }
        await asyncio.to_thread(group.wait_healthy, timeout=120)

        key = await add_api_key(envs["notify"][1], role="operator")
        async with httpx.AsyncClient(
            headers={"Authorization": f"Bearer {key}"}, timeout=10
        ) as http:
            created = await http.post(
                f"{started['notify'][0].url}/v1/subscriptions",
                json={"channel": "webhook", "url": receiver.url, "events": ["eligibility.changed"]},
            )
            assert created.status_code == 201, created.text

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        registry_partitions: set[int] = set()

        async def send(topic: str, *envelopes: Envelope) -> None:
            futures = [
                await producer.send(topic, e.to_bytes(), key=e.key.encode()) for e in envelopes
            ]
            for f in futures:
                metadata = await f
                if topic == topics.REGISTRY:
                    registry_partitions.add(metadata.partition)

        held: dict[str, set[int]] = defaultdict(set)
        processed: dict[str, float] = {}

        def observe() -> None:
            for name, topic in (("rules", topics.REGISTRY), ("notify", topics.ELIGIBILITY)):
                for proc in started[name]:
                    if proc.process.poll() is not None:
                        continue
                    try:
                        partitions, count = scrape(proc, topic)
                    except httpx.HTTPError:
                        continue  # busy or gone: the next look counts
                    held[proc.url] |= partitions
                    processed[proc.url] = max(processed.get(proc.url, 0.0), count)

        try:
            await send(topics.POLICY, policy)

            async def policy_stored() -> bool:
                import asyncpg

                conn = await asyncpg.connect(envs["rules"][1])
                try:
                    return bool(await conn.fetchval("SELECT count(*) FROM policies"))
                finally:
                    await conn.close()

            await eventually(policy_stored, timeout=60, interval=0.2)
            half = WAVES // 2
            for wave in waves[:half]:
                await send(topics.REGISTRY, *wave)

            def everyone_worked() -> bool:
                observe()
                procs = started["rules"] + started["notify"]
                return all(held[p.url] and processed.get(p.url) for p in procs)

            try:
                await eventually(everyone_worked, timeout=90, interval=0.5)
            except AssertionError:
                idle = {
                    p.url: (sorted(held[p.url]), processed.get(p.url))
                    for p in started["rules"] + started["notify"]
                    if not (held[p.url] and processed.get(p.url))
                }
                raise AssertionError(f"processes given no partition or no work: {idle}") from None
            if kill:
                await send(topics.REGISTRY, *waves[half])
                for name in ("rules", "notify"):
                    victim = started[name][-1].process
                    os.killpg(victim.pid, signal.SIGKILL)
                    victim.wait()
                for wave in waves[half + 1 :]:
                    await send(topics.REGISTRY, *wave)
            else:
                for wave in waves[half:]:
                    await send(topics.REGISTRY, *wave)
        finally:
            await producer.stop()

        expected_final = final_status(waves)
        records: list[tuple[int, int, Envelope]] = []

        def alert_bodies() -> dict[str, dict[str, Any]]:
            """Deliveries by webhook-id (a retry of one id counts once)."""
            return {r.headers["webhook-id"]: json.loads(r.body) for r in list(receiver.requests)}

        behind: list[str] = []  # what the last look found missing

        async def converged() -> bool:
            nonlocal records
            records = await read_eligibility(bootstrap)
            latest: dict[str, str] = {}
            for _, _, e in sorted(records, key=lambda r: (r[0], r[1])):
                if e.payload["policy_id"] == POLICY_ID:
                    latest[e.key] = e.payload["status"]
            final = {k: latest.get(k, "ineligible") for k in expected_final}
            wrong = {k: (v, expected_final[k]) for k, v in final.items() if v != expected_final[k]}
            event_ids = {str(e.event_id) for _, _, e in records}
            unalerted = event_ids - {b["data"]["event_id"] for b in alert_bodies().values()}
            behind[:] = [
                f"{len(wrong)} enterprise(s) not at their final status (now, expected):"
                f" {dict(list(wrong.items())[:5])}",
                f"{len(unalerted)} of {len(event_ids)} eligibility events not alerted",
            ]
            return not wrong and not unalerted

        try:
            await eventually(converged, timeout=120, interval=1)
        except AssertionError:
            raise AssertionError(f"not converged in 120 s: {'; '.join(behind)}") from None
        await asyncio.sleep(3)  # nothing more arrives late
        assert await converged()
        observe()

        position: dict[str, tuple[int, int]] = {}
        events: dict[str, list[str]] = defaultdict(list)
        for partition, offset, e in sorted(records, key=lambda r: (r[0], r[1])):
            if str(e.event_id) in position:
                continue  # a copy the outbox published again: same event id
            position[str(e.event_id)] = (partition, offset)
            assert key_hash(e.key.encode()) % PARTITIONS == partition
            events[e.key].append(content(e.payload))

        bodies = list(alert_bodies().values())
        by_event = defaultdict(list)
        for b in bodies:
            by_event[b["data"]["event_id"]].append(b)
        duplicates = {k: v for k, v in by_event.items() if len(v) > 1}
        assert not duplicates, f"one event alerted under several webhook ids: {duplicates}"
        alerts: dict[str, list[str]] = defaultdict(list)
        for b in sorted(bodies, key=lambda b: position[b["data"]["event_id"]]):
            alerts[b["data"]["enterprise_id"]].append(content({"type": b["type"], **b["data"]}))

        return Outcome(
            events=dict(events),
            alerts=dict(alerts),
            event_partitions={p for p, _ in position.values()},
            registry_partitions=registry_partitions,
            held={
                url: set(v) for url, v in held.items() if url in {p.url for p in group.processes}
            },
            processed=processed,
        )
    finally:
        group.stop(grace=15)
        receiver.close()
        broker.stop()


async def test_three_rules_and_two_notify_replicas_match_one_process(
    embedded_postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    policy, waves = policy_event(), load()
    reference = await run_platform(
        embedded_postgres,
        tmp_path / "single",
        policy=policy,
        waves=waves,
        rules=1,
        notify=1,
        kill=False,
    )
    replicas = await run_platform(
        embedded_postgres,
        tmp_path / "replicas",
        policy=policy,
        waves=waves,
        rules=3,
        notify=2,
        kill=True,
    )

    everything = set(range(PARTITIONS))
    assert replicas.registry_partitions == everything
    assert replicas.event_partitions == everything
    assert len(replicas.held) == 5
    for url, partitions in replicas.held.items():
        assert partitions, f"{url} was given no partition"
        assert replicas.processed[url] > 0, f"{url} processed nothing"

    # The reference itself shows the load: every status, changes back and forth.
    assert sum(map(len, reference.events.values())) > ENTERPRISES
    statuses = {json.loads(c)["status"] for cs in reference.events.values() for c in cs}
    assert statuses == {"eligible", "ineligible", "unknown"}

    assert replicas.events == reference.events
    assert replicas.alerts == reference.alerts
    assert set(reference.alerts) == set(reference.events)
