"""``reelpolicy-notify``: serve, migrate, scan-deadlines."""

from __future__ import annotations

import argparse
import asyncio
import sys

from reelpolicy_common.cli import service_main
from reelpolicy_common.db.pool import create_pool
from reelpolicy_notify.adapters.postgres import NotifyUnitOfWork
from reelpolicy_notify.adapters.secret_box import SecretBox
from reelpolicy_notify.config import Settings
from reelpolicy_notify.handlers.deadlines import scan_deadlines
from reelpolicy_notify.main import create_app


async def scan_once(settings: Settings) -> int:
    pool = await create_pool(settings.database_url, max_size=2)
    box = SecretBox(settings.reelpolicy_secret_key.get_secret_value())
    try:
        created = await scan_deadlines(uow=lambda: NotifyUnitOfWork(pool, box))
    finally:
        await pool.close()
    print(f"filed {created} deadline alerts")
    return 0


def _extra(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scan = commands.add_parser("scan-deadlines", help="file policy.deadline alerts now")
    scan.set_defaults(handler=lambda a: asyncio.run(scan_once(Settings())))


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
