"""A steady, bounded load on the platform's APIs for the chaos run.

Three loops: registry writes (create, patch with ``If-Match``, delete enterprises
and productions across regions, a few a second), new policy versions through ingest
that change many results (catalog documents with another threshold or amount), and
now and then a new subscription (webhooks on several receiver paths, e-mail to the
SMTP sink). A write that fails during a fault is dropped: the oracle reads the final
state, so an ambiguous write does not matter. ``changes_sent`` counts the writes the
platform accepted (2xx; a policy identical to its latest version is not a change).
"""

from __future__ import annotations

import asyncio
import copy
import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx
import yaml

from reelpolicy_datagen.registry_rows import REGION_WEIGHTS, enterprise_row, production_row
from reelpolicy_registry.domain.regions import counties_under

ROOT = Path(__file__).resolve().parents[2]
# Policies over wide regions (most demo companies are in Zhengzhou, Xi'an, Chongqing,
# Shanghai, Shenzhen, Fujian): a new version of one changes many results at once.
BULK_POLICIES = (
    "zz-industry-fund",
    "cq-one-stop-platform",
    "sz-project-subsidies",
    "fj-special-fund",
    "sh-overseas-distribution",
    "yp-new-enterprise-office",
)
EXTRA_CRITERIA: dict[str, list[dict[str, Any] | None]] = {
    "production": [
        None,
        {"field": "production.budget_cny", "op": "gte", "value": 400_000},
        {"field": "production.budget_cny", "op": "gte", "value": 800_000},
        {"field": "production.episodes", "op": "gte", "value": 60},
        {"field": "production.platforms", "op": "contains_any", "value": ["douyin"]},
    ],
    "enterprise": [
        None,
        {"field": "enterprise.employees", "op": "gte", "value": 10},
        {"field": "enterprise.registered_capital_cny", "op": "gte", "value": 500_000},
    ],
}
CAPPED_BASES = ("fixed", "up_to", "discretionary")
WEBHOOK_PATHS = ("/hooks/a", "/hooks/b", "/hooks/c")
GONE_PATH = "/hooks/gone"
PLATFORM_PATH = "/hooks/platform"
SUBSCRIBED_REGIONS = ("4101", "50", "4403", "35", "31")


@dataclass
class Record:
    id: str
    version: int
    enterprise_id: str | None = None
    region_code: str | None = None


class RegionPicker:
    """County codes weighted as the demo data's (``generate.REGION_WEIGHTS``)."""

    def __init__(self) -> None:
        self.prefixes = [prefix for prefix, _ in REGION_WEIGHTS]
        self.weights = [weight for _, weight in REGION_WEIGHTS]
        self.counties = {p: counties_under(p) or [p] for p in self.prefixes}

    def pick(self, rng: random.Random) -> str:
        return rng.choice(self.counties[rng.choices(self.prefixes, self.weights)[0]])


@dataclass
class Load:
    urls: dict[str, str]
    operator_key: str
    receiver_base_url: str
    rng: random.Random
    log: TextIO
    changes_sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    enterprises: dict[str, Record] = field(default_factory=dict)
    productions: dict[str, Record] = field(default_factory=dict)
    catalog: dict[str, dict[str, Any]] = field(default_factory=dict)
    serial: int = 0

    def __post_init__(self) -> None:
        self.http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {self.operator_key}"}, timeout=10
        )
        self.regions = RegionPicker()
        for name in BULK_POLICIES:
            self.catalog[name] = yaml.safe_load((ROOT / "catalog" / f"{name}.yaml").read_text())

    async def close(self) -> None:
        await self.http.aclose()

    # the requests -------------------------------------------------------------------------
    async def _send(self, kind: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        started = time.monotonic()
        try:
            response = await self.http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self._note(kind, type(exc).__name__, started)
            return None
        accepted = response.is_success and not (kind == "policy" and response.status_code == 200)
        if accepted:
            self.changes_sent += 1
        self._note(kind, str(response.status_code), started)
        return response

    def _note(self, kind: str, outcome: str, started: float) -> None:
        self.outcomes[f"{kind} {outcome}"] += 1
        elapsed = time.monotonic() - started
        self.log.write(f"{time.time():.3f} {kind} {outcome} {elapsed:.2f}s\n")

    # preparing ----------------------------------------------------------------------------
    async def prepare(self, *, timeout: float = 120.0) -> None:
        """Wait until the operator key works everywhere; learn the imported records."""
        deadline = time.monotonic() + timeout
        paths = {"registry": "enterprises", "ingest": "policies", "notify": "subscriptions"}
        while True:
            codes = []
            for service, path in paths.items():
                try:
                    got = await self.http.get(f"{self.urls[service]}/v1/{path}?limit=1")
                    codes.append(got.status_code)
                except httpx.HTTPError:
                    codes.append(0)
            if codes == [200, 200, 200]:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the operator key is not usable everywhere: {codes}")
            await asyncio.sleep(0.5)
        await self._learn("enterprises", self.enterprises)
        await self._learn("productions", self.productions)

    async def subscribe(self) -> None:
        """One platform-wide webhook, and enterprise webhooks (one path answers 410
        later) and e-mails for the busiest enterprises of the wide policies' regions."""
        await self._subscribe(None, "webhook", PLATFORM_PATH)
        owners = await self._owners_in(SUBSCRIBED_REGIONS)
        for n, enterprise in enumerate(owners):
            target = (*WEBHOOK_PATHS, GONE_PATH, "email")[n % 5]
            channel = "email" if target == "email" else "webhook"
            await self._subscribe(enterprise, channel, target)

    async def _learn(self, resource: str, into: dict[str, Record]) -> None:
        cursor: str | None = None
        while True:
            params = {"limit": "500", **({"cursor": cursor} if cursor else {})}
            page = await self.http.get(f"{self.urls['registry']}/v1/{resource}", params=params)
            page.raise_for_status()
            body = page.json()
            for item in body["items"]:
                into[item["id"]] = Record(
                    item["id"], item["version"], item.get("enterprise_id"), item.get("region_code")
                )
            cursor = body["next_cursor"]
            if not cursor:
                return

    async def _owners_in(self, prefixes: tuple[str, ...]) -> list[str]:
        """Two enterprises per region prefix among those owning the most productions."""
        owned = Counter(p.enterprise_id for p in self.productions.values())
        chosen: list[str] = []
        for prefix in prefixes:
            listed = await self.http.get(
                f"{self.urls['registry']}/v1/enterprises",
                params={"region_prefix": prefix, "limit": "500"},
            )
            ids = [e["id"] for e in listed.json()["items"]]
            chosen.extend(sorted(ids, key=lambda i: -owned[i])[:2])
        return chosen

    async def _subscribe(self, enterprise_id: str | None, channel: str, target: str) -> None:
        body: dict[str, Any] = {
            "enterprise_id": enterprise_id,
            "channel": channel,
            "events": ["eligibility.changed"],
        }
        if channel == "webhook":
            body["url"] = f"{self.receiver_base_url}{target}"
        else:
            self.serial += 1
            body["email"] = f"chaos-{self.serial}@example.com"
        await self._send(
            "subscription", "POST", f"{self.urls['notify']}/v1/subscriptions", json=body
        )

    # the loops ----------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        await asyncio.gather(
            self._every(stop, (0.25, 0.6), self.registry_write),
            self._every(stop, (15.0, 30.0), self.policy_change),
            self._every(stop, (40.0, 80.0), self.new_subscription),
        )

    async def _every(self, stop: asyncio.Event, pause: tuple[float, float], action: Any) -> None:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.rng.uniform(*pause))
            except TimeoutError:
                await action()

    async def burst(self, writes: int = 40) -> None:
        """Many registry writes at once (four at a time): the relay then has a backlog."""
        pending = asyncio.Semaphore(4)

        async def one() -> None:
            async with pending:
                await self.registry_write()

        await asyncio.gather(*(one() for _ in range(writes)))

    async def new_subscription(self) -> None:
        if not self.enterprises:
            return
        enterprise = self.rng.choice(sorted(self.enterprises))
        target = self.rng.choice((*WEBHOOK_PATHS, "email"))
        await self._subscribe(enterprise, "email" if target == "email" else "webhook", target)

    async def policy_change(self, *, widest: bool = False) -> str:
        """A new version of a wide policy (``widest``: of one of the two widest, each
        changing hundreds of results): another threshold and amount; its id."""
        policy_id = self.rng.choice(BULK_POLICIES[:2] if widest else BULK_POLICIES)
        document = copy.deepcopy(self.catalog[policy_id])
        extra = self.rng.choice(EXTRA_CRITERIA[document["subject"]])
        if extra is not None:
            document["criteria"] = {"all": [document["criteria"], extra]}
        for benefit in document["benefits"]:
            if benefit["basis"] in CAPPED_BASES and benefit.get("max_amount_cny"):
                benefit["max_amount_cny"] = self.rng.choice((1, 2, 3, 5)) * 500_000
        await self._send(
            "policy",
            "POST",
            f"{self.urls['ingest']}/v1/policies",
            content=json.dumps(document, default=str, ensure_ascii=False).encode(),
            headers={"Content-Type": "application/json"},
        )
        return policy_id

    async def registry_write(self) -> None:
        roll = self.rng.random()
        if roll < 0.15 or not self.enterprises:
            await self._create_enterprise()
        elif roll < 0.40:
            await self._create_production()
        elif roll < 0.75:
            await self._patch_production()
        elif roll < 0.90:
            await self._patch_enterprise()
        elif roll < 0.97:
            await self._delete(self.productions, "productions")
        else:
            await self._delete(self.enterprises, "enterprises")

    async def _create_enterprise(self) -> None:
        self.serial += 1
        row = enterprise_row(self.rng, self.regions, 1_000_000 + self.serial)
        row.pop("type")
        got = await self._send(
            "enterprise.create", "POST", f"{self.urls['registry']}/v1/enterprises", json=row
        )
        if got is not None and got.status_code == 201:
            created = got.json()
            self.enterprises[created["id"]] = Record(
                created["id"], created["version"], region_code=created["region_code"]
            )

    async def _create_production(self) -> None:
        self.serial += 1
        owner = self.enterprises[self.rng.choice(sorted(self.enterprises))]
        region = owner.region_code or self.regions.pick(self.rng)
        row = production_row(
            self.rng, self.regions, {"credit_code": "", "region_code": region}, self.serial
        )
        for key in ("type", "enterprise_credit_code"):
            row.pop(key)
        row |= {"enterprise_id": owner.id, "external_id": f"chaos-{self.serial}"}
        got = await self._send(
            "production.create", "POST", f"{self.urls['registry']}/v1/productions", json=row
        )
        if got is not None and got.status_code == 201:
            created = got.json()
            self.productions[created["id"]] = Record(created["id"], created["version"], owner.id)

    async def _patch_production(self) -> None:
        if not self.productions:
            return
        patch = self.rng.choice(
            [
                {"content_status": self.rng.choice(["filed", "approved", "taken_down"])},
                {"budget_cny": self.rng.randint(300, 1500) * 1000},
                {"episodes": self.rng.randint(20, 100)},
                {"region_code": self.regions.pick(self.rng)},
                {
                    "awards": self.rng.sample(
                        ["platform_hit", "major_event", "prestigious_award"], 1
                    )
                },
            ]
        )
        await self._patch(self.productions, "productions", patch)

    async def _patch_enterprise(self) -> None:
        patch = self.rng.choice(
            [
                {"region_code": self.regions.pick(self.rng)},
                {"employees": self.rng.randint(1, 400)},
                {"established_on": f"{self.rng.randint(2016, 2025)}-0{self.rng.randint(1, 9)}-01"},
            ]
        )
        await self._patch(self.enterprises, "enterprises", patch)

    async def _patch(
        self, records: dict[str, Record], resource: str, patch: dict[str, Any]
    ) -> None:
        record = records[self.rng.choice(sorted(records))]
        url = f"{self.urls['registry']}/v1/{resource}/{record.id}"
        got = await self._send(
            f"{resource[:-1]}.patch",
            "PATCH",
            url,
            json=patch,
            headers={"If-Match": f'"{record.version}"'},
        )
        await self._follow(records, record, url, got)

    async def _delete(self, records: dict[str, Record], resource: str) -> None:
        if not records:
            return
        record = records[self.rng.choice(sorted(records))]
        url = f"{self.urls['registry']}/v1/{resource}/{record.id}"
        got = await self._send(
            f"{resource[:-1]}.delete", "DELETE", url, headers={"If-Match": f'"{record.version}"'}
        )
        if got is not None and got.status_code in (200, 404):
            records.pop(record.id, None)
        else:
            await self._follow(records, record, url, got)

    async def _follow(
        self, records: dict[str, Record], record: Record, url: str, got: httpx.Response | None
    ) -> None:
        """Keep the version we hold current: from the answer, or read again after a 412
        or a failure (the write may have happened)."""
        if got is not None and got.is_success:
            body = got.json()
            record.version = body["version"]
            record.region_code = body.get("region_code", record.region_code)
            return
        if got is not None and got.status_code == 404:
            records.pop(record.id, None)
            return
        try:
            current = await self.http.get(url)
        except httpx.HTTPError:
            return
        if current.status_code == 404:
            records.pop(record.id, None)
        elif current.is_success:
            record.version = current.json()["version"]
