"""``reelpolicy-rules restore-reconcile``: its steps with fakes (which published changes a
restored database lost, ``LostChanges``, and how they are written back, ``write_back``),
then the command on the real servers for one subject whose every step is known, and the
compacted state topic after a restore whose dump held unpublished outbox rows.

The whole restore procedure under load is tests/deploy/test_backup_restore.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from rules_helpers import (
    Collector,
    collecting,
    enterprise_event,
    policy_event,
    produce,
    production_event,
    production_policy,
    uid,
)

from reelpolicy_common.kafka import ensure_topics
from reelpolicy_common.outbox.relay import _LANE_LOCK_CLASS
from reelpolicy_common.outbox.store import DEFAULT_LANES, EncodedEvent
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import (
    EligibilityChanged,
    EligibilityState,
    Envelope,
    EventType,
    decode_envelope,
)
from reelpolicy_devstack.servers import EmbeddedBroker, database_uri
from reelpolicy_rules.bootstrap import bootstrap
from reelpolicy_rules.cli import restore_reconcile
from reelpolicy_rules.config import Settings
from reelpolicy_rules.domain.outcomes import Key
from reelpolicy_rules.handlers.eligibility_changes import eligibility_event
from reelpolicy_rules.handlers.restore_reconcile import (
    RECONCILE_CAUSE,
    LostChanges,
    PublishedChange,
    write_back,
)
from reelpolicy_rules.main import create_app
from service_harness import add_api_key, eventually, migrate_service, settings_for

CHANGED = EventType.eligibility_changed


@dataclass(frozen=True)
class Record:
    """A record read back from the eligibility topic."""

    value: bytes | None
    offset: int = 0
    topic: str = topics.ELIGIBILITY
    partition: int = 0
    headers: Sequence[tuple[str, bytes]] = ()


def change(
    subject_id: str,
    *,
    was: str | None,
    now: str,
    amount: int | None,
    previous_amount: int | None = None,
    version: int = 1,
    policy_id: str = "pol",
) -> Envelope:
    row = {
        "subject_type": "production",
        "subject_id": subject_id,
        "enterprise_id": "ent",
        "policy_id": policy_id,
        "policy_version": version,
        "previous_status": was,
        "status": now,
        "previous_amount_cny": previous_amount,
        "amount_cny": amount,
        "missing_fields": [],
        "explanation": {"why": f"{subject_id} {now}"},
    }
    return eligibility_event(row, cause=str(uuid.uuid4()))


class History:
    """The restored history: the event ids it holds; records every lookup."""

    def __init__(self, *held: Envelope) -> None:
        self.held = {e.event_id: e for e in held}
        self.lookups: list[list[tuple[str, str, uuid.UUID]]] = []

    async def __call__(self, changes: Sequence[tuple[str, str, uuid.UUID]]) -> set[uuid.UUID]:
        self.lookups.append(list(changes))
        return {
            event_id
            for subject_id, policy_id, event_id in changes
            if event_id in self.held
            and self.held[event_id].payload["subject_id"] == subject_id
            and self.held[event_id].payload["policy_id"] == policy_id
        }


async def fold(history: History, *events: Envelope | bytes, batch: int = 100) -> LostChanges:
    lost = LostChanges(history, batch=batch)
    for offset, e in enumerate(events):
        await lost.add(Record(e if isinstance(e, bytes) else e.to_bytes(), offset=offset))
    await lost.finish()
    return lost


def ids(lost: LostChanges) -> dict[Key, list[uuid.UUID]]:
    return {key: [p.event_id for p in changes] for key, changes in lost.lost.items()}


@pytest.mark.parametrize("batch", [1, 2, 100])
async def test_the_changes_after_the_last_one_the_history_holds_are_lost(batch: int) -> None:
    a1 = change("a", was=None, now="eligible", amount=1000)
    a2 = change("a", was="eligible", now="eligible", amount=2000, previous_amount=1000)
    a3 = change("a", was="eligible", now="ineligible", amount=None, previous_amount=2000)
    b1 = change("b", was=None, now="eligible", amount=1000)
    b2 = change("b", was="eligible", now="eligible", amount=2000, previous_amount=1000)
    c1 = change("c", was=None, now="eligible", amount=1000)
    history = History(a1, b1, b2, c1)  # the dump held these

    lost = await fold(history, a1, b1, a2, c1, b2, a3, batch=batch)

    assert ids(lost) == {("a", "pol"): [a2.event_id, a3.event_id]}  # in published order
    assert (lost.read, lost.skipped) == (6, 0)
    looked_up = [c for lookup in history.lookups for c in lookup]
    assert looked_up == [
        (e.payload["subject_id"], "pol", e.event_id) for e in (a1, b1, a2, c1, b2, a3)
    ]
    assert all(len(lookup) <= batch for lookup in history.lookups)


async def test_a_change_the_history_holds_clears_what_came_before_it() -> None:
    # The history may hold a change later than ones it lacks (a previous reconcile wrote
    # them back, or they were published twice): it holds everything up to it.
    a1 = change("a", was=None, now="eligible", amount=1000)
    a2 = change("a", was="eligible", now="eligible", amount=2000, previous_amount=1000)
    lost = await fold(History(a2), a1, a2)
    assert lost.lost == {}


async def test_a_change_published_twice_is_lost_once_and_other_records_are_left_out() -> None:
    a1 = change("a", was=None, now="eligible", amount=1000)
    a1_other_policy = change("a", was=None, now="unknown", amount=None, policy_id="other")
    impact = Envelope(
        type=EventType.policy_impact,
        producer="rules",
        key="pol",
        payload={"policy_id": "pol", "policy_version": 2},
    )
    lost = await fold(History(), a1, impact, b"not an envelope", a1, a1_other_policy)
    assert ids(lost) == {
        ("a", "pol"): [a1.event_id],
        ("a", "other"): [a1_other_policy.event_id],
    }
    assert (lost.read, lost.skipped) == (3, 1)


async def test_the_unsent_changes_found_on_the_topic_are_collected() -> None:
    # The restored outbox's unsent changes that were published after the dump.
    a1 = change("a", was=None, now="eligible", amount=1000)
    a2 = change("a", was="eligible", now="eligible", amount=2000, previous_amount=1000)
    impact = Envelope(
        type=EventType.policy_impact,
        producer="rules",
        key="pol",
        payload={"policy_id": "pol", "policy_version": 1},
    )
    never_published = uuid.uuid4()
    unsent = {a1.event_id, impact.event_id, never_published}
    lost = LostChanges(History(a1), batch=1, unsent=unsent)
    for offset, e in enumerate((a1, impact, a2)):
        await lost.add(Record(e.to_bytes(), offset=offset))
    await lost.finish()
    assert lost.published_unsent == {a1.event_id, impact.event_id}
    assert ids(lost) == {("a", "pol"): [a2.event_id]}


@dataclass
class Results:
    """The results repository's writes."""

    deleted: list[Key] = field(default_factory=list)
    stored: list[tuple[Any, ...]] = field(default_factory=list)
    history: list[tuple[Any, ...]] = field(default_factory=list)

    async def replace(self, deletes: Sequence[Key], rows: Sequence[tuple[Any, ...]]) -> None:
        self.deleted += deletes
        self.stored += rows

    async def add_history(self, rows: Sequence[tuple[Any, ...]]) -> None:
        self.history += rows


@dataclass
class Work:
    """The unit of work's results, and its outbox writes (dropped unsent keys, queued
    records)."""

    results: Results = field(default_factory=Results)
    dropped: list[tuple[str, list[str]]] = field(default_factory=list)
    queued: list[tuple[str, EncodedEvent]] = field(default_factory=list)

    async def drop_unsent(self, topic: str, keys: Sequence[str]) -> int:
        self.dropped.append((topic, list(keys)))
        return 0

    async def publish_encoded(
        self, topic: str, events: Iterable[EncodedEvent], *, count: int
    ) -> None:
        self.queued += [(topic, e) for e in events]


def published(e: Envelope) -> PublishedChange:
    return PublishedChange(e.event_id, EligibilityChanged.model_validate(e.payload))


async def test_write_back_stores_each_keys_last_result_and_every_change_in_the_history() -> None:
    a2 = change("a", was="eligible", now="eligible", amount=2000, previous_amount=1000, version=2)
    a3 = change("a", was="eligible", now="unknown", amount=None, previous_amount=2000, version=3)
    b2 = change("b", was="eligible", now="ineligible", amount=None, previous_amount=1000)
    work = Work()

    written = await write_back(
        work,  # type: ignore[arg-type]  # only its results and outbox writes are used
        {("a", "pol"): [published(a2), published(a3)], ("b", "pol"): [published(b2)]},
    )

    assert written == 3
    assert work.results.deleted == [("b", "pol")]
    assert work.results.stored == [
        ("production", "a", "pol", "ent", 3, "unknown", None, [], {"why": "a unknown"})
    ]
    assert work.results.history == [
        (
            e.payload["subject_id"],
            "pol",
            "ent",
            e.payload["policy_version"],
            e.payload["previous_status"],
            e.payload["status"],
            e.payload["previous_amount_cny"],
            e.payload["amount_cny"],
            e.payload["cause"],  # the original cause and event id: the history is whole again
            e.event_id,
        )
        for e in (a2, a3, b2)
    ]
    # the state topic: each key's unsent (older) records dropped, its last change's
    # result queued again (b's withdrawn: a tombstone)
    state_keys = [topics.state_key("production", s, "pol") for s in ("a", "b")]
    assert work.dropped == [(topics.ELIGIBILITY_STATE, state_keys)]
    assert [(topic, e.key) for topic, e in work.queued] == [
        (topics.ELIGIBILITY_STATE, k) for k in state_keys
    ]
    a_state = decode_envelope(work.queued[0][1].value or b"")
    assert a_state.type is EventType.eligibility_state
    assert EligibilityState.model_validate(a_state.payload) == EligibilityState(
        subject_type="production",
        subject_id="a",
        enterprise_id="ent",
        policy_id="pol",
        policy_version=3,
        status="unknown",
        amount_cny=None,
        explanation={"why": "a unknown"},
        cause=a3.payload["cause"],
        change_event_id=a3.event_id,
    )
    assert work.queued[1][1].value is None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[str]:
    """A broker of this test's own: the reconcile reads whole topics."""
    server = EmbeddedBroker.start(log_file=tmp_path / "tansu.log")
    try:
        yield server.bootstrap_servers
    finally:
        server.stop()


def budget_policy(pid: str, minimum: int) -> dict[str, Any]:
    doc = production_policy(pid)
    doc["criteria"]["all"][1]["value"] = minimum
    return doc


def rules_settings(dsn: str, broker: str) -> Settings:
    return settings_for(Settings, database_url=dsn, bootstrap_servers=broker)


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[None]:
    """The rules service in this process (consumers, outbox relay, scheduler)."""
    app = create_app(rules=bootstrap(settings))
    async with app.router.lifespan_context(app):
        yield


@pytest.mark.servers
async def test_a_restored_database_publishes_only_what_differs_from_what_was_published(
    fresh_database: str, broker: str
) -> None:
    dsn = fresh_database
    await ensure_topics(bootstrap_servers=broker)
    await migrate_service(dsn, "reelpolicy_rules.migrations", "rules")
    pid, ent, prod = uid("rr"), uid("e"), uid("p")

    def changes(seen: Collector) -> list[tuple[Any, ...]]:
        return [
            (e.payload["previous_status"], e.payload["status"], e.payload["cause"])
            for e in seen.of(CHANGED, subject_id=prod)
        ]

    async with collecting(broker) as seen:
        # 1. The service makes the production eligible; then the database is backed up.
        async with serving(rules_settings(dsn, broker)):
            await produce(broker, topics.POLICY, policy_event(budget_policy(pid, 500_000), 1))
            e1, p1 = enterprise_event(ent, 1), production_event(prod, ent, 1, budget=1_000_000)
            await produce(broker, topics.REGISTRY, e1, p1)
            await eventually(lambda: len(changes(seen)) == 1, timeout=30)
            await eventually(lambda: relayed(dsn), timeout=30)  # the backup holds it as sent
        restored = await copy_database(dsn)  # the backup, restored

        # 2. After the backup: a registry write, a policy version that undoes it, another
        # registry write; the changes are published. Their order is on neither input topic.
        async with serving(rules_settings(dsn, broker)):
            p2 = production_event(prod, ent, 2, budget=100_000)
            await produce(broker, topics.REGISTRY, p2)
            await eventually(lambda: len(changes(seen)) == 2, timeout=30)
            v2 = policy_event(budget_policy(pid, 50_000), 2)
            await produce(broker, topics.POLICY, v2)
            await eventually(lambda: len(changes(seen)) == 3, timeout=30)
            p3 = production_event(prod, ent, 3, budget=10_000)
            await produce(broker, topics.REGISTRY, p3)
            await eventually(lambda: len(changes(seen)) == 4, timeout=30)
        # 3. The failure; then a write the service never handled.
        await produce(broker, topics.REGISTRY, production_event(prod, ent, 4, budget=60_000))
        told = [e.event_id for e in seen.of(CHANGED, subject_id=prod)]

        # 4. Reconcile the restored database, twice; start the service on it.
        settings = rules_settings(restored, broker)
        done = await restore_reconcile(settings)
        assert (done.written_back, done.changed) == (3, 1)
        assert set(done.moved.values()) == {"standalone"}
        again = await restore_reconcile(settings)
        assert (again.written_back, again.changed) == (0, 0)
        async with serving(settings):
            await eventually(lambda: len(changes(seen)) == 5, timeout=30)
            await asyncio.sleep(2)  # nothing more comes
        # (the restored result was eligible: only what was told makes this a change)
        assert changes(seen)[1:] == [
            ("eligible", "ineligible", str(p2.event_id)),
            ("ineligible", "eligible", str(v2.event_id)),
            ("eligible", "ineligible", str(p3.event_id)),
            ("ineligible", "eligible", RECONCILE_CAUSE),
        ]
        assert changes(seen)[0][:2] == ("ineligible", "eligible")
        published_ids = [e.event_id for e in seen.of(CHANGED, subject_id=prod)]
        assert published_ids[:4] == told
        history = await query(
            restored, "SELECT event_id FROM result_history WHERE subject_id = $1 ORDER BY id", prod
        )
        assert [r["event_id"] for r in history] == published_ids  # whole again
        stored = await query(restored, "SELECT status FROM results WHERE subject_id = $1", prod)
        assert [r["status"] for r in stored] == ["eligible"]


@contextlib.asynccontextmanager
async def relay_held(dsn: str) -> AsyncIterator[None]:
    """Every outbox lane's lock held by another session: the relay publishes nothing
    (rows commit and stay unpublished, as when a dump catches them before the relay)."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "SELECT pg_advisory_lock($1, lane) FROM generate_series(0, $2 - 1) AS lane",
            _LANE_LOCK_CLASS,
            DEFAULT_LANES,
        )
        yield
    finally:
        await conn.close()  # releases the locks


async def state_topic(broker: str, key: str, *, records: int) -> list[bytes | None]:
    """The values of ``key``'s records on the state topic, in order (a tombstone: None),
    read from the beginning until ``records`` of them arrived."""
    consumer = AIOKafkaConsumer(bootstrap_servers=broker, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        partitions = topics.partitions(topics.ELIGIBILITY_STATE)
        tps = [TopicPartition(topics.ELIGIBILITY_STATE, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        values: list[bytes | None] = []
        async with asyncio.timeout(60):
            while len(values) < records:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    values += [r.value for r in batch if r.key == key.encode()]
        return values
    finally:
        await consumer.stop()


@pytest.mark.servers
async def test_after_a_restore_the_state_topic_ends_with_what_get_answers(
    fresh_database: str, broker: str
) -> None:
    # The dump holds a change whose outbox rows (its eligibility.changed event and its
    # state record) the relay had not published yet; after the dump they are published,
    # then a newer change of the same key. The restored outbox holds the old rows as
    # unpublished: they must not become the key's latest value on the compacted topic,
    # nor follow the newer change on the change topic.
    dsn = fresh_database
    await ensure_topics(bootstrap_servers=broker)
    await migrate_service(dsn, "reelpolicy_rules.migrations", "rules")
    pid, ent, prod = uid("rs"), uid("e"), uid("p")
    key = topics.state_key("production", prod, pid)
    state_rows = "SELECT count(*) FROM outbox WHERE topic = $1 AND key = $2"

    def changes(seen: Collector) -> int:
        return len(seen.of(CHANGED, subject_id=prod))

    async def stored() -> bool:
        return bool(await query(dsn, "SELECT 1 FROM results WHERE subject_id = $1", prod))

    async with collecting(broker) as seen:
        # 1. The production becomes eligible; the dump is taken before the relay runs.
        async with relay_held(dsn), serving(rules_settings(dsn, broker)):
            await produce(broker, topics.POLICY, policy_event(budget_policy(pid, 500_000), 1))
            e1, p1 = enterprise_event(ent, 1), production_event(prod, ent, 1, budget=1_000_000)
            await produce(broker, topics.REGISTRY, e1, p1)
            await eventually(stored, timeout=30)
        restored = await copy_database(dsn)  # the backup, restored
        unsent = await query(
            restored,
            state_rows + " AND sent_at IS NULL AND value IS NOT NULL",
            topics.ELIGIBILITY_STATE,
            key,
        )
        assert unsent[0]["count"] == 1, "the dump holds the eligible state unpublished"

        # 2. After the dump: the relay publishes it, then the production falls below the
        # budget (ineligible: the key's state is withdrawn, a tombstone). The failure.
        async with serving(rules_settings(dsn, broker)):
            await eventually(lambda: changes(seen) == 1, timeout=30)
            await produce(broker, topics.REGISTRY, production_event(prod, ent, 2, budget=1))
            await eventually(lambda: changes(seen) == 2, timeout=30)
            await eventually(lambda: relayed(dsn), timeout=30)
        first_run = (await query(dsn, state_rows, topics.ELIGIBILITY_STATE, key))[0]["count"]

        # 3. Reconcile the restored database; start the service on it; let it publish.
        settings = rules_settings(restored, broker)
        done = await restore_reconcile(settings)
        assert (done.written_back, done.changed) == (1, 0)
        # the change and the policy's impact summary the dump held unsent were published
        # after it: not sent again
        assert done.resent_dropped == 2
        unsent_changes = "SELECT count(*) FROM outbox WHERE topic = $1 AND sent_at IS NULL"
        assert (await query(restored, unsent_changes, topics.ELIGIBILITY))[0]["count"] == 0
        to_publish = await query(
            restored, state_rows + " AND sent_at IS NULL", topics.ELIGIBILITY_STATE, key
        )
        app = create_app(rules=bootstrap(settings))
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://rules",
                headers={"Authorization": f"Bearer {await add_api_key(restored)}"},
            ) as client,
        ):
            await eventually(lambda: relayed(restored), timeout=30)
            await asyncio.sleep(2)  # nothing more comes
            answer = await client.get("/v1/eligibility", params={"enterprise_id": ent})
        assert answer.status_code in (200, 404), answer.text
        answered = answer.json()["items"] if answer.status_code == 200 else []
        assert changes(seen) == 2, "each change on the change topic once"

    # A consumer bootstrapping from the state topic: the key's last record wins.
    values = await state_topic(broker, key, records=first_run + to_publish[0]["count"])
    held = [item for item in answered if item["subject_id"] == prod]
    assert held == [], "GET answers no result for the production: it is ineligible"
    assert values[-1] is None, (
        "the state topic's latest value of the key must be its tombstone (as GET answers),"
        f" not an older state: {values[-1]!r}"
    )


async def relayed(dsn: str) -> bool:
    return not await query(dsn, "SELECT 1 FROM outbox WHERE sent_at IS NULL")


async def copy_database(dsn: str) -> str:
    """A copy of the database ``dsn`` (nobody connected to it); its DSN."""
    source = (await query(dsn, "SELECT current_database() AS name"))[0]["name"]
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(database_uri(dsn, "postgres"))
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{source}"')
    finally:
        await conn.close()
    return database_uri(dsn, name)


async def query(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()
