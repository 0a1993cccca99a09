"""The events notify consumes, as the notify tests build and produce them."""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope, EventType


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
