"""The command line every service shares: ``serve`` and ``migrate``, plus its own.

``reelpolicy-<svc> migrate`` applies the shared and the service's migrations and
exits (compose runs it as a one-shot job; ``make up`` before starting services);
``reelpolicy-<svc> serve`` runs the HTTP app, its consumers and its outbox relay
until SIGTERM/SIGINT, then shuts down gracefully.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from typing import Any

from reelpolicy_common.db.migrations import apply_migrations, common_migrations, discover
from reelpolicy_common.db.pool import connect
from reelpolicy_common.logs import configure_logging
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
    dependencies: on 2 cores at 200 registry updates/s every process shares the CPU,
    and the pure-Python event loop and HTTP parser were a large part of it)."""
    import uvicorn

    from reelpolicy_common.gc_control import freeze_startup_objects

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
    handler: Command = args.handler
    return handler(args)
