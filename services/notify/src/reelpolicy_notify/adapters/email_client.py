"""Email over SMTP with aiosmtplib.

Header values are folded onto one line first: a subject built from a policy title
with a line break would otherwise be refused by the mail library's header-injection
guard (``ValueError``), and the alert never sent.
"""

from __future__ import annotations

import time
from email.message import EmailMessage

import aiosmtplib

from reelpolicy_notify.domain.records import SendResult


def one_line(value: str) -> str:
    """``value`` with its line breaks (every separator ``str.splitlines`` knows, as the
    mail library refuses them all) folded into single spaces."""
    return " ".join(part.strip() for part in value.splitlines() if part.strip())


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
        message["Subject"] = one_line(subject)
        for name, value in headers.items():
            message[name] = one_line(value)
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
