"""Alert e-mails for people: both parts in the subscription's locale, one-click
unsubscribe (RFC 8058), subscription locales in the API, and relays that need a login
over TLS (a local aiosmtpd with a self-signed certificate made here)."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import ssl
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from notify_app import RunningNotify, prepare, running_notify, settled
from notify_events import eligibility_event, produce_eligibility
from pydantic import ValidationError
from scripted_receiver import Receiver

from reelpolicy_devstack.servers import free_port
from reelpolicy_notify.adapters.email_client import SmtpEmailSender
from reelpolicy_notify.config import Settings
from reelpolicy_notify.domain.unsubscribe import subscription_of_token, unsubscribe_token
from service_harness import SEALING_KEYS, SECRET_KEY, eventually

USER, PASSWORD = "relay-user", "relay-password-7f3a"


@dataclass
class Inbox:
    """What a local SMTP server received, and whether each session was on TLS and logged in."""

    messages: list[EmailMessage] = field(default_factory=list)
    sessions: list[tuple[bool, Any]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        on_tls = server.transport.get_extra_info("ssl_object") is not None
        self.sessions.append((on_tls, session.authenticated))
        return "250 OK"


def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (it is its own CA): cert and key paths."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "relay.pem", tmp_path / "relay.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def server_context(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    return context


def login_over_starttls(certificate: tuple[Path, Path]) -> dict[str, Any]:
    """A relay that requires STARTTLS, then a login (``authenticator``)."""
    return {
        "tls_context": server_context(certificate),
        "require_starttls": True,
        "auth_required": True,
        "authenticator": authenticator,
    }


@contextlib.contextmanager
def smtp_server(inbox: Inbox, **options: Any) -> Iterator[int]:
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, **options)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


@contextlib.asynccontextmanager
async def notify_with_smtp(
    fresh_database: str, bootstrap_servers: str, port: int, **smtp: Any
) -> AsyncIterator[RunningNotify]:
    await prepare(fresh_database, bootstrap_servers)
    async with running_notify(
        fresh_database,
        bootstrap_servers,
        smtp_host="127.0.0.1",
        smtp_port=port,
        notify_public_base_url="https://notify.example.com",
        **smtp,
    ) as notify:
        yield notify


async def email_subscription(
    notify: RunningNotify, enterprise_id: str, **body: Any
) -> tuple[Any, dict[str, Any]]:
    client = notify.client(await notify.key(enterprise_id=enterprise_id))
    response = await client.post(
        "/v1/subscriptions",
        json={
            "channel": "email",
            "email": "ops@example.com",
            "events": ["eligibility.changed"],
            **body,
        },
    )
    assert response.status_code == 201, response.text
    return client, response.json()


def parts(message: EmailMessage) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    return text.get_content(), html.get_content()


def enterprise() -> str:
    return f"ent-{uuid.uuid4().hex[:10]}"


@pytest.mark.servers
async def test_an_alert_email_has_both_parts_and_its_link_unsubscribes(
    fresh_database: str, bootstrap_servers: str
) -> None:
    inbox = Inbox()
    watcher = await Receiver().start()
    try:
        with smtp_server(inbox) as port:
            async with notify_with_smtp(fresh_database, bootstrap_servers, port) as notify:
                ent = enterprise()
                client, sub = await email_subscription(notify, ent)
                assert sub["locale"] == "zh-CN"
                await client.post(
                    "/v1/subscriptions",
                    json={
                        "channel": "webhook",
                        "url": watcher.url,
                        "events": ["eligibility.changed"],
                    },
                )
                await produce_eligibility(
                    notify.bootstrap, eligibility_event(ent, policy_id="p-1", amount=3_000_000)
                )
                await settled(client, 2)
                [mail] = inbox.messages
                assert mail["To"] == "ops@example.com"
                assert mail["Subject"].startswith("资格变化")
                text, html = parts(mail)
                assert "¥3,000,000" in text
                assert "¥3,000,000" in html
                assert '<html lang="zh-CN">' in html

                link = mail["List-Unsubscribe"]
                assert link.startswith("<https://notify.example.com/unsubscribe/")
                assert link.endswith(">")
                assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
                url = link[1:-1]
                assert url in text
                assert f'href="{url}"' in html
                path = urlsplit(url).path
                anonymous = notify.client("")

                page = await anonymous.get(path)  # a GET changes nothing (RFC 8058)
                assert page.status_code == 200
                assert "确认退订" in page.text
                token = path.rsplit("/", 1)[1]  # the form posts back to the same link
                assert f'<form method="post" action="{token}">' in page.text
                state = (await client.get(f"/v1/subscriptions/{sub['id']}")).json()
                assert state["enabled"] is True

                for _ in range(2):  # one-click POST, then again: idempotent
                    done = await anonymous.post(
                        path,
                        content="List-Unsubscribe=One-Click",
                        headers={"Content-Type": "application/x-www-form-urlencoded"},
                    )
                    assert done.status_code == 200
                    assert "已退订" in done.text
                state = (await client.get(f"/v1/subscriptions/{sub['id']}")).json()
                assert state["enabled"] is False
                assert "unsubscribed" in state["disabled_reason"]

                forged = path[:-4] + ("AAAA" if not path.endswith("AAAA") else "BBBB")
                assert (await anonymous.post(forged)).status_code == 404
                assert (await anonymous.get("/unsubscribe/not-a-token")).status_code == 404

                # The next alert reaches the webhook, and no e-mail follows it.
                await produce_eligibility(notify.bootstrap, eligibility_event(ent, policy_id="p-2"))
                await eventually(lambda: len(watcher.requests) == 2, timeout=20)
                await settled(client, 3)
                assert len(inbox.messages) == 1
    finally:
        await watcher.stop()


@pytest.mark.servers
async def test_an_english_subscription_gets_english_mail_and_can_switch(
    fresh_database: str, bootstrap_servers: str
) -> None:
    inbox = Inbox()
    with smtp_server(inbox) as port:
        async with notify_with_smtp(fresh_database, bootstrap_servers, port) as notify:
            ent = enterprise()
            client, sub = await email_subscription(notify, ent, locale="en")
            assert sub["locale"] == "en"
            await produce_eligibility(
                notify.bootstrap, eligibility_event(ent, policy_id="p-1", amount=1_250_000)
            )
            await settled(client, 1)
            [mail] = inbox.messages
            assert mail["Subject"].startswith("Eligibility changed")
            text, _ = parts(mail)
            assert "is now eligible" in text
            assert "CN¥1,250,000" in text

            path = f"/v1/subscriptions/{sub['id']}"
            switched = await client.patch(path, json={"locale": "zh-CN"})
            assert switched.status_code == 200
            assert (await client.get(path)).json()["locale"] == "zh-CN"
            refused = await client.patch(path, json={"locale": "fr"})
            assert refused.status_code == 422
            assert "locale" in refused.text
            created = await client.post(
                "/v1/subscriptions",
                json={"channel": "email", "email": "a@b.c", "events": ["policy.changed"],
                      "locale": "zh_CN"},
            )  # fmt: skip
            assert created.status_code == 422
            assert "locale" in created.text


@pytest.mark.servers
async def test_a_relay_requiring_login_over_starttls(
    fresh_database: str, bootstrap_servers: str, certificate: tuple[Path, Path]
) -> None:
    inbox = Inbox()
    with smtp_server(inbox, **login_over_starttls(certificate)) as port:
        async with notify_with_smtp(
            fresh_database,
            bootstrap_servers,
            port,
            smtp_username=USER,
            smtp_password=PASSWORD,
            smtp_starttls=True,
            smtp_ca_file=str(certificate[0]),
        ) as notify:
            ent = enterprise()
            client, _ = await email_subscription(notify, ent)
            await produce_eligibility(notify.bootstrap, eligibility_event(ent))
            [delivery] = await settled(client, 1)
            assert delivery["status"] == "succeeded", delivery
            assert inbox.sessions == [(True, True)]  # on TLS, logged in


@pytest.mark.servers
async def test_a_wrong_relay_password_is_a_failed_delivery_with_the_reason(
    fresh_database: str, bootstrap_servers: str, certificate: tuple[Path, Path]
) -> None:
    inbox = Inbox()
    with smtp_server(inbox, **login_over_starttls(certificate)) as port:
        async with notify_with_smtp(
            fresh_database,
            bootstrap_servers,
            port,
            smtp_username=USER,
            smtp_password="not-the-password",
            smtp_starttls=True,
            smtp_ca_file=str(certificate[0]),
        ) as notify:
            ent = enterprise()
            client, _ = await email_subscription(notify, ent)
            await produce_eligibility(notify.bootstrap, eligibility_event(ent))
            [delivery] = await settled(client, 1)
            assert delivery["status"] == "failed"
            [attempt] = delivery["attempts"]  # 535 is permanent: not retried
            assert "SMTP 535" in attempt["error"]
            assert "not-the-password" not in str(delivery)
            assert inbox.messages == []


# aiosmtpd counts only STARTTLS as TLS and warns about AUTH on this implicit-TLS listener
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_implicit_tls_and_a_certificate_the_client_does_not_trust(
    certificate: tuple[Path, Path],
) -> None:
    inbox = Inbox()
    port = free_port()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        ssl_context=server_context(certificate),
        auth_required=True,
        # aiosmtpd only counts STARTTLS as TLS; this listener is TLS from the first byte
        auth_require_tls=False,
        authenticator=authenticator,
    )
    controller.start()
    try:
        common = {"host": "127.0.0.1", "port": port, "sender": "rp@example.com", "timeout": 10}
        login = {"username": USER, "password": PASSWORD, "implicit_tls": True}
        sent = await SmtpEmailSender(**common, **login, ca_file=str(certificate[0])).send(
            "ops@example.com", subject="s", text="t", html="<p>t</p>", headers={}
        )
        assert sent.status_code == 250, sent.error
        assert inbox.sessions == [(True, True)]
        # Without the CA the relay's certificate is refused: never sent in the clear.
        refused = await SmtpEmailSender(**common, **login).send(
            "ops@example.com", subject="s", text="t", headers={}
        )
        assert refused.status_code is None
        assert "CERTIFICATE_VERIFY_FAILED" in (refused.error or "")
        assert len(inbox.messages) == 1
    finally:
        controller.stop()


def test_smtp_settings_refuse_both_tls_modes_and_half_a_login() -> None:
    base = {
        "database_url": "postgresql://notify@127.0.0.1:1/notify",
        "kafka_bootstrap_servers": "127.0.0.1:1",
        "reelpolicy_secret_key": SECRET_KEY,
        "notify_sealing_keys": SEALING_KEYS,
    }
    with pytest.raises(ValidationError, match="SMTP_STARTTLS and SMTP_TLS"):
        Settings(**base, smtp_starttls=True, smtp_tls=True)
    with pytest.raises(ValidationError, match="SMTP_USERNAME and SMTP_PASSWORD") as refused:
        Settings(**base, smtp_password="hunter2-secret")
    assert "hunter2-secret" not in str(refused.value)
    settings = Settings(**base, smtp_username=USER, smtp_password="hunter2-secret", smtp_tls=True)
    assert "hunter2-secret" not in repr(settings)


def test_unsubscribe_tokens_name_one_subscription_and_cannot_be_forged() -> None:
    key = b"k" * 32
    first, second = uuid.uuid4(), uuid.uuid4()
    token = unsubscribe_token(first, key=key)
    assert subscription_of_token(token, key=key) == first
    assert subscription_of_token(token, key=b"other" * 8) is None
    assert subscription_of_token(unsubscribe_token(second, key=key), key=key) == second
    forged = unsubscribe_token(second, key=key)[:22] + token[22:]  # second's id, first's tag
    assert subscription_of_token(forged, key=key) is None
    for junk in ("", "!!!", token[:-2], token + "AA"):
        assert subscription_of_token(junk, key=key) is None
