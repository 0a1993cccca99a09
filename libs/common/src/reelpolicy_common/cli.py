"""The command line every service shares: ``serve``, ``migrate``, ``outbox``, plus its own.

``reelpolicy-<svc> migrate`` applies the shared and the service's migrations and
exits (compose runs it as a one-shot job; ``make up`` before starting services);
``reelpolicy-<svc> serve`` runs the HTTP app, its consumers and its outbox relay
until SIGTERM/SIGINT, then shuts down gracefully. ``reelpolicy-<svc> outbox
quarantined`` lists the outbox rows the broker refused for good, ``outbox retry
SEQ... | --all`` puts them back in the outbox for the relay to try again.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

import uvicorn

from reelpolicy_common.db.migrations import apply_migrations, common_migrations, discover
from reelpolicy_common.db.pool import connect
from reelpolicy_common.gc_control import freeze_startup_objects
from reelpolicy_common.logs import configure_logging
from reelpolicy_common.outbox.quarantine import list_quarantined, retry_quarantined
from reelpolicy_common.settings import ServiceSettings

Command = Callable[[argparse.Namespace], int]


def migrate(settings: ServiceSettings, *, migrations_package: str) -> list[str]:
    async def run() -> list[str]:
        conn = await connect(settings.database_url)
        try:
            return await apply_migrations(
                conn,
                common_migrations() + discover(migrations_package, namespace=settings.service_name),
            )
        finally:
            await conn.close()

    return asyncio.run(run())


def serve(settings: ServiceSettings, app_factory: Callable[[], Any]) -> None:
    """Run the app under uvicorn, on uvloop with the httptools parser (both C, both
    dependencies: every process of the platform shares the CPU, and a pure-Python event
    loop and HTTP parser would take a large part of it)."""
    app = app_factory()
    freeze_startup_objects()  # the process's long-lived objects: see gc_control
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=int(settings.shutdown_grace_seconds),
    )
    uvicorn.Server(config).run()


def outbox_command(settings: ServiceSettings, args: argparse.Namespace) -> int:
    """``outbox quarantined`` (a table) or ``outbox retry`` (which rows moved back)."""

    async def run() -> int:
        conn = await connect(settings.database_url)
        try:
            if args.action == "quarantined":
                rows = await list_quarantined(conn)
                print("seq\tevent_id\ttopic\tkey\ttype\tsize\tquarantined_at\terror")
                for r in rows:
                    when = r.quarantined_at.isoformat(timespec="seconds")
                    print(
                        f"{r.seq}\t{r.event_id}\t{r.topic}\t{r.key}\t{r.event_type}"
                        f"\t{r.size}\t{when}\t{' '.join(r.error.split())}"
                    )
                return 0
            if not args.all and not args.seqs:
                print("error: name the rows to retry (SEQ...) or --all", file=sys.stderr)
                return 2
            wanted = None if args.all else args.seqs
            moved = await retry_quarantined(conn, seqs=wanted)
            missing = sorted(set(wanted or ()) - set(moved))
            print(f"moved {len(moved)} rows back to the outbox: {' '.join(map(str, moved))}")
            if missing:
                print(f"error: not quarantined: {' '.join(map(str, missing))}", file=sys.stderr)
                return 1
            return 0
        finally:
            await conn.close()

    return asyncio.run(run())


def _outbox_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    outbox = commands.add_parser("outbox", help="outbox rows the broker refused for good")
    actions = outbox.add_subparsers(dest="action", required=True)
    actions.add_parser("quarantined", help="list the quarantined rows (tab-separated)")
    retry = actions.add_parser(
        "retry", help="move quarantined rows back into the outbox (same event ids)"
    )
    retry.add_argument("seqs", nargs="*", type=int, metavar="SEQ")
    retry.add_argument("--all", action="store_true", help="every quarantined row")


def service_main(
    argv: list[str] | None,
    *,
    settings_factory: Callable[[], ServiceSettings],
    app_factory: Callable[[], Any],
    migrations_package: str,
    description: str,
    extra: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] | None = None,
) -> int:
    """Parse ``argv`` and run the chosen command; returns the exit code."""
    parser = argparse.ArgumentParser(description=description)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the HTTP API, consumers and outbox relay")
    commands.add_parser("migrate", help="apply pending SQL migrations and exit")
    _outbox_parser(commands)
    if extra is not None:
        extra(commands)
    args = parser.parse_args(argv)
    settings = settings_factory()
    configure_logging(
        service=settings.service_name, level=settings.log_level, json=settings.log_json
    )
    if args.command == "serve":
        serve(settings, app_factory)
        return 0
    if args.command == "migrate":
        for name in migrate(settings, migrations_package=migrations_package):
            print(f"applied {name}")
        return 0
    if args.command == "outbox":
        return outbox_command(settings, args)
    handler: Command = args.handler
    return handler(args)
