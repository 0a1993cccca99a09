"""``reelpolicy-ingest``: serve, migrate, sync a folder of documents, republish."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from reelpolicy_common.cli import service_main
from reelpolicy_common.db.pool import create_pool
from reelpolicy_ingest import handlers
from reelpolicy_ingest.adapters.postgres import IngestUnitOfWork
from reelpolicy_ingest.config import Settings
from reelpolicy_ingest.domain import (
    DocumentTooLargeError,
    check_document_size,
    check_yaml_expansion,
)
from reelpolicy_ingest.main import create_app
from reelpolicy_policy import (
    Policy,
    PolicyValidationError,
    load_policy_text,
    policy_document_dict,
)

SUFFIX_TYPES = {
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".json": "application/json",
}


def load_folder(folder: Path) -> list[Policy] | None:
    """Every document of ``folder``, or None (after printing why) if any is invalid."""
    files = sorted(p for p in folder.iterdir() if p.suffix in SUFFIX_TYPES)
    policies = []
    failed = False
    for path in files:
        try:
            text = path.read_bytes()
            if "yaml" in SUFFIX_TYPES[path.suffix]:
                check_yaml_expansion(text)
            policy = load_policy_text(text, SUFFIX_TYPES[path.suffix])
            check_document_size(policy_document_dict(policy))
            policies.append(policy)
        except DocumentTooLargeError as exc:
            failed = True
            print(f"{path}: document: {exc.message}", file=sys.stderr)
        except PolicyValidationError as exc:
            failed = True
            for error in exc.errors:
                print(f"{path}: {error['path']}: {error['message']}", file=sys.stderr)
    return None if failed else policies


async def store_all(settings: Settings, policies: list[Policy]) -> int:
    """Store the documents; only real edits become new versions."""
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        for policy in policies:
            result = await handlers.submit_policy(uow=lambda: IngestUnitOfWork(pool), policy=policy)
            state = "new version" if result.created else "unchanged"
            if result.policy.revoked:
                state += " (revoked)"
            print(f"{result.policy.policy_id} v{result.policy.version}: {state}")
    finally:
        await pool.close()
    return 0


async def republish(settings: Settings) -> int:
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        count = await handlers.republish_all(uow=lambda: IngestUnitOfWork(pool))
    finally:
        await pool.close()
    print(f"republished {count} policies")
    return 0


def _sync(args: argparse.Namespace) -> int:
    policies = load_folder(args.folder)
    if policies is None:
        return 1  # all or nothing: an invalid folder stores nothing
    return asyncio.run(store_all(Settings(), policies))


def _extra(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sync = commands.add_parser("sync", help="store a folder of policy documents (idempotent)")
    sync.add_argument("folder", type=Path)
    sync.set_defaults(handler=_sync)
    again = commands.add_parser("republish", help="emit every policy's current state again")
    again.set_defaults(handler=lambda a: asyncio.run(republish(Settings())))


def main(argv: list[str] | None = None) -> int:
    return service_main(
        argv,
        settings_factory=Settings,
        app_factory=create_app,
        migrations_package="reelpolicy_ingest.migrations",
        description="reelpolicy ingest: policy documents in, policy events out.",
        extra=_extra,
    )


if __name__ == "__main__":
    sys.exit(main())
