"""Email over SMTP with aiosmtplib."""

from __future__ import annotations

import time
from email.message import EmailMessage

import aiosmtplib

from reelpolicy_notify.domain.records import SendResult


class SmtpEmailSender:
    def __init__(self, *, host: str, port: int, sender: str, timeout: float) -> None:
        self._host = host
        self._port = port
        self._sender = sender
        self._timeout = timeout

    async def send(
        self, to: str, *, subject: str, text: str, headers: dict[str, str]
    ) -> SendResult:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = to
        message["Subject"] = subject
        for name, value in headers.items():
            message[name] = value
        message.set_content(text)
        started = time.perf_counter()
        try:
            await aiosmtplib.send(
                message, hostname=self._host, port=self._port, timeout=self._timeout
            )
        except aiosmtplib.SMTPResponseException as exc:
            code = exc.code
            # 5xx SMTP answers are permanent (reported as 400: not retried); 4xx are transient.
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
