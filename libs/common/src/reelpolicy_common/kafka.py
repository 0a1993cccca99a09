"""Kafka adapters: the outbox's record publisher and topic creation (aiokafka), and how
every client connects (:class:`KafkaSecurity`: TLS and SASL from the settings)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    CorruptRecordException,
    InvalidTimestampError,
    InvalidTopicError,
    MessageSizeTooLargeError,
    RecordListTooLargeError,
    RecordTooLargeError,
    TopicAlreadyExistsError,
    UnsupportedForMessageFormatError,
)
from aiokafka.helpers import create_ssl_context
from aiokafka.partitioner import murmur2
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from faststream.security import (
    BaseSecurity,
    SASLPlaintext,
    SASLScram256,
    SASLScram512,
)
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from reelpolicy_common.outbox.relay import PermanentPublishError
from reelpolicy_common.outbox.store import OutboxRecord
from reelpolicy_common.settings import ServiceSettings
from reelpolicy_common.telemetry import (
    context_from_headers,
    current_trace_headers,
    encode_kafka_headers,
)
from reelpolicy_contracts import topics

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("reelpolicy.outbox")


_SASL_SECURITY = {
    "PLAIN": SASLPlaintext,
    "SCRAM-SHA-256": SASLScram256,
    "SCRAM-SHA-512": SASLScram512,
}


@dataclass(frozen=True)
class KafkaSecurity:
    """How a Kafka client connects (``KAFKA_SECURITY_PROTOCOL``, ``KAFKA_SASL_*``,
    ``KAFKA_SSL_CA_FILE``); the default is PLAINTEXT, what the embedded broker speaks."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str | None = None
    username: str | None = None
    password: str | None = None
    ca_file: str | None = None

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> KafkaSecurity:
        password = settings.kafka_sasl_password
        return cls(
            protocol=settings.kafka_security_protocol,
            sasl_mechanism=settings.kafka_sasl_mechanism,
            username=settings.kafka_sasl_username,
            password=password.get_secret_value() if password is not None else None,
            ca_file=str(settings.kafka_ssl_ca_file) if settings.kafka_ssl_ca_file else None,
        )

    @property
    def uses_tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    def client_options(self) -> dict[str, Any]:
        """aiokafka's keyword arguments for a producer, consumer or admin client."""
        options: dict[str, Any] = {"security_protocol": self.protocol}
        if self.uses_tls:  # aiokafka needs a context for TLS; without a CA file, the system's
            options["ssl_context"] = create_ssl_context(cafile=self.ca_file)
        if self.uses_sasl:
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.username
            options["sasl_plain_password"] = self.password
        return options

    def faststream(self) -> BaseSecurity:
        """The same for FastStream's ``KafkaBroker(security=...)``, which turns it into
        these aiokafka arguments for the clients it makes."""
        context = create_ssl_context(cafile=self.ca_file) if self.uses_tls else None
        if self.uses_sasl:
            sasl = _SASL_SECURITY[self.sasl_mechanism or ""]
            return sasl(self.username or "", self.password or "", ssl_context=context)
        return BaseSecurity(ssl_context=context)  # PLAINTEXT without a context


PLAINTEXT = KafkaSecurity()


def kafka_consumer(settings: ServiceSettings, **options: Any) -> AIOKafkaConsumer:
    """A consumer of the service's broker, connecting as the settings say."""
    return AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        **KafkaSecurity.from_settings(settings).client_options(),
        **options,
    )


def make_producer(
    *, bootstrap_servers: str, enable_idempotence: bool, security: KafkaSecurity = PLAINTEXT
) -> AIOKafkaProducer:
    """A producer tuned for the relay: acks from all replicas, no linger.

    The relay hands over whole record batches (:class:`KafkaRecordPublisher`), all of
    them appended before the sender task next runs, so waiting for more records to
    arrive (``linger_ms``) would only delay each batch.
    """
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        **security.client_options(),
        enable_idempotence=enable_idempotence,
        acks="all",
        linger_ms=0,
        max_batch_size=1 << 20,
        request_timeout_ms=15_000,
    )


REFUSED_FOR_GOOD = (
    MessageSizeTooLargeError,
    RecordTooLargeError,
    RecordListTooLargeError,
    InvalidTopicError,
    CorruptRecordException,
    UnsupportedForMessageFormatError,
    InvalidTimestampError,
)
"""Broker answers about the records themselves: sending them again cannot succeed."""
MAX_RECORD_BYTES = 1 << 20
"""The largest record published: aiokafka's default ``max_request_size`` (what ``send``
allows), just under Kafka's default ``message.max.bytes``."""
_LEGAL_TOPIC = re.compile(r"^[a-zA-Z0-9._-]{1,249}$")


@functools.lru_cache(maxsize=1 << 16)
def key_hash(key: bytes) -> int:
    """The Java client's key hash (what ``send`` partitions by); pure Python, so cached."""
    return int(murmur2(key)) & 0x7FFFFFFF


class KafkaRecordPublisher:
    """Publishes outbox records in order; a PRODUCER span per record joins the writer's trace.

    Records are appended to one record batch per partition (``create_batch`` /
    ``send_batch``) rather than sent one by one: a future per batch, not per record,
    which is most of the relay's CPU. Partitions are chosen exactly as ``send`` would
    (murmur2 of the key), and each partition's records keep their order.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        timeout: float = 30.0,
        max_record_bytes: int = MAX_RECORD_BYTES,
    ) -> None:
        self._producer = producer
        self._timeout = timeout
        self._max_record_bytes = max_record_bytes

    async def publish_batch(self, records: Sequence[OutboxRecord]) -> None:
        """Send in order, then wait for every acknowledgement; all within the timeout.

        A refusal about the records themselves (:data:`REFUSED_FOR_GOOD`, an illegal
        topic name, a record larger than a producer batch) raises
        :class:`PermanentPublishError`; anything else (broker down, timeouts) is
        raised as it is, for the relay to retry.
        """
        try:
            await self._publish_batch(records)
        except REFUSED_FOR_GOOD as exc:
            text = str(exc)  # aiokafka's errors mostly name themselves already
            name = type(exc).__name__
            raise PermanentPublishError(text if name in text else f"{name}: {text}") from exc

    async def _publish_batch(self, records: Sequence[OutboxRecord]) -> None:
        async with asyncio.timeout(self._timeout):
            by_partition: dict[tuple[str, int], list[OutboxRecord]] = defaultdict(list)
            partitions: dict[str, list[int]] = {}
            for record in records:
                if record.topic not in partitions:
                    if not _LEGAL_TOPIC.match(record.topic):
                        raise PermanentPublishError(f"illegal topic name {record.topic!r}")
                    partitions[record.topic] = sorted(
                        await self._producer.partitions_for(record.topic)
                    )
                known = partitions[record.topic]
                partition = known[key_hash(record.key.encode()) % len(known)]
                by_partition[record.topic, partition].append(record)
            acks = []
            for (topic, partition), group in by_partition.items():
                acks += await self._send_partition(topic, partition, group)
            await asyncio.gather(*acks)

    async def _send_partition(
        self, topic: str, partition: int, records: list[OutboxRecord]
    ) -> list[asyncio.Future[Any]]:
        acks: list[asyncio.Future[Any]] = []
        batch = self._producer.create_batch()
        for record in records:
            headers = self._headers(record)
            key = record.key.encode()
            self._check_size(record, key, headers)
            if batch.append(key=key, value=record.value, timestamp=None, headers=headers) is None:
                acks.append(await self._producer.send_batch(batch, topic, partition=partition))
                batch = self._producer.create_batch()
                if (
                    batch.append(key=key, value=record.value, timestamp=None, headers=headers)
                    is None
                ):
                    raise PermanentPublishError(
                        f"outbox record {record.seq} ({len(record.value or b'')} bytes)"
                        " exceeds the producer batch size"
                    )
        if batch.record_count():
            acks.append(await self._producer.send_batch(batch, topic, partition=partition))
        return acks

    def _check_size(self, record: OutboxRecord, key: bytes, headers: list[Any]) -> None:
        """Refuse a record over the request size, as ``send`` would (``send_batch`` does
        not check, and a broker may not either: the embedded one stores it)."""
        if record.value is None or len(record.value) <= self._max_record_bytes // 2:
            return  # the exact estimate only for records that could be too large
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, record.value, headers)
        if size > self._max_record_bytes:
            raise MessageSizeTooLargeError(
                f"outbox record {record.seq} is {size} bytes, over {self._max_record_bytes}"
            )

    @staticmethod
    def _headers(record: OutboxRecord) -> list[tuple[str, bytes]]:
        if "traceparent" not in record.headers:  # nothing to continue: skip the span
            return encode_kafka_headers(record.headers)
        with _tracer.start_as_current_span(
            f"{record.topic} publish",
            context=context_from_headers(record.headers),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.kafka.message.key": record.key,
            },
        ):
            return encode_kafka_headers({**record.headers, **current_trace_headers()})

    async def refresh(self) -> None:
        """Re-read topic metadata; after a broker restart the cached partitions may be gone."""
        if not await self._producer.client.force_metadata_update():
            raise ConnectionError("could not refresh metadata from the broker")


def admin_client(
    *, bootstrap_servers: str, security: KafkaSecurity = PLAINTEXT
) -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, **security.client_options())


async def ensure_topics(
    *,
    bootstrap_servers: str,
    names: Iterable[str] = topics.ALL_TOPICS,
    replication: int = 1,
    security: KafkaSecurity = PLAINTEXT,
) -> None:
    """Create the topics that are missing, with the partition counts the services expect
    and their cleanup policy and retention (:func:`reelpolicy_contracts.topics.config`).
    Existing topics are left as they are (an operator may have tuned them)."""
    admin = admin_client(bootstrap_servers=bootstrap_servers, security=security)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, topics.partitions(name), replication, topic_configs=topics.config(name))
            for name in names
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # a concurrent creator won
                await admin.create_topics(wanted)
            log.info("created topics %s", [t.name for t in wanted])
    finally:
        await admin.close()
