"""A webhook receiver with fault modes, for the chaos run.

It answers on 127.0.0.1 and records every request it gets: path, headers (lower-case
names), body, and what it answered. Faults: answer 500 for a while, hold requests past
the sender's timeout for a while (recorded with status :data:`NO_ANSWER`), and answer
410 Gone for chosen paths from some moment on. Each request is also written as one
JSON line to the log file, with the time it arrived.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Literal

Mode = Literal["ok", "error", "timeout"]
NO_ANSWER = 0
"""The status recorded for a request held until the sender gave up: it saw no answer."""


@dataclass(frozen=True)
class ReceivedRequest:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    received_at: float


@dataclass
class ChaosReceiver:
    log_path: Path
    hold_seconds: float = 8.0
    mode: Mode = "ok"
    gone_paths: set[str] = field(default_factory=set)
    requests: list[ReceivedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._log = open(self.log_path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                status = receiver._answer_for(self.path)
                receiver._record(self.path, dict(self.headers.items()), body, status)
                if status == NO_ANSWER:
                    time.sleep(receiver.hold_seconds)
                    self.close_connection = True
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    # faults -------------------------------------------------------------------------------
    def set_mode(self, mode: Mode) -> None:
        self.mode = mode

    def make_gone(self, path: str) -> None:
        """``path`` answers 410 Gone from now on (the endpoint was deleted)."""
        with self._lock:
            self.gone_paths.add(path)

    # records ------------------------------------------------------------------------------
    def snapshot(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self.requests)

    def _answer_for(self, path: str) -> int:
        with self._lock:
            if path in self.gone_paths:
                return 410
        if self.mode == "error":
            return 500
        if self.mode == "timeout":
            return NO_ANSWER
        return 200

    def _record(self, path: str, headers: dict[str, str], body: bytes, status: int) -> None:
        request = ReceivedRequest(
            path=path,
            headers={k.lower(): v for k, v in headers.items()},
            body=body,
            status=status,
            received_at=time.time(),
        )
        line = {
            "at": request.received_at,
            "path": path,
            "status": status,
            "webhook-id": request.headers.get("webhook-id"),
            "body": _text(body),
        }
        with self._lock:
            self.requests.append(request)
            self._log.write(json.dumps(line, ensure_ascii=False) + "\n")
            self._log.flush()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            self._log.close()


def _text(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(body).decode()
