"""The portal's pure parts and its adapter, without servers: settings that refuse
default secrets, CSRF tokens, the fillable fields, catalog filters, the version diff,
the message catalog, and the registry calls of the sign-in-link contract (a stub
registry: the registry side is another change)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from cryptography.fernet import Fernet
from pydantic import ValidationError

from reelpolicy_portal.adapters.services_api import ServicesApi
from reelpolicy_portal.config import Settings
from reelpolicy_portal.domain.catalog import CatalogFilter, applies_in, matches
from reelpolicy_portal.domain.errors import (
    KeyRefusedError,
    NotFoundError,
    ServiceUnavailableError,
    VersionConflictError,
)
from reelpolicy_portal.domain.fields import InvalidValueError, fillable
from reelpolicy_portal.domain.money import cny
from reelpolicy_portal.domain.policy_diff import describe_changes
from reelpolicy_portal.domain.sessions import Role, Session, csrf_token, csrf_valid
from reelpolicy_portal.entrypoints.http.rendering import LOCALE_DIR, PACKAGE, translations
from reelpolicy_portal.handlers.sign_in import sign_out

SECRET = "portal-unit-session-secret-0123456789"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": "postgresql://portal@localhost/reelpolicy_portal",
        "portal_session_secret": SECRET,
        "portal_key_encryption_keys": Fernet.generate_key().decode(),
    }
    values.update(overrides)
    return Settings(**values)


@pytest.mark.parametrize("secret", ["", "changeme", "secret", "short"])
def test_settings_refuse_a_placeholder_session_secret(secret: str) -> None:
    with pytest.raises(ValidationError, match="PORTAL_SESSION_SECRET"):
        settings(portal_session_secret=secret)


@pytest.mark.parametrize("keys", ["", "changeme", "not-a-fernet-key", ",,"])
def test_settings_refuse_a_missing_or_malformed_encryption_key(keys: str) -> None:
    with pytest.raises(ValidationError, match="PORTAL_KEY_ENCRYPTION_KEYS") as refused:
        settings(portal_key_encryption_keys=keys)
    assert "not-a-fernet-key" not in str(refused.value)  # the input is never echoed


def test_settings_have_no_default_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://portal@localhost/reelpolicy_portal")
    monkeypatch.delenv("PORTAL_SESSION_SECRET", raising=False)
    monkeypatch.delenv("PORTAL_KEY_ENCRYPTION_KEYS", raising=False)
    with pytest.raises(ValidationError) as missing:
        Settings()
    named = {e["loc"][0] for e in missing.value.errors()}
    assert named == {"portal_session_secret", "portal_key_encryption_keys"}


def test_old_encryption_keys_still_decrypt_after_rotation() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = settings(portal_key_encryption_keys=old).key_cipher().encrypt(b"rp_key")
    rotated = settings(portal_key_encryption_keys=f"{new},{old}").key_cipher()
    assert rotated.decrypt(sealed) == b"rp_key"


def test_a_csrf_token_is_valid_only_for_its_own_binding() -> None:
    secret = SECRET.encode()
    token = csrf_token(secret, "session-a")
    assert csrf_valid(secret, "session-a", token)
    assert not csrf_valid(secret, "session-b", token)
    assert not csrf_valid(b"another-secret-0123456789", "session-a", token)
    assert not csrf_valid(secret, "session-a", token[:-1] + ("0" if token[-1] != "0" else "1"))
    assert not csrf_valid(secret, "session-a", "")
    assert not csrf_valid(secret, None, token)


def test_fillable_fields_parse_what_the_form_sends() -> None:
    established = fillable("enterprise.established_on")
    assert established is not None
    assert established.parse(" 2025-03-01 ") == "2025-03-01"
    assert established.patch("2025-03-01") == {"established_on": "2025-03-01"}
    views = fillable("production.metrics.views")
    assert views is not None
    assert views.subject_type == "production"
    assert views.parse("1,200,000") == 1_200_000
    assert views.patch(5) == {"metrics": {"views": 5}}
    assert views.current({"metrics": {"views": 7}}) == 7
    assert views.current({"metrics": None}) is None
    for field, bad in (
        ("enterprise.established_on", "2025-13-01"),
        ("production.budget_cny", "-5"),
        ("production.minutes_per_episode", "nan"),
        ("enterprise.sme", "maybe"),
        ("production.region_code", "31011"),
        ("production.episodes", ""),
    ):
        wanted = fillable(field)
        assert wanted is not None
        with pytest.raises(InvalidValueError):
            wanted.parse(bad)
    assert fillable("production.awards") is None  # a list: edited through the API


def test_amounts_in_cny_have_thousands_separators() -> None:
    assert cny(3_000_000, "zh-CN") == "¥3,000,000"
    assert cny(3_000_000, "en") == "CN¥3,000,000"


def test_regions_are_hierarchical_in_the_catalog_filter() -> None:
    assert applies_in("310000", "310110")  # Shanghai covers Yangpu
    assert applies_in("310110", "310110")
    assert not applies_in("310117", "310110")  # Songjiang does not
    assert applies_in("410100", "410105")  # Zhengzhou covers its districts
    assert not applies_in("440300", "310110")
    assert applies_in(None, "310110")  # national issuers apply everywhere
    yangpu = {"issuer": {"level": "district", "region_code": "310110"}, "benefits": []}
    assert matches(yangpu, CatalogFilter(region="310110", level="district"))
    assert not matches(yangpu, CatalogFilter(level="municipal"))
    assert not matches(yangpu, CatalogFilter(kind="reward"))


def test_the_version_diff_says_what_changed() -> None:
    v1: dict[str, Any] = {
        "title": {"zh": "a", "en": "a"},
        "effective": {"from": "2024-06-25"},
        "criteria": {
            "all": [{"field": "enterprise.region_code", "op": "within", "value": "310110"}]
        },
        "benefits": [
            {"id": "purchase", "kind": "office_purchase_subsidy", "max_amount_cny": 3000000}
        ],
    }
    v2 = json.loads(json.dumps(v1))
    v2["effective"]["to"] = "2027-06-24"
    v2["benefits"][0]["max_amount_cny"] = 2000000
    v2["criteria"]["all"].append(
        {"field": "enterprise.established_on", "op": "gte", "value": "2024-06-25"}
    )
    messages = [(c.message, c.values) for c in describe_changes(v1, v2)]
    assert (
        "Applications close on %(new)s (was %(old)s).",
        {"old": "—", "new": "2027-06-24"},
    ) in messages
    assert (
        "The cap of %(kind)s is now %(new)s yuan (was %(old)s).",
        {"kind": "office_purchase_subsidy", "old": 3000000, "new": 2000000},
    ) in messages
    assert ("New condition on %(field)s.", {"field": "enterprise.established_on"}) in messages
    assert len(messages) == 3
    assert [c.message for c in describe_changes(None, v1)] == ["First version published."]
    assert [c.message for c in describe_changes(v1, v1)] == ["No change in substance."]


def test_every_text_of_the_pages_has_its_chinese() -> None:
    """Every message id in the templates and the code is translated in zh_CN."""
    method_map = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    keywords = {"_": None, "gettext": None, "N_": None}
    extracted = {
        message
        for _, _, message, _, _ in extract_from_dir(
            str(PACKAGE), method_map, options_map=options, keywords=keywords
        )
        if isinstance(message, str) and message
    }
    assert len(extracted) > 100  # the extraction found the texts (the check can fail)
    translated: set[str] = set()
    for path in (LOCALE_DIR / "zh_CN" / "LC_MESSAGES").glob("*.po"):
        with path.open("rb") as po:
            translated |= {m.id for m in read_po(po, locale="zh_CN") if m.id and m.string}
    untranslated = sorted(m for m in extracted if m not in translated)
    assert untranslated == []
    assert translations("zh-CN").gettext("Sign in") == "登录"


def _registry(handler: Any) -> ServicesApi:
    return ServicesApi(
        registry_url="http://registry",
        rules_url="http://rules",
        ingest_url="http://ingest",
        notify_url="http://notify",
        timeout=5,
        transports={"registry": httpx.MockTransport(handler)},
    )


async def test_redeeming_a_sign_in_link_follows_the_contract() -> None:
    """POST /v1/portal-links/redeem {"token"} → 200 {enterprise_id, api_key, key_id};
    404 for an unknown, used or expired token."""
    seen: list[tuple[str, str, Any]] = []

    def registry(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"null")
        seen.append((request.method, request.url.path, body))
        assert "authorization" not in request.headers  # redeeming needs no key
        if body == {"token": "good"}:
            return httpx.Response(
                200, json={"enterprise_id": "e-1", "api_key": "rp_new", "key_id": "k-1"}
            )
        return httpx.Response(404, json={"title": "Not Found", "status": 404})

    api = _registry(registry)
    assert await api.redeem_link("good") == ("e-1", "rp_new", "k-1")
    with pytest.raises(NotFoundError):
        await api.redeem_link("used")
    assert seen[0] == ("POST", "/v1/portal-links/redeem", {"token": "good"})
    await api.aclose()


async def test_identify_tells_operator_and_company_keys_apart() -> None:
    def registry(request: httpx.Request) -> httpx.Response:
        key = request.headers["authorization"].removeprefix("Bearer ")
        if request.url.path == "/v1/api-keys":
            return httpx.Response(200 if key == "op" else 403, json={})
        if key == "gone":
            return httpx.Response(401, json={})
        return httpx.Response(200, json={"items": [{"id": "e-7"}], "next_cursor": None})

    api = _registry(registry)
    assert (await api.identify("op")).role == "operator"
    company = await api.identify("co")
    assert (company.role, company.enterprise_id) == ("company", "e-7")
    await api.aclose()


async def test_a_stale_if_match_raises_the_conflict_with_the_current_record() -> None:
    def registry(request: httpx.Request) -> httpx.Response:
        if request.method == "PATCH":
            assert request.headers["if-match"] == '"3"'
            return httpx.Response(412, json={"title": "Precondition Failed", "status": 412})
        return httpx.Response(
            200, json={"id": "e-1", "established_on": "2025-05-05"}, headers={"ETag": '"4"'}
        )

    api = _registry(registry)
    with pytest.raises(VersionConflictError) as conflict:
        await api.patch_record(
            "k", "enterprise", "e-1", {"established_on": "2025-03-01"}, etag='"3"'
        )
    assert conflict.value.current["established_on"] == "2025-05-05"
    await api.aclose()


class MemorySessions:
    def __init__(self, session: Session) -> None:
        self.sessions = {"s-1": session}

    async def create(self, **_: Any) -> str:
        raise AssertionError("not used")

    async def get(self, session_id: str) -> Session | None:
        return self.sessions.get(session_id)

    async def delete(self, session_id: str) -> Session | None:
        return self.sessions.pop(session_id, None)


class RevokingServices:
    def __init__(self) -> None:
        self.revoked: list[tuple[str, str]] = []

    async def revoke_key(self, api_key: str, key_id: str) -> None:
        self.revoked.append((api_key, key_id))


def _session(link_key_id: str | None, role: Role = "company") -> Session:
    expires = datetime.now(UTC) + timedelta(hours=1)
    return Session(role, "e-1", "rp_key", link_key_id, expires)


async def test_signing_out_revokes_a_key_that_a_link_issued() -> None:
    services, sessions = RevokingServices(), MemorySessions(_session("k-9"))
    await sign_out(services=services, sessions=sessions, session_id="s-1")  # type: ignore[arg-type]
    assert services.revoked == [("rp_key", "k-9")]
    assert sessions.sessions == {}


async def test_signing_out_keeps_a_key_the_company_typed_in() -> None:
    services, sessions = RevokingServices(), MemorySessions(_session(None))
    await sign_out(services=services, sessions=sessions, session_id="s-1")  # type: ignore[arg-type]
    assert services.revoked == []
    assert sessions.sessions == {}


async def test_a_service_that_does_not_answer_is_unavailable_not_an_error_page() -> None:
    def registry(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    api = _registry(registry)
    with pytest.raises(ServiceUnavailableError):
        await api.enterprise("k", "e-1")
    await api.aclose()


async def test_only_the_registry_refuses_a_key_the_others_may_not_know_it_yet() -> None:
    """A key issued a moment ago reaches rules and ingest as an event: their 401 must not
    end the session (a page says "try again"), the registry's does."""

    def unauthorized(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"title": "Unauthorized", "status": 401})

    api = ServicesApi(
        registry_url="http://registry",
        rules_url="http://rules",
        ingest_url="http://ingest",
        notify_url="http://notify",
        timeout=5,
        transports={name: httpx.MockTransport(unauthorized) for name in ("registry", "rules")},
    )
    with pytest.raises(ServiceUnavailableError):
        await api.eligibility("k", "e-1")
    with pytest.raises(KeyRefusedError):
        await api.enterprise("k", "e-1")
    await api.aclose()
