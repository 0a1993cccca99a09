"""The operator key ``make up`` registers in the registry and prints."""

from __future__ import annotations

from pathlib import Path

from reelpolicy_devstack.services import run


def register_operator_key(key: str, *, key_file: Path, registry_env: dict[str, str]) -> str:
    """Register ``key`` as an operator key; the key to print."""
    run(
        "registry",
        *("api-keys", "create", "--role", "operator", "--label", "make up", "--key", key),
        env=registry_env,
    )
    return key
