"""A local SMTP sink (aiosmtpd) for ``make up``: each message becomes a file."""

from __future__ import annotations

import email.policy
import time
from dataclasses import dataclass
from email import message_from_bytes
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller


class _SaveToFolder:
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = message_from_bytes(envelope.content, policy=email.policy.default)
        name = f"{time.time_ns()}-{(message['To'] or 'unknown').replace('@', '_at_')}.eml"
        (self.folder / name).write_bytes(envelope.content)
        return "250 Message accepted for delivery"


@dataclass
class MailSink:
    controller: Controller
    folder: Path
    port: int

    @classmethod
    def start(cls, folder: Path, *, port: int = 1025) -> MailSink:
        folder.mkdir(parents=True, exist_ok=True)
        controller = Controller(_SaveToFolder(folder), hostname="127.0.0.1", port=port)
        controller.start()
        return cls(controller, folder, port)

    def stop(self) -> None:
        self.controller.stop()
