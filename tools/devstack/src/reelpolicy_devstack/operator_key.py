"""The operator key ``make up`` registers in the registry and prints.

A key the registry refuses (revoked by an operator, malformed, or hashed under
another ``REELPOLICY_SECRET_KEY``) can never work again, so ``make up`` says why in
one line and carries on with a working key: the one kept in the key file, else a
fresh one it stores there. A refused ``REELPOLICY_OPERATOR_KEY`` is ignored rather
than fatal because a development stack should come up; the message names the
variable so the scripts that read it can be fixed.
"""

from __future__ import annotations

import os
from pathlib import Path

from reelpolicy_common.auth import new_api_key
from reelpolicy_devstack.services import CommandError, run

ENV_NAME = "REELPOLICY_OPERATOR_KEY"
_REFUSAL = "error: key: "  # how ``reelpolicy-registry api-keys create`` refuses a key


def _refusal(key: str, registry_env: dict[str, str]) -> str | None:
    """Register ``key`` as an operator key: None, or why the registry refused it."""
    try:
        run(
            "registry",
            *("api-keys", "create", "--role", "operator", "--label", "make up"),
            f"--key={key}",  # one argument even when the key starts with "-"
            env=registry_env,
        )
    except CommandError as exc:
        for line in exc.stderr.splitlines():
            if line.startswith(_REFUSAL):
                return line.removeprefix(_REFUSAL)
        raise
    return None


def _store(key_file: Path, key: str) -> None:
    key_file.unlink(missing_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key)


def register_operator_key(key: str, *, key_file: Path, registry_env: dict[str, str]) -> str:
    """Register ``key`` (from ``REELPOLICY_OPERATOR_KEY`` when set, else from
    ``key_file``) as an operator key; the key that works, to print."""
    refused = _refusal(key, registry_env)
    if refused is None:
        return key
    if os.environ.get(ENV_NAME):
        print(
            f"{ENV_NAME} is not usable ({refused}); ignoring it:"
            " unset it or set it to the operator key printed below.",
            flush=True,
        )
        stored = key_file.read_text().strip() if key_file.exists() else ""
        if stored and stored != key and _refusal(stored, registry_env) is None:
            return stored
    else:
        print(f"the operator key in {key_file} is not usable ({refused}); replacing it.")
    fresh = new_api_key()[1]
    if (refused := _refusal(fresh, registry_env)) is not None:
        message = f"the registry refused a fresh operator key: {refused}"
        raise CommandError(message, returncode=1, stderr=refused)
    _store(key_file, fresh)
    print(f"a fresh operator key is stored in {key_file}.", flush=True)
    return fresh
