"""The caller of an HTTP request: its API key checked before the body is read, and the
route dependencies that name it (:data:`CurrentPrincipal`, :data:`OperatorPrincipal`).

FastAPI parses a ``Body`` parameter before it runs the route's dependencies, so a key
checked by a dependency comes too late: a caller without a key could make a service
read and parse (or buffer) a body of any size. The pure ASGI middleware
:class:`AuthenticateFirst` answers 401 (missing or unknown key) and 429 (over the key's
rate) from the headers alone and leaves the checked
:class:`~reelpolicy_common.auth.Principal` in the scope, where :func:`current_principal`
takes it without a second lookup. Role checks (operator-only routes) stay with the
routes' dependencies.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from reelpolicy_common.auth import Principal, find_principal
from reelpolicy_common.http.answers import answer_error
from reelpolicy_common.http.errors import ApiError
from reelpolicy_common.http.rate_limit import RateLimiter
from reelpolicy_common.runtime import ServiceRuntime

Scope = dict[str, Any]

PUBLIC_PATH_PREFIXES = ("/docs", "/redoc", "/asyncapi")

PRINCIPAL_SCOPE_KEY = "reelpolicy.principal"
"""Where :class:`AuthenticateFirst` leaves the caller it checked (in the ASGI scope),
before anything reads the request body."""


def is_public(path: str, public_paths: frozenset[str], prefixes: tuple[str, ...] = ()) -> bool:
    return path in public_paths or path.startswith(PUBLIC_PATH_PREFIXES + prefixes)


def bearer_key(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, key = value.decode("latin-1").partition(" ")
            key = key.strip()
            return key if scheme.lower() == "bearer" and key else None
    return None


class AuthenticateFirst:
    """ASGI: 401 / 429 before the app sees a request to a non-public path."""

    def __init__(
        self,
        app: Any,
        *,
        runtime: ServiceRuntime,
        secret_key: str,
        public_paths: frozenset[str],
        limiter: RateLimiter | None,
        limit_operators: bool,
        public_prefixes: tuple[str, ...] = (),
    ) -> None:
        self.app = app
        self.runtime = runtime
        self.secret_key = secret_key
        self.public_paths = public_paths
        self.public_prefixes = public_prefixes
        self.limiter = limiter
        self.limit_operators = limit_operators

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or is_public(
            scope["path"], self.public_paths, self.public_prefixes
        ):
            await self.app(scope, receive, send)
            return
        try:
            principal = await self._principal(scope)
        except Exception as exc:  # answered as a route raising it would be (401, 503)
            await answer_error(scope, receive, send, exc)
            return
        if self.limiter is not None and (self.limit_operators or not principal.is_operator):
            wait = self.limiter.retry_after(principal.key_id)
            if wait:
                error = ApiError(
                    429,
                    f"rate limit of this API key reached; retry in {wait} s",
                    field="Authorization",
                )
                await answer_error(scope, receive, send, error, headers={"Retry-After": str(wait)})
                return
        scope[PRINCIPAL_SCOPE_KEY] = principal
        await self.app(scope, receive, send)

    async def _principal(self, scope: Scope) -> Principal:
        key = bearer_key(scope)
        if key is None:
            raise ApiError(401, "missing bearer API key", field="Authorization")
        principal = await find_principal(
            self.runtime.pool,
            key=key,
            secret_key=self.secret_key,
            cache=self.runtime.principals,
        )
        if principal is None:
            raise ApiError(401, "unknown or revoked API key", field="Authorization")
        return principal


_bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer rp_...`")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """FastAPI dependency: the caller, or 401."""
    checked = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if isinstance(checked, Principal):
        return checked
    if credentials is None or not credentials.credentials:
        raise ApiError(401, "missing bearer API key", field="Authorization")
    runtime = request.app.state.runtime
    principal = await find_principal(
        runtime.pool,
        key=credentials.credentials,
        secret_key=runtime.settings.reelpolicy_secret_key.get_secret_value(),
        cache=runtime.principals,
    )
    if principal is None:
        raise ApiError(401, "unknown or revoked API key", field="Authorization")
    return principal


async def operator_principal(
    principal: Annotated[Principal, Depends(current_principal)],
) -> Principal:
    """FastAPI dependency: the caller, who must be an operator (else 403)."""
    if not principal.is_operator:
        raise ApiError(403, "this endpoint needs an operator key", field="Authorization")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
OperatorPrincipal = Annotated[Principal, Depends(operator_principal)]


def not_found(what: str, ident: str) -> ApiError:
    """The 404 for a record that does not exist *or* is not the caller's."""
    return ApiError(404, f"{what} {ident} not found", field="id")
