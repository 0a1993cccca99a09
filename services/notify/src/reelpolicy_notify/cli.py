"""``reelpolicy-notify``: serve, migrate, scan-deadlines, secrets reseal."""

from __future__ import annotations

import argparse
import asyncio
import sys

from reelpolicy_common.cli import service_main
from reelpolicy_common.db.pool import create_pool
from reelpolicy_notify.adapters.postgres import NotifyUnitOfWork
from reelpolicy_notify.adapters.reseal import reseal_secrets
from reelpolicy_notify.config import Settings
from reelpolicy_notify.handlers.deadlines import scan_deadlines
from reelpolicy_notify.main import create_app


async def scan_once(settings: Settings) -> int:
    pool = await create_pool(settings.database_url, max_size=2)
    box = settings.secret_box()
    try:
        created = await scan_deadlines(uow=lambda: NotifyUnitOfWork(pool, box))
    finally:
        await pool.close()
    print(f"filed {created} deadline alerts")
    return 0


async def reseal(settings: Settings, *, batch_size: int) -> int:
    """Re-seal every signing secret under the ring's first key; 1 if any did not open."""
    box = settings.secret_box()
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        report = await reseal_secrets(pool, box=box, batch_size=batch_size)
    finally:
        await pool.close()
    for subscription_id, error in report.failed:
        print(f"subscription {subscription_id}: {error}", file=sys.stderr)
    print(
        f"examined {report.examined}, resealed {report.resealed} under key id"
        f" {box.sealing_kid!r}, already current {report.already_current},"
        f" changed meanwhile {report.changed_meanwhile}, failed {len(report.failed)}"
    )
    return 1 if report.failed else 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _extra(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = commands.add_parser("scan-deadlines", help="file policy.deadline alerts now")
    scan.set_defaults(handler=lambda a: asyncio.run(scan_once(Settings())))
    secrets = commands.add_parser("secrets", help="webhook signing secrets at rest")
    secret_commands = secrets.add_subparsers(dest="secrets_command", required=True)
    again = secret_commands.add_parser(
        "reseal", help="re-seal every stored secret under the first key of NOTIFY_SEALING_KEYS"
    )
    again.add_argument("--batch", type=_positive, default=500, help="subscriptions per transaction")
    again.set_defaults(handler=lambda a: asyncio.run(reseal(Settings(), batch_size=a.batch)))


def main(argv: list[str] | None = None) -> int:
    return service_main(
        argv,
        settings_factory=Settings,
        app_factory=create_app,
        migrations_package="reelpolicy_notify.migrations",
        description="reelpolicy notify: subscriptions and signed alert delivery.",
        extra=_extra,
    )


if __name__ == "__main__":
    sys.exit(main())
