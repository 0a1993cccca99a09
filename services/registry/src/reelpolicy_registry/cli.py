"""``reelpolicy-registry``: serve, migrate, api-keys, portal-link, import, republish."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from reelpolicy_common.cli import service_main
from reelpolicy_common.db.pool import create_pool
from reelpolicy_registry.adapters.import_workers import validation_processes
from reelpolicy_registry.adapters.postgres import RegistryUnitOfWork
from reelpolicy_registry.config import Settings
from reelpolicy_registry.domain.errors import InvalidRecordError, NotFoundError
from reelpolicy_registry.domain.import_files import MalformedFileError, csv_rows, jsonl_rows
from reelpolicy_registry.handlers import api_keys, portal_links, records
from reelpolicy_registry.handlers.imports import import_rows
from reelpolicy_registry.main import create_app

T = TypeVar("T")
UowFactory = Callable[[], RegistryUnitOfWork]


async def _with_uow(settings: Settings, use: Callable[[UowFactory], Awaitable[T]]) -> T:
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        return await use(lambda: RegistryUnitOfWork(pool))
    finally:
        await pool.close()


def _create_key(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        issued = asyncio.run(
            _with_uow(
                settings,
                lambda uow: api_keys.issue_api_key(
                    uow=uow,
                    secret_key=settings.reelpolicy_secret_key.get_secret_value(),
                    role=args.role,
                    enterprise_id=args.enterprise,
                    label=args.label,
                    explicit_key=args.key,
                ),
            )
        )
    except (InvalidRecordError, NotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(issued.key)
    return 0


def _revoke_key(args: argparse.Namespace) -> int:
    try:
        asyncio.run(
            _with_uow(Settings(), lambda uow: api_keys.revoke_api_key(uow=uow, key_id=args.key_id))
        )
    except NotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id}")
    return 0


def _portal_link(args: argparse.Namespace) -> int:
    settings = Settings()
    try:
        minted = asyncio.run(
            _with_uow(
                settings,
                lambda uow: portal_links.mint_portal_link(
                    uow=uow,
                    enterprise_id=args.enterprise,
                    portal_base_url=str(settings.portal_base_url),
                    valid_for=timedelta(minutes=settings.portal_link_valid_minutes),
                ),
            )
        )
    except NotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(minted.url)
    print(f"valid once, until {minted.expires_at.isoformat(timespec='seconds')}", file=sys.stderr)
    return 0


def _import(args: argparse.Namespace) -> int:
    from tqdm import tqdm  # type: ignore[import-untyped]

    path: Path = args.file
    is_csv = path.suffix.lower() == ".csv" or args.format == "csv"
    # the csv module reads CSV line ends itself; a JSON Lines row ends at "\n" only
    newline = "" if is_csv else "\n"
    with path.open(encoding="utf-8-sig", newline=newline) as f:
        total = sum(1 for _ in f)
    settings = Settings()
    validators = validation_processes(settings.import_processes)
    with (
        path.open(encoding="utf-8-sig", newline=newline) as f,
        tqdm(total=total, unit="row") as bar,
    ):
        rows = csv_rows(f) if is_csv else jsonl_rows(f)
        try:
            report = asyncio.run(
                _with_uow(
                    settings,
                    lambda uow: import_rows(
                        uow=uow,
                        rows=rows,
                        chunk_rows=settings.import_chunk_rows,
                        writers=settings.import_writers,
                        validators=validators,
                        validate_ahead=max(1, settings.import_processes),
                        progress=bar.update,
                    ),
                )
            )
        except MalformedFileError as exc:
            print(f"error: {exc.field}: {exc.message}", file=sys.stderr)
            return 1
        finally:
            if validators is not None:
                validators.shutdown(cancel_futures=True)
    for error in report.errors:
        print(f"row {error.row}: {error.field}: {error.message}", file=sys.stderr)
    print(f"accepted {report.accepted}, unchanged {report.unchanged}, rejected {report.rejected}")
    return 1 if report.rejected else 0


def _republish(_: argparse.Namespace) -> int:
    count = asyncio.run(_with_uow(Settings(), lambda uow: records.republish_all(uow=uow)))
    print(f"republished {count} records")
    return 0


def _extra(commands: Any) -> None:
    keys = commands.add_parser("api-keys", help="issue or revoke API keys")
    key_commands = keys.add_subparsers(dest="api_keys_command", required=True)
    create = key_commands.add_parser("create", help="issue a key and print it (shown once)")
    create.add_argument("--role", choices=["operator", "company"], required=True)
    create.add_argument("--enterprise", default=None, help="enterprise id (company keys)")
    create.add_argument("--label", default=None)
    create.add_argument("--key", default=None, help="register this exact key (idempotent)")
    create.set_defaults(handler=_create_key)
    revoke = key_commands.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_revoke_key)
    link = commands.add_parser(
        "portal-link", help="mint a one-time sign-in link to the portal and print its URL"
    )
    link.add_argument("--enterprise", required=True, help="the enterprise id to sign in as")
    link.set_defaults(handler=_portal_link)
    load = commands.add_parser("import", help="bulk-import a JSON Lines or CSV file")
    load.add_argument("file", type=Path)
    load.add_argument("--format", choices=["jsonl", "csv"], default=None)
    load.set_defaults(handler=_import)
    again = commands.add_parser("republish", help="emit every record's current state again")
    again.set_defaults(handler=_republish)


def main(argv: list[str] | None = None) -> int:
    return service_main(
        argv,
        settings_factory=Settings,
        app_factory=create_app,
        migrations_package="reelpolicy_registry.migrations",
        description="reelpolicy registry: enterprises, productions and API keys.",
        extra=_extra,
    )


if __name__ == "__main__":
    sys.exit(main())
