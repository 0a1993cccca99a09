"""KAFKA_SECURITY_PROTOCOL, KAFKA_SASL_* and KAFKA_SSL_CA_FILE reach every Kafka client
the services make, as aiokafka's arguments. No SASL or TLS broker runs on these
machines: the clients are built, not connected, and what aiokafka was given is read."""

from __future__ import annotations

import datetime
import re
import ssl
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from reelpolicy_common.kafka import KafkaSecurity, admin_client, kafka_consumer, make_producer
from reelpolicy_common.runtime import ServiceRuntime
from reelpolicy_common.settings import ServiceSettings

ROOT = Path(__file__).resolve().parents[2]
CA_NAME = "reelpolicy test kafka CA"


def write_ca(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def settings_from_env(monkeypatch: pytest.MonkeyPatch, **env: str) -> ServiceSettings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return ServiceSettings(
        service_name="probe",
        database_url="postgresql://probe@127.0.0.1:1/probe",
        kafka_bootstrap_servers="127.0.0.1:1",
        http_port=1,
    )


def client_arguments(client: Any) -> dict[str, Any]:
    """What an aiokafka client (its AIOKafkaClient) was configured with."""
    return {
        "security_protocol": client._security_protocol,
        "sasl_mechanism": client._sasl_mechanism,
        "sasl_plain_username": client._sasl_plain_username,
        "sasl_plain_password": client._sasl_plain_password,
        "ssl_context": client._ssl_context,
    }


async def clients_made(settings: ServiceSettings) -> dict[str, dict[str, Any]]:
    """Every kind of client the services make, from ``settings``."""
    security = KafkaSecurity.from_settings(settings)
    runtime = ServiceRuntime(settings)
    broker_consumer = runtime.broker.config.broker_config.builder(group_id="probe")
    producer = make_producer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_idempotence=False,
        security=runtime.kafka_security,
    )
    made = {
        "relay producer": client_arguments(producer.client),
        "faststream consumer": client_arguments(broker_consumer._client),
        "faststream producer": {
            key: runtime.broker._connection_kwargs.get(key)
            for key in client_arguments(producer.client)
        },
        "admin": client_arguments(
            admin_client(
                bootstrap_servers=settings.kafka_bootstrap_servers, security=security
            )._client
        ),
        "cli consumer": client_arguments(kafka_consumer(settings, group_id="probe")._client),
    }
    return made


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
async def test_sasl_ssl_with_a_ca_file_reaches_every_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, mechanism: str
) -> None:
    ca = write_ca(tmp_path / "ca.pem")
    settings = settings_from_env(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM=mechanism,
        KAFKA_SASL_USERNAME="svc-registry",
        KAFKA_SASL_PASSWORD="s3cret-kafka-password",
        KAFKA_SSL_CA_FILE=str(ca),
    )
    for client, arguments in (await clients_made(settings)).items():
        context = arguments.pop("ssl_context")
        assert arguments == {
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": mechanism,
            "sasl_plain_username": "svc-registry",
            "sasl_plain_password": "s3cret-kafka-password",
        }, client
        assert isinstance(context, ssl.SSLContext), client
        assert context.verify_mode == ssl.CERT_REQUIRED, client
        assert context.check_hostname, client
        issuers = [dict(x[0] for x in ca_cert["subject"]) for ca_cert in context.get_ca_certs()]
        assert {"commonName": CA_NAME} in issuers, client


async def test_sasl_plaintext_has_no_tls(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_from_env(
        monkeypatch,
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        KAFKA_SASL_USERNAME="u",
        KAFKA_SASL_PASSWORD="p",
    )
    for client, arguments in (await clients_made(settings)).items():
        assert arguments["security_protocol"] == "SASL_PLAINTEXT", client
        assert arguments["sasl_mechanism"] == "SCRAM-SHA-256", client
        assert (arguments["sasl_plain_username"], arguments["sasl_plain_password"]) == ("u", "p")
        assert arguments["ssl_context"] is None, client


async def test_ssl_without_a_ca_file_verifies_against_the_system_cas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_from_env(monkeypatch, KAFKA_SECURITY_PROTOCOL="SSL")
    for client, arguments in (await clients_made(settings)).items():
        assert arguments["security_protocol"] == "SSL", client
        assert arguments["sasl_plain_password"] is None, client
        context = arguments["ssl_context"]
        assert isinstance(context, ssl.SSLContext), client
        assert context.verify_mode == ssl.CERT_REQUIRED, client


async def test_unset_means_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PROTOCOL", "MECHANISM", "USERNAME", "PASSWORD", "CA_FILE"):
        monkeypatch.delenv(f"KAFKA_SECURITY_{name}", raising=False)
        monkeypatch.delenv(f"KAFKA_SASL_{name}", raising=False)
    monkeypatch.delenv("KAFKA_SSL_CA_FILE", raising=False)
    for client, arguments in (await clients_made(settings_from_env(monkeypatch))).items():
        assert arguments["security_protocol"] == "PLAINTEXT", client
        assert arguments["ssl_context"] is None, client


@pytest.mark.parametrize(
    "env",
    [
        {"KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "KAFKA_SASL_MECHANISM": "PLAIN"},
        {
            "KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
            "KAFKA_SASL_USERNAME": "u",
            "KAFKA_SASL_PASSWORD": "p",
        },
        {"KAFKA_SECURITY_PROTOCOL": "TLS"},
        {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_FILE": "/nonexistent/ca.pem"},
    ],
)
def test_incomplete_or_wrong_settings_stop_the_service(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    with pytest.raises(ValidationError):
        settings_from_env(monkeypatch, **env)


CLIENT_CLASSES = re.compile(
    r"\b(AIOKafkaConsumer|AIOKafkaProducer|AIOKafkaAdminClient|KafkaBroker)\("
)


def test_services_make_kafka_clients_only_through_the_secured_factories() -> None:
    """A client made elsewhere would connect without the security settings."""
    allowed = {
        ROOT / "libs/common/src/reelpolicy_common/kafka.py",
        ROOT / "libs/common/src/reelpolicy_common/runtime.py",
    }
    sources = [*ROOT.glob("libs/*/src/**/*.py"), *ROOT.glob("services/*/src/**/*.py")]
    assert len(sources) > 50
    elsewhere = [
        f"{path.relative_to(ROOT)}: {match[0]}"
        for path in sources
        if path not in allowed
        for match in CLIENT_CLASSES.finditer(path.read_text(encoding="utf-8"))
    ]
    assert elsewhere == []
