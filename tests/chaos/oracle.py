"""The chaos run's oracle: what the platform should show, worked out without the event path.

:func:`measure` reads the final state of every service's own database, the topics and
what the webhook receiver and the mail sink got, and compares. Definitions:

**Eligibility expected.** The registry's live enterprises and productions (its tables;
a deleted enterprise takes its productions along) and ingest's current policies (the
latest version of every policy not revoked) are evaluated as rules' per-subject path
does (``build_subjects``, then the policy library's ``evaluate_values`` and
``apply_stacking`` over every active policy of the subject's type), today being the
current day in rules' time zone. Rules stores only ``eligible`` and ``unknown`` results
(an absent row means ``ineligible``), so those are what is expected; the count is
``eligibility_expected``. A fund draw depends on the order subjects were evaluated in,
not on the final state: for a policy with a fund, any granted amount from 0 to the
amount before the draw agrees, and the amounts rules grants from one fund must sum to
at most its budget (``funds_overdrawn`` counts funds that do not).

**Eligibility in rules.** Rows of rules' ``results`` that agree with an expected result
(status and amount). Rows for a (subject, policy) that is expected ineligible are
``eligibility_extra_in_rules``; both sets agree only if that is 0 too.

**Eligibility events lost.** Rules emits one ``eligibility.changed`` exactly when a
(subject, policy) result's status or amount changes, absent counting as ineligible (so
a result that was never anything but ineligible has no event). For every (subject,
policy) that is expected non-ineligible or has events, the latest event (deduplicated by
event id, the first copy kept, ordered by offset: a key's events share a partition) must
show the expected status and amount (for a fund policy: the amount rules stores). A key
that fails (no event, or a stale one) counts once.

**Alerts expected.** For each subscription in notify's database (not a digest one, its
URL path not in ``gone_paths``) and each ``eligibility.changed`` event on the topic
(deduplicated by event id) for its enterprise (or any, platform-wide) when it asked for
that type, the alert notify's ``eligibility_alert`` keys as ``event:policy:type:subject``,
if the subscription's filters pass. ``policy.changed`` alerts likewise: notify's policy
projection is replayed from the policy topic (an older version or an unchanged
republish makes no alert) and matched against enterprise scope as notify's
``for_region`` does. What notify decides at processing time, not at event time, makes
an alert *optional* (may arrive, not required) instead of expected: the event occurred
before the subscription was created (plus ``grace_seconds``) or after it was disabled
(less the grace); a policy-based filter (issuer level, region, benefit kinds) that some
version of the policy, or notify not knowing it yet, would decide otherwise; an
enterprise whose region or deletion changed, or that was new, around a policy alert.

**Alerts delivered.** Expected (subscription, alert key) pairs that reached the receiver
with a 2xx answer, or the mail sink. A webhook's subscription is the one whose URL has
the request's path (or, when several share it, notify's ``deliveries`` row of its
``webhook-id``); an e-mail is identified by its ``X-Reelpolicy-Delivery`` header, which
notify's ``deliveries`` table maps to its subscription and alert key (a mail carries no
event id). ``unexpected_alerts`` counts delivered alerts that were neither expected nor
optional (reported, not part of convergence).

**Duplicate alerts.** Per subscription, the same change delivered under more than one
id (``webhook-id`` / delivery id), a change being (subject, policy, cause, previous and
new status and amount) of its eligibility event, or (policy, version, published/revoked)
of a policy event; plus, per id, every body beyond the first (a retry of one id with
the same body is not a duplicate). Only deliveries answered 2xx (and mails) count.

**DLQ records** are the records on every ``*.dlq`` topic (end less beginning offsets);
**quarantined outbox rows** the rows of ``outbox_quarantine`` in each service database.

Topics are read with aiokafka from the earliest offset to the end offsets at call time;
what was read is kept (per broker and partition) for the next call, as is the
expectation while the registry and ingest tables are unchanged. A source that cannot
be reached raises: the caller treats that as not converged yet.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition

from reelpolicy_common.db.pool import connect
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import (
    EligibilityChanged,
    Envelope,
    EventType,
    PolicyPublished,
    PolicyRevoked,
)
from reelpolicy_notify.domain.alerts import eligibility_alert, policy_changed_alert
from reelpolicy_notify.domain.filters import Filters, matches
from reelpolicy_notify.domain.policies import PolicyFacts, policy_facts
from reelpolicy_policy import Policy, apply_stacking, evaluate_values, parse_policy, subject_values
from reelpolicy_rules.domain.constraints import fund_budgets, fund_of
from reelpolicy_rules.handlers.subject_recalculation import build_subjects

Key = tuple[str, str]  # (subject_id, policy_id)
Verdict = Literal["must", "may", "no"]
EXAMPLES = 5  # mismatch lines kept per kind
_ALERT_TYPES = frozenset({EventType.eligibility_changed.value, "policy.changed"})


@dataclass(frozen=True)
class ChaosSources:
    registry_dsn: str
    ingest_dsn: str
    rules_dsn: str
    notify_dsn: str
    bootstrap_servers: str
    webhooks: Sequence[Any]  # .path, .headers (lower-case names), .body (bytes), .status
    mail_dir: Path
    gone_paths: frozenset[str]
    rules_timezone: str = "Asia/Shanghai"
    grace_seconds: float = 2.0


@dataclass(frozen=True)
class ChaosReport:
    eligibility_expected: int
    eligibility_in_rules: int
    eligibility_events_lost: int
    alerts_expected: int
    alerts_delivered: int
    duplicate_alerts: int
    dlq_records: int
    quarantined_outbox_rows: int
    mismatches: list[str]
    eligibility_extra_in_rules: int = 0
    funds_overdrawn: int = 0
    eligibility_events: int = 0  # distinct eligibility.changed events on the topic
    unexpected_alerts: int = 0

    @property
    def converged(self) -> bool:
        return (
            self.eligibility_in_rules == self.eligibility_expected
            and self.eligibility_extra_in_rules == 0
            and self.funds_overdrawn == 0
            and self.eligibility_events_lost == 0
            and self.alerts_delivered == self.alerts_expected
            and self.duplicate_alerts == 0
        )


class _Notes:
    """Mismatch lines, at most :data:`EXAMPLES` per kind (and how many were left out)."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = defaultdict(list)
        self._more: dict[str, int] = defaultdict(int)

    def add(self, kind: str, line: str) -> None:
        if len(self._lines[kind]) < EXAMPLES:
            self._lines[kind].append(f"{kind}: {line}")
        else:
            self._more[kind] += 1

    def lines(self) -> list[str]:
        out = [line for lines in self._lines.values() for line in lines]
        return out + [f"{kind}: ... and {n} more" for kind, n in self._more.items()]


async def measure(*, sources: ChaosSources) -> ChaosReport:
    notes = _Notes()
    today = datetime.now(ZoneInfo(sources.rules_timezone)).date()
    state = await _read_topics(sources.bootstrap_servers)
    expected, budgets, documents = await _expectation(sources, today)
    stored = await _rules_results(sources.rules_dsn)
    changes = _eligibility_changes(state.events.get(topics.ELIGIBILITY, []))
    in_rules, extra, overdrawn = _compare_rules(expected, stored, budgets, notes)
    lost = _lost_events(expected, stored, changes, notes)
    alerts = await _alerts(sources, state, changes, documents, notes)
    for topic, count in state.dlq.items():
        if count:
            notes.add("dlq", f"{count} record(s) on {topic}")
    quarantined = await _quarantined(sources, notes)
    return ChaosReport(
        eligibility_expected=len(expected),
        eligibility_in_rules=in_rules,
        eligibility_events_lost=lost,
        alerts_expected=alerts.expected,
        alerts_delivered=alerts.delivered,
        duplicate_alerts=alerts.duplicates,
        dlq_records=sum(state.dlq.values()),
        quarantined_outbox_rows=quarantined,
        mismatches=notes.lines(),
        eligibility_extra_in_rules=extra,
        funds_overdrawn=overdrawn,
        eligibility_events=len(changes.by_id),
        unexpected_alerts=alerts.unexpected,
    )


# topics -----------------------------------------------------------------------------------


@dataclass
class _PartitionLog:
    next_offset: int = 0
    records: list[tuple[int, Envelope | None]] = field(default_factory=list)  # None: malformed


@dataclass(frozen=True)
class _TopicState:
    events: dict[str, list[Envelope]]  # main topic -> envelopes, each partition in offset order
    dlq: dict[str, int]  # dead-letter topic -> records on it


_LOGS: dict[tuple[str, TopicPartition], _PartitionLog] = {}


async def _read_topics(bootstrap: str, *, timeout: float = 30.0) -> _TopicState:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
    )
    await consumer.start()
    try:
        names = await consumer.topics()
        dlqs = sorted(t for t in names if t.endswith(".dlq"))
        mains = [t for t in topics.MAIN_TOPICS if t in names]
        tps = [
            TopicPartition(t, p)
            for t in [*mains, *dlqs]
            for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        begins = await consumer.beginning_offsets(tps) if tps else {}
        ends = await consumer.end_offsets(tps) if tps else {}
        dlq = {t: sum(ends[tp] - begins[tp] for tp in tps if tp.topic == t) for t in dlqs}
        pending: dict[TopicPartition, int] = {}
        logs: dict[TopicPartition, _PartitionLog] = {}
        for tp in (tp for tp in tps if tp.topic in mains):
            log = logs[tp] = _LOGS.setdefault((bootstrap, tp), _PartitionLog())
            if ends[tp] < log.next_offset:  # not the broker we read before
                log.next_offset, log.records = 0, []
            log.next_offset = max(log.next_offset, begins[tp])
            if log.next_offset < ends[tp]:
                pending[tp] = ends[tp]
        if pending:
            consumer.assign(list(pending))
            for tp in pending:
                consumer.seek(tp, logs[tp].next_offset)
            async with asyncio.timeout(timeout):
                while pending:
                    batch = await consumer.getmany(*pending, timeout_ms=300, max_records=20_000)
                    for tp, records in batch.items():
                        log = logs[tp]
                        for record in records:
                            if record.value is not None and record.offset >= log.next_offset:
                                log.records.append((record.offset, _envelope(record.value)))
                    for tp in list(pending):
                        logs[tp].next_offset = await consumer.position(tp)
                        if logs[tp].next_offset >= pending[tp]:
                            del pending[tp]
        events: dict[str, list[Envelope]] = defaultdict(list)
        for tp, log in sorted(logs.items(), key=lambda item: (item[0].topic, item[0].partition)):
            events[tp.topic].extend(e for _, e in log.records if e is not None)
        return _TopicState(dict(events), dlq)
    finally:
        await consumer.stop()


def _envelope(raw: bytes) -> Envelope | None:
    """The record's envelope (None if it does not parse: the consumers dead-letter it)."""
    try:
        return Envelope.model_validate_json(raw)
    except ValueError:
        return None


def _dedupe(envelopes: Iterable[Envelope]) -> list[Envelope]:
    seen: set[uuid.UUID] = set()
    out = []
    for e in envelopes:
        if e.event_id not in seen:
            seen.add(e.event_id)
            out.append(e)
    return out


@dataclass(frozen=True)
class _Changes:
    by_id: dict[str, tuple[Envelope, dict[str, Any]]]  # event id -> (envelope, change)
    latest: dict[Key, dict[str, Any]]  # (subject, policy) -> its last change


def _eligibility_changes(envelopes: Iterable[Envelope]) -> _Changes:
    by_id: dict[str, tuple[Envelope, dict[str, Any]]] = {}
    latest: dict[Key, dict[str, Any]] = {}
    for e in _dedupe(envelopes):
        if e.type is EventType.eligibility_changed:
            change = EligibilityChanged.model_validate(e.payload).model_dump(mode="json")
            by_id[str(e.event_id)] = (e, change)
            latest[(change["subject_id"], change["policy_id"])] = change
    return _Changes(by_id, latest)


# eligibility ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    subject_type: str
    enterprise_id: str
    status: str  # eligible or unknown: ineligible results are not stored, so not listed
    amount_cny: int | None
    fund_id: str | None  # a fund bounds the amount: any grant from 0 to amount_cny agrees


def agrees(expected: Expected | None, status: str, amount: int | None) -> bool:
    if expected is None:
        return status == "ineligible"
    if status != expected.status:
        return False
    if expected.fund_id is not None:
        return amount is not None and 0 <= amount <= (expected.amount_cny or 0)
    return amount == expected.amount_cny


@dataclass(frozen=True)
class _Expectation:
    fingerprint: tuple[Any, ...]
    results: dict[Key, Expected]
    budgets: dict[str, int]
    documents: dict[str, list[tuple[int, dict[str, Any]]]]  # policy id -> every version


_EXPECTATIONS: dict[tuple[str, str], _Expectation] = {}


async def _expectation(
    sources: ChaosSources, today: date
) -> tuple[dict[Key, Expected], dict[str, int], dict[str, list[tuple[int, dict[str, Any]]]]]:
    registry = await connect(sources.registry_dsn)
    ingest = await connect(sources.ingest_dsn)
    try:
        fingerprint = (
            today,
            tuple(
                await registry.fetchrow(
                    "SELECT (SELECT (count(*), sum(version), max(updated_at), count(deleted_at))::text"
                    " FROM enterprises), (SELECT (count(*), sum(version), max(updated_at),"
                    " count(deleted_at))::text FROM productions)"
                )
                or ()
            ),
            tuple(
                await ingest.fetchrow(
                    "SELECT (count(*), sum(latest_version), max(updated_at), count(revoked_at))::text"
                    " FROM policies"
                )
                or ()
            ),
        )
        cached = _EXPECTATIONS.get((sources.registry_dsn, sources.ingest_dsn))
        if cached is not None and cached.fingerprint == fingerprint:
            return cached.results, cached.budgets, cached.documents
        enterprises = await registry.fetch(
            "SELECT id::text AS enterprise_id, attributes, deleted_at IS NOT NULL AS deleted"
            " FROM enterprises"
        )
        productions = await registry.fetch(
            "SELECT id::text AS production_id, enterprise_id::text, attributes,"
            " deleted_at IS NOT NULL AS deleted FROM productions"
        )
        versions = await ingest.fetch(
            "SELECT v.policy_id, v.version, v.document, p.latest_version, p.revoked_at IS NOT NULL"
            " AS revoked FROM policy_versions v JOIN policies p USING (policy_id)"
            " ORDER BY v.policy_id, v.version"
        )
    finally:
        await registry.close()
        await ingest.close()
    documents: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    active: list[Policy] = []
    for row in versions:
        documents[row["policy_id"]].append((row["version"], row["document"]))
        if row["version"] == row["latest_version"] and not row["revoked"]:
            active.append(parse_policy({**row["document"], "version": row["version"]}))
    active.sort(key=lambda p: p.id)
    results = evaluate_registry(enterprises, productions, active, today=today)
    budgets = fund_budgets(active)
    _EXPECTATIONS[(sources.registry_dsn, sources.ingest_dsn)] = _Expectation(
        fingerprint, results, budgets, dict(documents)
    )
    return results, budgets, dict(documents)


def evaluate_registry(
    enterprises: Sequence[Any],
    productions: Sequence[Any],
    policies: Sequence[Policy],
    *,
    today: date,
) -> dict[Key, Expected]:
    """The stored (eligible or unknown) results rules should hold for this registry state."""
    by_enterprise: dict[str, list[Any]] = defaultdict(list)
    for row in productions:
        by_enterprise[row["enterprise_id"]].append(row)
    funds = {p.id: f[0] for p in policies if (f := fund_of(p)) is not None}
    out: dict[Key, Expected] = {}
    for ent in enterprises:
        eid = ent["enterprise_id"]
        subjects = build_subjects(
            enterprise_id=eid,
            enterprise=ent,
            productions=by_enterprise[eid],
            include_enterprise=True,
        )
        for s in subjects:
            values = subject_values(s, today)
            results = [
                evaluate_values(p, values, subject_id=s.subject_id, today=today)
                for p in policies
                if p.subject == s.type
            ]
            for r in apply_stacking(results, policies=policies):
                if r.status == "ineligible":
                    continue
                fund = funds.get(r.policy_id) if r.status == "eligible" and r.amount_cny else None
                out[(r.subject_id, r.policy_id)] = Expected(
                    r.subject_type, eid, r.status, r.amount_cny, fund
                )
    return out


async def _rules_results(dsn: str) -> dict[Key, tuple[str, int | None]]:
    conn = await connect(dsn)
    try:
        rows = await conn.fetch("SELECT subject_id, policy_id, status, amount_cny FROM results")
    finally:
        await conn.close()
    return {(r["subject_id"], r["policy_id"]): (r["status"], r["amount_cny"]) for r in rows}


def _compare_rules(
    expected: Mapping[Key, Expected],
    stored: Mapping[Key, tuple[str, int | None]],
    budgets: Mapping[str, int],
    notes: _Notes,
) -> tuple[int, int, int]:
    """(rows agreeing with an expected result, rows expected ineligible, funds overdrawn)."""
    agreeing = 0
    granted: dict[str, int] = defaultdict(int)
    for key, want in expected.items():
        got = stored.get(key)
        if got is None:
            notes.add("rules missing", f"{key}: expected {want.status} {want.amount_cny}")
        elif agrees(want, *got):
            agreeing += 1
        else:
            notes.add(
                "rules differs", f"{key}: expected {want.status} {want.amount_cny}, got {got}"
            )
        if got is not None and want.fund_id is not None and got[0] == "eligible":
            granted[want.fund_id] += got[1] or 0
    extra = [key for key in stored if key not in expected]
    for key in extra:
        notes.add("rules extra", f"{key}: {stored[key]}, expected ineligible")
    overdrawn = [fid for fid, total in granted.items() if total > budgets.get(fid, total)]
    for fid in overdrawn:
        notes.add("fund overdrawn", f"{fid}: {granted[fid]} granted of {budgets[fid]}")
    return agreeing, len(extra), len(overdrawn)


def _lost_events(
    expected: Mapping[Key, Expected],
    stored: Mapping[Key, tuple[str, int | None]],
    changes: _Changes,
    notes: _Notes,
) -> int:
    lost = 0
    for key in expected.keys() | changes.latest.keys():
        want, last = expected.get(key), changes.latest.get(key)
        if last is None:
            ok = want is None
        else:
            ok = agrees(want, last["status"], last["amount_cny"])
            if ok and want is not None and want.fund_id is not None and key in stored:
                ok = stored[key][1] == last["amount_cny"]  # the grant rules made
        if not ok:
            lost += 1
            shown = "no event" if last is None else f"{last['status']} {last['amount_cny']}"
            wanted = "ineligible" if want is None else f"{want.status} {want.amount_cny}"
            notes.add("event lost", f"{key}: expected {wanted}, latest event: {shown}")
    return lost


# alerts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Subscription:
    id: str
    enterprise_id: str | None
    path: str | None
    events: tuple[str, ...]
    filters: Filters
    enabled: bool
    disabled_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class _AlertCounts:
    expected: int
    delivered: int
    duplicates: int
    unexpected: int


def _url_path(url: str) -> str:
    parts = urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _both(a: Verdict, b: Verdict) -> Verdict:
    if "no" in (a, b):
        return "no"
    return "must" if a == b == "must" else "may"


def _over(verdicts: Iterable[bool]) -> Verdict:
    seen = set(verdicts)
    return "must" if seen == {True} else "may" if True in seen else "no"


def _timing(sub: _Subscription, occurred_at: datetime, grace: timedelta) -> Verdict:
    """Must a delivery exist, given when the event occurred and the subscription's life?"""
    if occurred_at < sub.created_at + grace:
        return "may"  # notify may have processed it after the subscription was created
    if not sub.enabled and (sub.disabled_at is None or occurred_at > sub.disabled_at - grace):
        return "may"
    return "must"


async def _alerts(
    sources: ChaosSources,
    state: _TopicState,
    changes: _Changes,
    documents: Mapping[str, list[tuple[int, dict[str, Any]]]],
    notes: _Notes,
) -> _AlertCounts:
    conn = await connect(sources.notify_dsn)
    try:
        rows = await conn.fetch(
            "SELECT id::text, enterprise_id, url, events, filters, digest_window_seconds,"
            " enabled, disabled_at, created_at FROM subscriptions"
        )
        subs = [
            _Subscription(
                r["id"],
                r["enterprise_id"],
                None if r["url"] is None else _url_path(r["url"]),
                tuple(r["events"]),
                Filters.from_json(r["filters"]),
                r["enabled"],
                r["disabled_at"],
                r["created_at"],
            )
            for r in rows
            if not r["digest_window_seconds"]
        ]
        subs = [s for s in subs if s.path is None or s.path not in sources.gone_paths]
        receipts = _webhook_receipts(sources.webhooks, sources.gone_paths)
        receipts += _mail_receipts(sources.mail_dir)
        deliveries = await _deliveries(conn, [r.id for r in receipts])
    finally:
        await conn.close()
    grace = timedelta(seconds=sources.grace_seconds)
    wanted: dict[tuple[str, str], Verdict] = {}
    identity: dict[str, tuple[Any, ...]] = {}  # alert key -> the change it reports
    facts = {
        pid: [policy_facts(doc, version=v) for v, doc in versions]
        for pid, versions in documents.items()
    }
    _eligibility_alerts(subs, changes, facts, grace, wanted, identity)
    _policy_alerts(subs, state, grace, wanted, identity)
    return _score(receipts, subs, deliveries, wanted, identity, notes)


def _eligibility_alerts(
    subs: Sequence[_Subscription],
    changes: _Changes,
    facts: Mapping[str, list[PolicyFacts]],
    grace: timedelta,
    wanted: dict[tuple[str, str], Verdict],
    identity: dict[str, tuple[Any, ...]],
) -> None:
    asking: dict[str | None, list[_Subscription]] = defaultdict(list)
    for sub in subs:
        if EventType.eligibility_changed.value in sub.events:
            asking[sub.enterprise_id].append(sub)
    for event_id, (envelope, change) in changes.by_id.items():
        key, amount = _eligibility_key(event_id, envelope, change)
        identity[key] = (
            change["subject_id"],
            change["policy_id"],
            change["cause"],
            change["previous_status"],
            change["previous_amount_cny"],
            change["status"],
            change["amount_cny"],
        )
        options: list[PolicyFacts | None] = [None, *facts.get(change["policy_id"], [])]
        for sub in asking[None] + asking.get(change["enterprise_id"], []):
            passes: Verdict = "must"
            if sub.filters != _NO_FILTERS:
                passes = _over(
                    matches(sub.filters, policy_id=change["policy_id"], policy=f, amount_cny=amount)
                    for f in options
                )
            verdict = _both(passes, _timing(sub, envelope.occurred_at, grace))
            if verdict != "no":
                wanted[(sub.id, key)] = verdict


_KEYS: dict[str, tuple[str, int | None]] = {}
_NO_FILTERS = Filters()


def _eligibility_key(
    event_id: str, envelope: Envelope, change: dict[str, Any]
) -> tuple[str, int | None]:
    """The alert key and filter amount notify gives this event (remembered: events stay)."""
    if event_id not in _KEYS:
        alert = eligibility_alert(
            event_id=event_id, occurred_at=envelope.occurred_at, change=change, policy=None
        )
        _KEYS[event_id] = (alert.alert_key, alert.amount_cny)
    return _KEYS[event_id]


def _policy_alerts(
    subs: Sequence[_Subscription],
    state: _TopicState,
    grace: timedelta,
    wanted: dict[tuple[str, str], Verdict],
    identity: dict[str, tuple[Any, ...]],
) -> None:
    asking = [s for s in subs if "policy.changed" in s.events]
    if not asking:
        return
    snapshots: dict[str, list[tuple[datetime, str, bool]]] = defaultdict(list)
    for e in _dedupe(state.events.get(topics.REGISTRY, [])):
        if e.type in (EventType.enterprise_upserted, EventType.enterprise_deleted):
            deleted = bool(e.payload.get("deleted")) or e.type is EventType.enterprise_deleted
            region = str(e.payload.get("attributes", {}).get("region_code", ""))
            snapshots[str(e.payload.get("enterprise_id"))].append((e.occurred_at, region, deleted))
    known: dict[str, tuple[int, dict[str, Any], bool]] = {}  # notify's policy projection
    for e in _dedupe(state.events.get(topics.POLICY, [])):
        change: Literal["published", "revoked"]
        before = known.get(e.key)
        if e.type is EventType.policy_published:
            published = PolicyPublished.model_validate(e.payload)
            if before is not None and published.version < before[0]:
                continue
            if before is not None and not before[2] and before[1] == published.document:
                continue
            known[e.key] = (published.version, published.document, False)
            change = "published"
        elif e.type is EventType.policy_revoked:
            PolicyRevoked.model_validate(e.payload)
            if before is None or before[2]:
                continue
            known[e.key] = (before[0], before[1], True)
            change = "revoked"
        else:
            continue
        version, document, revoked = known[e.key]
        policy = policy_facts(document, version=version, revoked=revoked)
        alert = policy_changed_alert(
            event_id=e.event_id,
            occurred_at=e.occurred_at,
            policy=policy,
            change=change,
            previous_version=None if before is None else before[0],
            summary=[],
        )
        identity[alert.alert_key] = ("policy", policy.policy_id, version, change)
        for sub in asking:
            scope = _scope(sub, policy.region_prefix, snapshots, e.occurred_at, grace)
            passes = matches(
                sub.filters, policy_id=policy.policy_id, policy=policy, amount_cny=alert.amount_cny
            )
            verdict = _both(
                _both(scope, "must" if passes else "no"), _timing(sub, e.occurred_at, grace)
            )
            if verdict != "no":
                wanted[(sub.id, alert.alert_key)] = verdict


def _scope(
    sub: _Subscription,
    prefix: str | None,
    snapshots: Mapping[str, list[tuple[datetime, str, bool]]],
    occurred_at: datetime,
    grace: timedelta,
) -> Verdict:
    """Whether notify's ``for_region`` picks ``sub`` for a policy alert, over every state
    notify's enterprise projection may have been in (unknown, or any snapshot)."""
    if sub.enterprise_id is None:
        return "must"
    seen = snapshots.get(sub.enterprise_id, [])
    picks = [
        not deleted and (prefix is None or region.startswith(prefix)) for _, region, deleted in seen
    ]
    if not seen or min(at for at, _, _ in seen) > occurred_at - grace:
        picks.append(prefix is None)  # not known yet: only a policy for any region picks it
    return _over(picks)


@dataclass
class _Receipt:
    id: str  # webhook-id, or the e-mail's delivery id
    channel: str
    path: str | None
    alert_key: str | None  # from the body (webhooks); e-mails get theirs from notify
    bodies: set[bytes]
    ok: bool  # answered 2xx (a mail in the sink is)


def _webhook_receipts(webhooks: Iterable[Any], gone: frozenset[str]) -> list[_Receipt]:
    by_id: dict[tuple[str, str], _Receipt] = {}
    for request in webhooks:
        if request.path in gone:
            continue
        headers = {k.lower(): v for k, v in request.headers.items()}
        msg_id = headers.get("webhook-id", "")
        receipt = by_id.get((request.path, msg_id))
        if receipt is None:
            receipt = _Receipt(
                msg_id, "webhook", request.path, _alert_key(request.body), set(), False
            )
            by_id[(request.path, msg_id)] = receipt
        receipt.bodies.add(bytes(request.body))
        receipt.ok = receipt.ok or 200 <= int(request.status) < 300
    return list(by_id.values())


def _alert_key(body: bytes) -> str | None:
    """The alert key notify filed the body under (eligibility and policy alerts)."""
    try:
        message = json.loads(body)
        data = message["data"]
        if message["type"] == EventType.eligibility_changed.value:
            origin = "backfill" if data.get("backfill") else data["event_id"]
            return f"{origin}:{data['policy_id']}:{data['subject_type']}:{data['subject_id']}"
        if message["type"] == "policy.changed":
            return f"{data['event_id']}:policy:{data['policy_id']}"
    except (ValueError, KeyError, TypeError):
        pass
    return None


def _mail_receipts(folder: Path) -> list[_Receipt]:
    by_id: dict[str, _Receipt] = {}
    if not folder.is_dir():
        return []
    for path in sorted(folder.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        msg_id = str(message.get("X-Reelpolicy-Delivery") or message.get("Message-ID") or path.name)
        text = f"{message.get('To')}\n{message.get('Subject')}\n{message.get_payload()}".encode()
        receipt = by_id.setdefault(msg_id, _Receipt(msg_id, "email", None, None, set(), True))
        receipt.bodies.add(text)
    return list(by_id.values())


async def _deliveries(
    conn: asyncpg.Connection, ids: Sequence[str]
) -> dict[str, tuple[str, str, str]]:
    """delivery id -> (subscription id, alert key, event type), from notify's table."""
    valid = []
    for i in ids:
        try:
            valid.append(uuid.UUID(i))
        except ValueError:
            continue
    rows = await conn.fetch(
        "SELECT id::text, subscription_id::text, alert_key, event_type FROM deliveries"
        " WHERE id = ANY($1::uuid[])",
        valid,
    )
    return {r["id"]: (r["subscription_id"], r["alert_key"], r["event_type"]) for r in rows}


def _score(
    receipts: Sequence[_Receipt],
    subs: Sequence[_Subscription],
    deliveries: Mapping[str, tuple[str, str, str]],
    wanted: Mapping[tuple[str, str], Verdict],
    identity: Mapping[str, tuple[Any, ...]],
    notes: _Notes,
) -> _AlertCounts:
    by_path: dict[str, list[str]] = defaultdict(list)
    for sub in subs:
        if sub.path is not None:
            by_path[sub.path].append(sub.id)
    scored = {sub.id for sub in subs}
    delivered: set[tuple[str, str]] = set()
    ids_per_change: dict[tuple[str, tuple[Any, ...]], set[str]] = defaultdict(set)
    duplicates = unexpected = 0
    for r in receipts:
        if len(r.bodies) > 1:
            duplicates += len(r.bodies) - 1
            notes.add("duplicate", f"{r.channel} id {r.id}: {len(r.bodies)} different bodies")
        row = deliveries.get(r.id)
        if r.channel == "webhook":
            key = r.alert_key
            if key is not None and row is not None and row[1] != key:
                notes.add("delivery", f"{r.id}: the body says {key}, notify filed {row[1]}")
        else:
            key = row[1] if row is not None and row[2] in _ALERT_TYPES else None
        if r.path is not None and len(by_path[r.path]) == 1:
            sub_id: str | None = by_path[r.path][0]
        else:
            sub_id = None if row is None else row[0]
        if not r.ok or key is None or sub_id not in scored:
            continue  # not an eligibility or policy alert to a subscription we score
        assert sub_id is not None
        ids_per_change[(sub_id, identity.get(key, ("key", key)))].add(r.id)
        if wanted.get((sub_id, key)) == "must":
            delivered.add((sub_id, key))
        elif (sub_id, key) not in wanted and not key.startswith("backfill:"):
            unexpected += 1
            notes.add("unexpected alert", f"subscription {sub_id}: {key}")
    for (sub_id, change), ids in ids_per_change.items():
        if len(ids) > 1:
            duplicates += len(ids) - 1
            notes.add("duplicate", f"subscription {sub_id}: {change} under ids {sorted(ids)}")
    must = [k for k, v in wanted.items() if v == "must"]
    for sub_id, key in must:
        if (sub_id, key) not in delivered:
            notes.add("alert missing", f"subscription {sub_id}: {key}")
    return _AlertCounts(len(must), len(delivered), duplicates, unexpected)


# quarantine -------------------------------------------------------------------------------


async def _quarantined(sources: ChaosSources, notes: _Notes) -> int:
    total = 0
    named = {
        "registry": sources.registry_dsn,
        "ingest": sources.ingest_dsn,
        "rules": sources.rules_dsn,
        "notify": sources.notify_dsn,
    }
    for service, dsn in named.items():
        conn = await connect(dsn)
        try:
            count = await conn.fetchval("SELECT count(*) FROM outbox_quarantine")
        finally:
            await conn.close()
        if count:
            notes.add("quarantine", f"{service}: {count} row(s)")
        total += int(count)
    return total
