"""Email over SMTP with aiosmtplib: a text part and an HTML part, the unsubscribe headers
of RFC 2369 / RFC 8058, and relays that need login over TLS.

Header values are folded onto one line first: a subject built from a policy title
with a line break would otherwise be refused by the mail library's header-injection
guard (``ValueError``), and the alert never sent.
"""

from __future__ import annotations

import ssl
import time
import uuid
from email.message import EmailMessage

import aiosmtplib

from reelpolicy_notify.domain.records import SendResult
from reelpolicy_notify.domain.unsubscribe import unsubscribe_token


def one_line(value: str) -> str:
    """``value`` with its line breaks (every separator ``str.splitlines`` knows, as the
    mail library refuses them all) folded into single spaces."""
    return " ".join(part.strip() for part in value.splitlines() if part.strip())


class SmtpEmailSender:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        sender: str,
        timeout: float,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        implicit_tls: bool = False,
        ca_file: str | None = None,
        public_base_url: str = "http://127.0.0.1:8004",
        unsubscribe_key: bytes = b"",
    ) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._timeout = timeout
        self._username = username
        self._password = password
        # False: aiosmtplib's default, which upgrades when the server offers STARTTLS.
        self._starttls: bool | None = True if starttls else None
        self._implicit_tls = implicit_tls
        self._tls_context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self._base_url = public_base_url.rstrip("/")
        self._unsubscribe_key = unsubscribe_key

    def unsubscribe_url(self, subscription_id: uuid.UUID) -> str:
        token = unsubscribe_token(subscription_id, key=self._unsubscribe_key)
        return f"{self._base_url}/unsubscribe/{token}"

    async def send(
        self,
        to: str,
        *,
        subject: str,
        text: str,
        html: str | None = None,
        headers: dict[str, str],
    ) -> SendResult:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = one_line(subject)
        for name, value in headers.items():
            message[name] = one_line(value)
        message.set_content(text)
        if html is not None:
            message.add_alternative(html, subtype="html")
        started = time.perf_counter()
        try:
            await aiosmtplib.send(
                message,
                hostname=self._host,
                port=self._port,
                timeout=self._timeout,
                username=self._username,
                password=self._password,
                use_tls=self._implicit_tls,
                start_tls=self._starttls,
                tls_context=self._tls_context,
            )
        except aiosmtplib.SMTPResponseException as exc:
            code = exc.code
            # 5xx SMTP answers (a refused login among them) are permanent (reported as
            # 400: not retried); 4xx are transient.
            return SendResult(
                400 if code >= 500 else 503,
                int((time.perf_counter() - started) * 1000),
                error=f"SMTP {code}: {exc.message}"[:500],
            )
        except (aiosmtplib.SMTPException, OSError) as exc:
            return SendResult(
                None,
                int((time.perf_counter() - started) * 1000),
                error=f"{type(exc).__name__}: {exc}"[:500],
            )
        return SendResult(250, int((time.perf_counter() - started) * 1000))
