"""Stand-ins for the WeCom, DingTalk and Feishu group-robot webhooks, on 127.0.0.1.

Each checks a request the way its platform documents it, independently of notify's
signing code, and answers as the platform does: HTTP 200 with a JSON result code, 0 when
it took the message. A wrong or missing signature is refused with the platform's code
(DingTalk 310000 "sign not match", Feishu 19021 "sign match fail"); ``codes`` scripts
the answers to messages that pass (then 0).

- DingTalk: query ``timestamp`` (ms) and ``sign``; the sign is
  urlEncode(base64(HmacSHA256(key=secret, "timestamp\\nsecret"))), checked by computing
  it and comparing with the query value once URL-decoded (which must be percent-encoded
  where base64 has '+', '/' or '='), and the timestamp within an hour of now.
- Feishu: body ``timestamp`` (s) and ``sign``; the sign is
  base64(HmacSHA256(key="timestamp\\nsecret", empty message)).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class RobotCall:
    target: str  # path and query as sent
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def query(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(urlsplit(self.target).query).items()}


def _dingtalk_signature_ok(call: RobotCall, secret: str) -> bool:
    raw = dict(p.partition("=")[::2] for p in urlsplit(call.target).query.split("&"))
    # URL-encoded as documented: base64's '+', '/' and '=' travel as %2B, %2F, %3D (a
    # bare '+' would be read as a space)
    if not re.fullmatch(r"[A-Za-z0-9%]+", raw.get("sign", "")):
        return False
    query = call.query  # parse_qs URL-decodes the values once
    stamp, sign = query.get("timestamp", ""), query.get("sign", "")
    if not stamp.isdigit() or abs(int(stamp) - time.time() * 1000) > 3600 * 1000:
        return False
    mac = hmac.new(secret.encode("utf-8"), f"{stamp}\n{secret}".encode(), hashlib.sha256)
    return hmac.compare_digest(base64.b64encode(mac.digest()).decode(), sign)


def _feishu_signature_ok(call: RobotCall, secret: str) -> bool:
    body = call.json()
    stamp, sign = str(body.get("timestamp", "")), body.get("sign", "")
    if not stamp.isdigit() or abs(int(stamp) - time.time()) > 3600:
        return False
    mac = hmac.new(f"{stamp}\n{secret}".encode(), b"", hashlib.sha256)
    return hmac.compare_digest(base64.b64encode(mac.digest()).decode(), str(sign))


@dataclass
class RobotReceiver:
    """A group robot of ``platform`` ("wecom", "dingtalk", "feishu") with ``secret``."""

    platform: str
    secret: str | None = None
    codes: list[int] = field(default_factory=list)
    calls: list[RobotCall] = field(default_factory=list)
    refused_signatures: int = 0
    port: int = 0
    _server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        base = f"http://127.0.0.1:{self.port}"
        if self.platform == "wecom":
            return f"{base}/cgi-bin/webhook/send?key=693a91f6-0000-4bc4-97a0-0ec2sifa5aaa"
        if self.platform == "dingtalk":
            return f"{base}/robot/send?access_token=abc123"
        return f"{base}/open-apis/bot/v2/hook/0e2c5a8b-0000-0000-0000-000000000000"

    async def start(self) -> RobotReceiver:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1)

    def _signature_ok(self, call: RobotCall) -> bool:
        if self.secret is None or self.platform == "wecom":
            return True
        if self.platform == "dingtalk":
            return _dingtalk_signature_ok(call, self.secret)
        return _feishu_signature_ok(call, self.secret)

    def _answer(self, call: RobotCall) -> dict[str, Any]:
        if not self._signature_ok(call):
            self.refused_signatures += 1
            if self.platform == "dingtalk":
                return {"errcode": 310000, "errmsg": "sign not match"}
            return {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}
        code = self.codes.pop(0) if self.codes else 0
        if self.platform == "feishu":
            return {"code": code, "msg": "success" if code == 0 else "refused", "data": {}}
        return {"errcode": code, "errmsg": "ok" if code == 0 else "refused"}

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while request_line := await reader.readline():
                target = request_line.decode().split(" ")[1]
                headers: dict[str, str] = {}
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                call = RobotCall(target, headers, body)
                self.calls.append(call)
                answer = json.dumps(self._answer(call)).encode()
                head = (
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    f"content-length: {len(answer)}\r\n\r\n"
                )
                writer.write(head.encode() + answer)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
