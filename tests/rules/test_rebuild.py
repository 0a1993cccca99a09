"""``reelpolicy-rules rebuild`` on the real embedded PostgreSQL and broker.

Each test gets a broker of its own: rebuild replays the whole policy and registry
topics, so exact assertions on what it rebuilt and emitted need topics that hold only
this test's events (the module's shared broker would also hold the other test's).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from rules_helpers import (
    Collector,
    collecting,
    enterprise_event,
    enterprise_policy,
    policy_event,
    production_event,
    production_policy,
    revoke_event,
    uid,
)

from reelpolicy_common.db.pool import create_pool
from reelpolicy_common.kafka import ensure_topics
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import (
    Envelope,
    EventType,
    new_snapshot_id,
    snapshot_headers,
    snapshot_marker,
)
from reelpolicy_datagen.registry_rows import credit_code
from reelpolicy_devstack.servers import (
    EmbeddedBroker,
    EmbeddedPostgres,
    database_uri,
    ensure_database,
)
from reelpolicy_ingest import handlers as ingest_handlers
from reelpolicy_ingest.adapters.postgres import IngestUnitOfWork
from reelpolicy_ingest.cli import main as ingest_main
from reelpolicy_ingest.config import Settings as IngestSettings
from reelpolicy_ingest.main import create_app as create_ingest_app
from reelpolicy_policy import load_policy_text
from reelpolicy_registry.adapters.postgres import RegistryUnitOfWork
from reelpolicy_registry.cli import main as registry_main
from reelpolicy_registry.config import Settings as RegistrySettings
from reelpolicy_registry.handlers import records as registry_handlers
from reelpolicy_registry.main import create_app as create_registry_app
from reelpolicy_rules.adapters.consumer_groups import group_ids
from reelpolicy_rules.bootstrap import bootstrap
from reelpolicy_rules.cli import main as rules_main
from reelpolicy_rules.cli import rebuild
from reelpolicy_rules.config import Settings
from reelpolicy_rules.handlers.rebuild import REBUILD_CAUSE, SnapshotError
from reelpolicy_rules.main import create_app
from service_harness import eventually, migrate_service, service_env, settings_for

pytestmark = pytest.mark.servers
CHANGED = EventType.eligibility_changed
Rows = dict[Any, tuple[Any, ...]]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    server = EmbeddedBroker.start(log_file=tmp_path / "tansu.log")
    try:
        yield server.bootstrap_servers
    finally:
        server.stop()


async def send(
    bootstrap: str, topic: str, *records: Envelope | bytes, snapshot: uuid.UUID | None = None
) -> list[Any]:
    """Produce ``records`` (an ``Envelope`` keyed by its key) in record batches of several
    records where they share a partition, as the outbox relay does; their metadata.
    With ``snapshot``, each is tagged as a record of that snapshot (as a republish does).

    (Tansu answers ``ListOffsets`` with the last batch's base offset + 1: with one record
    per batch it would look right.)
    """
    headers = [(k, v.encode()) for k, v in snapshot_headers(snapshot).items()] if snapshot else []
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=100)
    await producer.start()
    try:
        sent = []
        for r in records:
            value, key = (r.to_bytes(), r.key.encode()) if isinstance(r, Envelope) else (r, b"x")
            sent.append(await producer.send(topic, value, key=key, headers=headers))
        return [await f for f in sent]
    finally:
        await producer.stop()


async def send_snapshot(bootstrap: str, topic: str, *records: Envelope | bytes) -> list[Any]:
    """Produce ``records`` as one complete snapshot of ``topic``: tagged, then the marker."""
    snapshot_id = new_snapshot_id()
    sent = await send(bootstrap, topic, *records, snapshot=snapshot_id)
    marker = snapshot_marker(
        snapshot_id=snapshot_id, source="test", topic=topic, records=len(records)
    )
    await send(bootstrap, topics.SNAPSHOTS, marker)
    return sent


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[None]:
    """The rules service in this process (consumers, outbox relay, scheduler)."""
    app = create_app(rules=bootstrap(settings))
    async with app.router.lifespan_context(app):
        yield


async def query(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def projection(dsn: str) -> dict[str, Rows]:
    """The projection tables, without their change seqs (rebuild renumbers those)."""
    policies = await query(dsn, "SELECT policy_id, version, revoked, document FROM policies")
    enterprises = await query(
        dsn, "SELECT enterprise_id, version, deleted, attributes FROM enterprises"
    )
    productions = await query(
        dsn, "SELECT production_id, enterprise_id, version, deleted, attributes FROM productions"
    )
    return {
        "policies": {
            r["policy_id"]: (r["version"], r["revoked"], json.loads(r["document"]))
            for r in policies
        },
        "enterprises": {
            r["enterprise_id"]: (r["version"], r["deleted"], json.loads(r["attributes"]))
            for r in enterprises
        },
        "productions": {
            r["production_id"]: (
                r["enterprise_id"],
                r["version"],
                r["deleted"],
                json.loads(r["attributes"]),
            )
            for r in productions
        },
    }


async def results(dsn: str) -> Rows:
    """Stored results; ``updated_at`` shows whether a row was rewritten."""
    rows = await query(
        dsn,
        "SELECT subject_id, policy_id, subject_type, enterprise_id, policy_version, status,"
        " amount_cny, missing_fields, updated_at FROM results",
    )
    return {
        (r["subject_id"], r["policy_id"]): (
            r["subject_type"],
            r["enterprise_id"],
            r["policy_version"],
            r["status"],
            r["amount_cny"],
            tuple(r["missing_fields"]),
            r["updated_at"],
        )
        for r in rows
    }


async def outbox_after(dsn: str, seq: int) -> list[tuple[str, dict[str, Any] | None]]:
    """The outbox rows after ``seq``: (topic, value; None for a tombstone)."""
    rows = await query(dsn, "SELECT topic, value FROM outbox WHERE seq > $1 ORDER BY seq", seq)
    return [
        (r["topic"], None if r["value"] is None else json.loads(bytes(r["value"]))) for r in rows
    ]


async def processed(dsn: str, events: list[Envelope]) -> set[str]:
    """Which of ``events`` the service recorded as processed (by event id)."""
    rows = await query(
        dsn,
        "SELECT event_id FROM processed_events WHERE event_id = ANY($1::uuid[])",
        [e.event_id for e in events],
    )
    return {str(r["event_id"]) for r in rows}


async def all_processed(dsn: str, events: list[Envelope]) -> bool:
    return len(await processed(dsn, events)) == len({e.event_id for e in events})


async def history(dsn: str) -> set[tuple[Any, ...]]:
    """Every emitted change: (subject, policy, version, previous, status, amount, cause, event id)."""
    rows = await query(
        dsn,
        "SELECT subject_id, policy_id, policy_version, previous_status, status, amount_cny,"
        " cause, event_id::text FROM result_history",
    )
    return {tuple(r.values()) for r in rows}


def published(seen: Collector) -> set[str]:
    return {str(e.event_id) for e in seen.of(CHANGED)}


async def test_rebuild_restores_the_projection_keeps_results_and_moves_the_groups(
    fresh_database: str, broker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = fresh_database
    await ensure_topics(bootstrap_servers=broker)
    await migrate_service(dsn, "reelpolicy_rules.migrations", "rules")
    settings = settings_for(Settings, database_url=dsn, bootstrap_servers=broker)
    p_ent, p_prod, p_old, p_missed = uid("rb-e"), uid("rb-p"), uid("rb-o"), uid("rb-m")
    e1, e2, prod1 = uid("e"), uid("e"), uid("p")

    # 1. The service builds its projection and results from these events, then stops.
    policy_events = [
        policy_event(enterprise_policy(p_ent), 1),
        policy_event(production_policy(p_prod), 1),
        policy_event(enterprise_policy(p_old), 1),
        policy_event(enterprise_policy(p_missed), 1),
        policy_event(enterprise_policy(p_ent, title="Edited"), 2),
        revoke_event(p_old, 1),
    ]
    registry_events = [
        enterprise_event(e1, 1, employees=20),
        enterprise_event(e2, 1, employees=5),
        production_event(prod1, e1, 1),
        enterprise_event(e1, 2, employees=30),
    ]
    async with collecting(broker) as seen:
        async with serving(settings):
            await send_snapshot(broker, topics.POLICY, *policy_events)
            await send_snapshot(broker, topics.REGISTRY, *registry_events)
            everything = policy_events + registry_events
            await eventually(lambda: all_processed(dsn, everything), timeout=60, interval=0.2)
        before, kept, emitted = await projection(dsn), await results(dsn), await history(dsn)
        assert {k: v[3:5] for k, v in kept.items()} == {
            (e1, p_ent): ("eligible", 100000),
            (e1, p_missed): ("eligible", 100000),
            (prod1, p_prod): ("eligible", 100000),
        }
        assert before["policies"][p_ent][0] == 2
        assert before["policies"][p_old][1] is True
        assert before["enterprises"][e1][0] == 2
        assert len(before["productions"]) == 1
        seq = (await query(dsn, "SELECT coalesce(max(seq), 0) AS s FROM outbox"))[0]["s"]

        # 2. While it is stopped: an update and a revocation it never sees, and a
        # projection gone wrong (rows changed, deleted, invented).
        e2_update = enterprise_event(e2, 2, employees=50)
        missed_revoke = revoke_event(p_missed, 1)
        await send(broker, topics.REGISTRY, e2_update)
        await send(broker, topics.POLICY, missed_revoke)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "UPDATE enterprises SET version = version + 10,"
                " attributes = jsonb_set(attributes, '{employees}', '1')"
            )
            await conn.execute("DELETE FROM productions")
            await conn.execute("UPDATE policies SET revoked = NOT revoked, version = 7")
            await conn.execute(
                "INSERT INTO enterprises (enterprise_id, version, attributes)"
                " VALUES ('ghost', 1, '{}')"
            )
        finally:
            await conn.close()

        # 3. Rebuild.
        assert await rebuild(settings) == 0
        out = capsys.readouterr().out
        assert "from 12 record(s) (0 skipped); 2 result(s) differed" in out
        assert "'joined'" in out  # Tansu refuses a standalone commit to a group that had members

        # the projection is the service's, plus the two events it missed
        expected = {table: dict(rows) for table, rows in before.items()}
        _, deleted, attributes = expected["enterprises"][e2]
        expected["enterprises"][e2] = (2, deleted, {**attributes, "employees": 50})
        version, _, document = expected["policies"][p_missed]
        expected["policies"][p_missed] = (version, True, document)
        assert await projection(dsn) == expected

        # results kept (the unchanged ones not even rewritten); only real differences
        now = await results(dsn)
        assert {k: v for k, v in now.items() if k != (e2, p_ent)} == {
            k: v for k, v in kept.items() if k != (e1, p_missed)
        }
        assert now[(e2, p_ent)][:6] == ("enterprise", e2, 2, "eligible", 100000, ())
        rebuilt = await history(dsn) - emitted
        assert {r[:7] for r in rebuilt} == {
            (e2, p_ent, 2, "ineligible", "eligible", 100000, REBUILD_CAUSE),
            (e1, p_missed, 1, "eligible", "ineligible", None, REBUILD_CAUSE),
        }
        queued = await outbox_after(dsn, seq)
        assert {(t, v["type"], v["event_id"]) for t, v in queued if t == topics.ELIGIBILITY} == {
            (topics.ELIGIBILITY, CHANGED.value, r[7]) for r in rebuilt
        }
        # and the state topic's current results: e2's new one, e1's withdrawn (tombstone)
        states = [v for t, v in queued if t == topics.ELIGIBILITY_STATE]
        assert len(states) == 2
        assert states.count(None) == 1
        assert [(v["payload"]["subject_id"], v["payload"]["status"]) for v in states if v] == [
            (e2, "eligible")
        ]

        # 4. The restarted service publishes them and handles new events, but not again
        # what rebuild read: the groups were moved past it.
        async with serving(settings):
            e2_again = enterprise_event(e2, 3, employees=5)  # same keys: same partitions
            await send(broker, topics.REGISTRY, e2_again)
            await eventually(lambda: seen.of(CHANGED, cause=str(e2_again.event_id)), timeout=60)
            republished = policy_event(enterprise_policy(p_missed), 2)
            await send(broker, topics.POLICY, republished)
            await eventually(lambda: seen.of(CHANGED, cause=str(republished.event_id)), timeout=60)
            assert await processed(dsn, [e2_update, missed_revoke]) == set()
            final = await history(dsn)
            await eventually(lambda: published(seen) == {r[7] for r in final}, timeout=30)

    # every change emitted once: the first run's, rebuild's two, and the sentinels' two
    assert {r[:7] for r in final - emitted - rebuilt} == {
        (e2, p_ent, 2, "eligible", "ineligible", None, str(e2_again.event_id)),
        (e1, p_missed, 2, "ineligible", "eligible", 100000, str(republished.event_id)),
    }


async def test_rebuild_before_the_first_start_skips_bad_records_and_commits_the_ends(
    fresh_database: str, broker: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Groups nobody has joined yet take a standalone commit; records the consumers
    would dead-letter are skipped; each group ends exactly at its partitions' ends."""
    dsn = fresh_database
    await ensure_topics(bootstrap_servers=broker)
    await migrate_service(dsn, "reelpolicy_rules.migrations", "rules")
    settings = settings_for(Settings, database_url=dsn, bootstrap_servers=broker)
    pid, bad = uid("rb-n"), uid("rb-bad")
    e1, e2, e3, prod = uid("e"), uid("e"), uid("e"), uid("p")
    gone = Envelope(
        type=EventType.enterprise_deleted,
        producer="test",
        key=e3,
        payload={**enterprise_event(e3, 2).payload, "deleted": True},
    )
    sent = await send_snapshot(
        broker,
        topics.POLICY,
        policy_event(enterprise_policy(pid), 1),
        policy_event({**enterprise_policy(bad), "subject": "planet"}, 1),  # invalid document
    )
    sent += await send_snapshot(
        broker,
        topics.REGISTRY,
        enterprise_event(e1, 1),
        enterprise_event(e2, 1, employees=5),
        enterprise_event(e3, 1),
        production_event(prod, e3, 1),
        gone,
    )
    sent += await send(broker, topics.REGISTRY, b"not an envelope")

    assert await rebuild(settings) == 0
    out = capsys.readouterr().out
    assert "from 6 record(s) (2 skipped); 1 result(s) differed" in out
    assert out.count("'standalone'") == 2

    got = await projection(dsn)
    assert {k: v[:2] for k, v in got["policies"].items()} == {pid: (1, False)}
    assert {k: v[:2] for k, v in got["enterprises"].items()} == {
        e1: (1, False),
        e2: (1, False),
        e3: (2, True),
    }
    assert {k: v[:3] for k, v in got["productions"].items()} == {prod: (e3, 1, False)}
    assert {k: v[3:5] for k, v in (await results(dsn)).items()} == {(e1, pid): ("eligible", 100000)}
    assert {r[:7] for r in await history(dsn)} == {
        (e1, pid, 1, "ineligible", "eligible", 100000, REBUILD_CAUSE)
    }

    ends: dict[TopicPartition, int] = {}
    for meta in sent:
        tp = TopicPartition(meta.topic, meta.partition)
        ends[tp] = max(ends.get(tp, 0), meta.offset + 1)
    for topic, group in group_ids(settings.consumer_group).items():
        consumer = AIOKafkaConsumer(bootstrap_servers=broker, group_id=group)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, i) for i in range(topics.partitions(topic))]
            consumer.assign(tps)
            committed = {tp: await consumer.committed(tp) for tp in tps}
        finally:
            await consumer.stop()
        assert committed == {tp: ends.get(tp, 0) for tp in tps}


async def test_rebuild_refuses_an_incomplete_snapshot_and_changes_nothing(
    fresh_database: str, broker: str
) -> None:
    """A marker whose records are not all on the topic (retention removed some, or the
    relay has not published them yet) is not trusted: nothing is rebuilt or moved."""
    dsn = fresh_database
    await ensure_topics(bootstrap_servers=broker)
    await migrate_service(dsn, "reelpolicy_rules.migrations", "rules")
    settings = settings_for(Settings, database_url=dsn, bootstrap_servers=broker)
    pid, e1 = uid("rb-i"), uid("e")
    await send_snapshot(broker, topics.POLICY, policy_event(enterprise_policy(pid), 1))
    lost = new_snapshot_id()
    await send(broker, topics.REGISTRY, enterprise_event(e1, 1), snapshot=lost)
    marker = snapshot_marker(snapshot_id=lost, source="test", topic=topics.REGISTRY, records=2)
    await send(broker, topics.SNAPSHOTS, marker)

    with pytest.raises(SnapshotError, match=rf"snapshot {lost} of {topics.REGISTRY}.* 1 of its 2"):
        await rebuild(settings)
    assert await projection(dsn) == {"policies": {}, "enterprises": {}, "productions": {}}
    assert await results(dsn) == {}


# ---------------------------------------------------------------- lost retention


async def service_databases(admin_uri: str) -> dict[str, str]:
    """A fresh, migrated database for each of registry, ingest and rules; their DSNs."""
    dsns = {}
    for name in ("registry", "ingest", "rules"):
        database = f"rb_{name}_{uuid.uuid4().hex[:8]}"
        await ensure_database(admin_uri, database)
        dsns[name] = database_uri(admin_uri, database)
        await migrate_service(dsns[name], f"reelpolicy_{name}.migrations", name)
    return dsns


@contextlib.asynccontextmanager
async def sources_serving(dsns: dict[str, str], bootstrap: str) -> AsyncIterator[None]:
    """registry and ingest in this process (their outbox relays publish to ``bootstrap``)."""
    async with contextlib.AsyncExitStack() as stack:
        for name, settings_cls, factory in (
            ("registry", RegistrySettings, create_registry_app),
            ("ingest", IngestSettings, create_ingest_app),
        ):
            app = factory(
                settings_for(settings_cls, database_url=dsns[name], bootstrap_servers=bootstrap)
            )
            await stack.enter_async_context(app.router.lifespan_context(app))
        yield


async def unsent(dsn: str) -> int:
    return int((await query(dsn, "SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL"))[0]["n"])


async def drained(*dsns: str) -> bool:
    return all([await unsent(dsn) == 0 for dsn in dsns])


async def command(
    main: Callable[[list[str]], int],
    argv: list[str],
    *,
    service: str,
    dsn: str,
    bootstrap: str,
    group: str,
    monkeypatch: pytest.MonkeyPatch,
) -> int:
    """A service's CLI command as an operator runs it (its own event loop, in a thread)."""
    env = service_env(service=service, database_url=dsn, bootstrap_servers=bootstrap)
    for name, value in {**env, "KAFKA_CONSUMER_GROUP": group}.items():
        monkeypatch.setenv(name, value)
    return await asyncio.to_thread(main, argv)


async def test_a_rebuild_after_lost_retention_gives_the_same_results(
    embedded_postgres: EmbeddedPostgres,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """State built through the real event path (registry and ingest handlers, their
    relays, the rules service); then the topics lose their oldest records (a fresh broker
    that holds only what came later), and the runbook's procedure rebuilds rules."""
    root = logging.getLogger()
    monkeypatch.setattr(root, "handlers", list(root.handlers))  # the CLIs configure logging
    dsns = await service_databases(embedded_postgres.uri())
    rules_settings = settings_for(Settings, database_url=dsns["rules"], bootstrap_servers="")
    group = rules_settings.consumer_group
    registry_pool = await create_pool(dsns["registry"], max_size=2)
    ingest_pool = await create_pool(dsns["ingest"], max_size=2)
    registry_uow = lambda: RegistryUnitOfWork(registry_pool)  # noqa: E731
    ingest_uow = lambda: IngestUnitOfWork(ingest_pool)  # noqa: E731
    rng = random.Random(21)

    def enterprise(employees: int) -> dict[str, Any]:
        return {
            "name": f"E{employees}",
            "credit_code": credit_code(rng, "310110"),
            "region_code": "310110",
            "kind": "production_company",
            "employees": employees,
        }

    def policy(doc: dict[str, Any]) -> Any:
        return load_policy_text(json.dumps(doc).encode(), "application/json")

    p_ent, p_prod, p_gone = uid("rt-e"), uid("rt-p"), uid("rt-g")
    first = EmbeddedBroker.start(log_file=tmp_path / "first.log")
    try:
        # 1. The platform builds its state the normal way, on the first broker.
        await ensure_topics(bootstrap_servers=first.bootstrap_servers)
        served = settings_for(
            Settings,
            database_url=dsns["rules"],
            bootstrap_servers=first.bootstrap_servers,
            kafka_consumer_group=group,
        )
        async with sources_serving(dsns, first.bootstrap_servers), serving(served):
            for doc in (
                enterprise_policy(p_ent),
                production_policy(p_prod),
                enterprise_policy(p_gone),
            ):
                await ingest_handlers.submit_policy(uow=ingest_uow, policy=policy(doc))
            e1 = await registry_handlers.create_enterprise(uow=registry_uow, data=enterprise(20))
            e2 = await registry_handlers.create_enterprise(uow=registry_uow, data=enterprise(5))
            e3 = await registry_handlers.create_enterprise(uow=registry_uow, data=enterprise(30))
            budget = {"title": "P", "region_code": "310110", "budget_cny": 1_000_000}
            pr1 = await registry_handlers.create_production(
                uow=registry_uow, data={**budget, "enterprise_id": e1.id}, owner=None
            )
            await registry_handlers.create_production(
                uow=registry_uow, data={**budget, "enterprise_id": e3.id}, owner=None
            )
            await registry_handlers.patch_enterprise(
                uow=registry_uow,
                enterprise_id=e2.id,
                patch={"employees": 50},
                expected_version=None,
                owner=None,
            )
            await registry_handlers.delete_enterprise(
                uow=registry_uow, enterprise_id=e3.id, expected_version=None
            )
            await ingest_handlers.revoke_policy(uow=ingest_uow, policy_id=p_gone, reason="test")
            expected = {
                (e1.id, p_ent): "eligible",
                (e2.id, p_ent): "eligible",
                (pr1.id, p_prod): "eligible",
            }

            async def converged() -> bool:
                now = {k: v[3] for k, v in (await results(dsns["rules"])).items()}
                return now == expected and await drained(*dsns.values())

            await eventually(converged, timeout=60, interval=0.2)
        before, emitted = await results(dsns["rules"]), await history(dsns["rules"])
        built = await projection(dsns["rules"])
        seq = (await query(dsns["rules"], "SELECT coalesce(max(seq), 0) AS s FROM outbox"))[0]["s"]
        assert built["enterprises"][e3.id][1] is True  # deleted, and its results withdrawn
    finally:
        first.stop()

    # 2. The topics lose their oldest records: a broker that holds only what came later
    # (a neutral rename and a neutral policy edit), with rules stopped.
    later = EmbeddedBroker.start(log_file=tmp_path / "later.log")
    try:
        bootstrap = later.bootstrap_servers
        await ensure_topics(bootstrap_servers=bootstrap)
        async with sources_serving(dsns, bootstrap):
            await registry_handlers.patch_enterprise(
                uow=registry_uow,
                enterprise_id=e1.id,
                patch={"name": "Renamed"},
                expected_version=None,
                owner=None,
            )
            await ingest_handlers.submit_policy(
                uow=ingest_uow, policy=policy(enterprise_policy(p_ent, title="Edited"))
            )
            await eventually(lambda: drained(dsns["registry"], dsns["ingest"]), timeout=30)

            # a rebuild from what is left would be partial: it is refused, nothing changes
            rules_cli = functools.partial(
                command,
                rules_main,
                ["rebuild"],
                service="rules",
                dsn=dsns["rules"],
                bootstrap=bootstrap,
                group=group,
                monkeypatch=monkeypatch,
            )
            refused = await rules_cli()
            assert await results(dsns["rules"]) == before
            assert await history(dsns["rules"]) == emitted
            assert refused == 2
            assert "no snapshot of" in capsys.readouterr().err

            # 3. The runbook: republish both sources, wait for their relays, rebuild.
            for service, main in (("registry", registry_main), ("ingest", ingest_main)):
                code = await command(
                    main,
                    ["republish"],
                    service=service,
                    dsn=dsns[service],
                    bootstrap=bootstrap,
                    group=f"reelpolicy-{service}",
                    monkeypatch=monkeypatch,
                )
                assert code == 0
            await eventually(lambda: drained(dsns["registry"], dsns["ingest"]), timeout=30)
            assert await rules_cli() == 0
        out = capsys.readouterr().out
        assert "complete snapshots:" in out
        assert "0 result(s) differed" in out
    finally:
        later.stop()
        await registry_pool.close()
        await ingest_pool.close()

    # the same results, not even rewritten; no change announced
    assert await results(dsns["rules"]) == before
    assert await history(dsns["rules"]) == emitted
    assert await outbox_after(dsns["rules"], seq) == []
    rebuilt = await projection(dsns["rules"])
    assert rebuilt["enterprises"][e3.id][:2] == (built["enterprises"][e3.id][0], True)
    assert rebuilt["enterprises"][e1.id][2]["name"] == "Renamed"
    assert all(rebuilt["productions"][k][2] is True for k in rebuilt["productions"] if k != pr1.id)
    assert rebuilt["policies"][p_ent][0] == 2
    assert {k for k, v in rebuilt["policies"].items() if not v[1]} == {p_ent, p_prod}
