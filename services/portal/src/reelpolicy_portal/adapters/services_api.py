"""The other services' public HTTP APIs (httpx), with the signed-in company's key.

Registry: who a key is, enterprises and productions (merge patch with ``If-Match``),
sign-in links and key revocation; rules: eligibility and its history; ingest: the
policy documents and their versions; notify: subscriptions and deliveries.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from reelpolicy_portal.domain.errors import (
    InputRejectedError,
    KeyRefusedError,
    NotFoundError,
    ServiceUnavailableError,
    VersionConflictError,
)
from reelpolicy_portal.domain.sessions import Identity
from reelpolicy_portal.domain.simulation import DraftRejectedError

RESOURCES = {"enterprise": "/v1/enterprises", "production": "/v1/productions"}
POLICY_FETCHES = 8
"""Policy documents fetched at once when the catalog is listed."""
TITLES_SECONDS = 60.0
"""How long the policies' titles are reused: every open eligibility page asks for its
rows every few seconds, and the titles change only with a new policy version."""


def _bearer(api_key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key}"}


def _problem_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    if not isinstance(body, dict):
        return f"HTTP {response.status_code}"
    parts = [str(body.get("detail") or body.get("title") or f"HTTP {response.status_code}")]
    for error in body.get("errors") or []:
        if isinstance(error, dict) and error.get("message"):
            parts.append(f"{error.get('field', '')}: {error['message']}".strip(": "))
    return "; ".join(parts)


def _check(response: httpx.Response, *, keys_source: bool = True) -> httpx.Response:
    """The answer, or the exception its status means. Only the registry, where keys are
    issued and revoked, says a key is refused: the others learn of a new key by an event,
    so their 401 for a key issued a moment ago means "not yet", not "signed out"."""
    status = response.status_code
    if status < 300:
        return response
    if status == 401:
        if not keys_source:
            raise ServiceUnavailableError(f"{response.request.url.host}: key not known yet")
        raise KeyRefusedError()
    if status in (403, 404):
        raise NotFoundError()
    if status >= 500:
        raise ServiceUnavailableError(f"{response.request.url.host}: HTTP {status}")
    raise InputRejectedError(_problem_detail(response))


class ServicesApi:
    """One connection pool per service; ``aclose`` on shutdown."""

    def __init__(
        self,
        *,
        registry_url: str,
        rules_url: str,
        ingest_url: str,
        notify_url: str,
        timeout: float,
        transports: dict[str, httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        def client(name: str, url: str) -> httpx.AsyncClient:
            transport = (transports or {}).get(name)
            return httpx.AsyncClient(base_url=url, timeout=timeout, transport=transport)

        self.registry = client("registry", registry_url)
        self.rules = client("rules", rules_url)
        self.ingest = client("ingest", ingest_url)
        self.notify = client("notify", notify_url)
        self._titles: dict[str, dict[str, str]] = {}
        self._titles_at = -TITLES_SECONDS

    async def aclose(self) -> None:
        for c in (self.registry, self.rules, self.ingest, self.notify):
            await c.aclose()

    async def _call(
        self, client: httpx.AsyncClient, method: str, path: str, **kwargs: Any
    ) -> httpx.Response:
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"{client.base_url.host}: {type(exc).__name__}") from exc
        return _check(response, keys_source=client is self.registry)

    async def identify(self, api_key: str) -> Identity:
        """An operator key may list the API keys; a company key is refused (403) and
        lists only its own enterprise."""
        try:
            response = await self.registry.get("/v1/api-keys", headers=_bearer(api_key))
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"registry: {type(exc).__name__}") from exc
        if response.status_code == 200:
            return Identity("operator", None)
        if response.status_code != 403:
            _check(response)
        own = await self._call(
            self.registry, "GET", "/v1/enterprises", headers=_bearer(api_key), params={"limit": 1}
        )
        items = own.json()["items"]
        if not items:  # a company key whose enterprise was deleted
            raise KeyRefusedError()
        return Identity("company", str(items[0]["id"]))

    async def redeem_link(self, token: str) -> tuple[str, str, str]:
        response = await self._call(
            self.registry, "POST", "/v1/portal-links/redeem", json={"token": token}
        )
        body = response.json()
        return str(body["enterprise_id"]), str(body["api_key"]), str(body["key_id"])

    async def revoke_key(self, api_key: str, key_id: str) -> None:
        await self._call(
            self.registry, "DELETE", f"/v1/api-keys/{key_id}", headers=_bearer(api_key)
        )

    async def enterprise(self, api_key: str, enterprise_id: str) -> dict[str, Any]:
        record, _ = await self.record(api_key, "enterprise", enterprise_id)
        return record

    async def productions(self, api_key: str, enterprise_id: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {"enterprise_id": enterprise_id, "limit": 500}
        while True:
            response = await self._call(
                self.registry, "GET", "/v1/productions", headers=_bearer(api_key), params=params
            )
            page = response.json()
            items.extend(page["items"])
            if not page.get("next_cursor"):
                return items
            params["cursor"] = page["next_cursor"]

    async def record(
        self, api_key: str, subject_type: str, subject_id: str
    ) -> tuple[dict[str, Any], str]:
        response = await self._call(
            self.registry,
            "GET",
            f"{RESOURCES[subject_type]}/{subject_id}",
            headers=_bearer(api_key),
        )
        return response.json(), response.headers.get("ETag", "")

    async def patch_record(
        self,
        api_key: str,
        subject_type: str,
        subject_id: str,
        patch: dict[str, Any],
        *,
        etag: str,
    ) -> dict[str, Any]:
        path = f"{RESOURCES[subject_type]}/{subject_id}"
        headers = {**_bearer(api_key), "If-Match": etag}
        try:
            response = await self.registry.patch(path, json=patch, headers=headers)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"registry: {type(exc).__name__}") from exc
        if response.status_code == 412:
            current, _ = await self.record(api_key, subject_type, subject_id)
            raise VersionConflictError(current)
        body: dict[str, Any] = _check(response).json()
        return body

    async def eligibility(self, api_key: str, enterprise_id: str) -> list[dict[str, Any]]:
        response = await self._call(
            self.rules,
            "GET",
            "/v1/eligibility",
            headers=_bearer(api_key),
            params={"enterprise_id": enterprise_id, "include_ineligible": "true"},
        )
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def history(self, api_key: str, subject_id: str, policy_id: str) -> list[dict[str, Any]]:
        response = await self._call(
            self.rules,
            "GET",
            f"/v1/eligibility/{subject_id}/{policy_id}/history",
            headers=_bearer(api_key),
        )
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def _summaries(self, api_key: str) -> list[dict[str, Any]]:
        summaries: list[dict[str, Any]] = []
        params: dict[str, Any] = {"limit": 500}
        while True:
            response = await self._call(
                self.ingest, "GET", "/v1/policies", headers=_bearer(api_key), params=params
            )
            page = response.json()
            summaries.extend(s for s in page["items"] if not s.get("revoked"))
            if not page.get("next_cursor"):
                return summaries
            params["cursor"] = page["next_cursor"]

    async def policy_titles(self, api_key: str) -> dict[str, dict[str, str]]:
        """Policy id → its title ({"zh", "en"}); the same for every key that may read
        policies (any key), so one copy serves every session for a minute."""
        now = time.monotonic()
        if now - self._titles_at >= TITLES_SECONDS:
            summaries = await self._summaries(api_key)
            self._titles = {str(s["id"]): dict(s["title"]) for s in summaries}
            self._titles_at = now
        return self._titles

    async def policies(self, api_key: str) -> list[dict[str, Any]]:
        summaries = await self._summaries(api_key)
        limit = asyncio.Semaphore(POLICY_FETCHES)

        async def document(summary: dict[str, Any]) -> dict[str, Any]:
            async with limit:
                doc = await self.policy_version(api_key, summary["id"], int(summary["version"]))
            return {**doc, "version": int(summary["version"])}

        return list(await asyncio.gather(*(document(s) for s in summaries)))

    async def policy_version(self, api_key: str, policy_id: str, version: int) -> dict[str, Any]:
        response = await self._call(
            self.ingest,
            "GET",
            f"/v1/policies/{policy_id}/versions/{version}",
            headers=_bearer(api_key),
        )
        body: dict[str, Any] = response.json()
        return body

    # Alerts (notify) and the operator's pages (notify, rules, the services' /metrics)

    async def _pages(
        self, client: httpx.AsyncClient, path: str, api_key: str, params: dict[str, Any]
    ) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        params = {"limit": 500, **params}
        while True:
            response = await self._call(
                client, "GET", path, headers=_bearer(api_key), params=params
            )
            page = response.json()
            items.extend(page["items"])
            if not page.get("next_cursor"):
                return items
            params["cursor"] = page["next_cursor"]

    async def subscriptions(
        self, api_key: str, enterprise_id: str | None = None
    ) -> list[dict[str, Any]]:
        params = {} if enterprise_id is None else {"enterprise_id": enterprise_id}
        return await self._pages(self.notify, "/v1/subscriptions", api_key, params)

    async def subscription(self, api_key: str, subscription_id: str) -> dict[str, Any]:
        response = await self._call(
            self.notify, "GET", f"/v1/subscriptions/{subscription_id}", headers=_bearer(api_key)
        )
        body: dict[str, Any] = response.json()
        return body

    async def create_subscription(self, api_key: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self._call(
            self.notify, "POST", "/v1/subscriptions", headers=_bearer(api_key), json=body
        )
        created: dict[str, Any] = response.json()
        return created

    async def change_subscription(
        self, api_key: str, subscription_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]:
        response = await self._call(
            self.notify,
            "PATCH",
            f"/v1/subscriptions/{subscription_id}",
            headers=_bearer(api_key),
            json=changes,
        )
        body: dict[str, Any] = response.json()
        return body

    async def delete_subscription(self, api_key: str, subscription_id: str) -> None:
        await self._call(
            self.notify, "DELETE", f"/v1/subscriptions/{subscription_id}", headers=_bearer(api_key)
        )

    async def rotate_secret(self, api_key: str, subscription_id: str) -> dict[str, Any]:
        response = await self._call(
            self.notify,
            "POST",
            f"/v1/subscriptions/{subscription_id}/rotate-secret",
            headers=_bearer(api_key),
        )
        body: dict[str, Any] = response.json()
        return body

    async def send_test(self, api_key: str, subscription_id: str) -> str:
        response = await self._call(
            self.notify,
            "POST",
            f"/v1/subscriptions/{subscription_id}/test",
            headers=_bearer(api_key),
        )
        return str(response.json()["delivery_id"])

    async def deliveries(
        self,
        api_key: str,
        *,
        subscription_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """The newest ``limit`` deliveries (one page of notify's log)."""
        params: dict[str, Any] = {"limit": limit}
        if subscription_id is not None:
            params["subscription_id"] = subscription_id
        if status is not None:
            params["status"] = status
        response = await self._call(
            self.notify, "GET", "/v1/deliveries", headers=_bearer(api_key), params=params
        )
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def replay_delivery(self, api_key: str, delivery_id: str) -> dict[str, Any]:
        response = await self._call(
            self.notify,
            "POST",
            f"/v1/deliveries/{delivery_id}/replay",
            headers=_bearer(api_key),
        )
        body: dict[str, Any] = response.json()
        return body

    async def simulate(self, api_key: str, draft: bytes) -> dict[str, Any]:
        """Rules' answer for a draft (JSON); its 400/422 problems become the form's errors."""
        headers = {**_bearer(api_key), "Content-Type": "application/json"}
        try:
            response = await self.rules.post("/v1/simulate", content=draft, headers=headers)
        except httpx.HTTPError as exc:
            raise ServiceUnavailableError(f"rules: {type(exc).__name__}") from exc
        if response.status_code in (400, 422):
            body = response.json()
            problems = [
                (str(e.get("field") or "draft"), str(e.get("message") or ""))
                for e in body.get("errors") or []
            ] or [("draft", str(body.get("detail") or body.get("title")))]
            raise DraftRejectedError(problems)
        result: dict[str, Any] = _check(response).json()
        return result

    async def dead_letters(self) -> dict[str, dict[str, int]]:
        """``reelpolicy_dead_letters_waiting`` by original topic, as each service reports
        it on its ``/metrics`` (the services expose no dead letters on their APIs)."""
        found: dict[str, dict[str, int]] = {}
        for name, client in (
            ("registry", self.registry),
            ("ingest", self.ingest),
            ("rules", self.rules),
            ("notify", self.notify),
        ):
            response = await self._call(client, "GET", "/metrics")
            waiting: dict[str, int] = {}
            for family in text_string_to_metric_families(response.text):
                if family.name != "reelpolicy_dead_letters_waiting":
                    continue
                for sample in family.samples:
                    waiting[sample.labels.get("topic", "")] = int(sample.value)
            found[name] = waiting
        return found
