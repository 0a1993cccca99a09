"""``reelpolicy-rules``: serve, migrate, rebuild (the projection, from the topics)."""

from __future__ import annotations

import argparse
import asyncio
import sys

from reelpolicy_common.cli import service_main
from reelpolicy_rules.config import Settings
from reelpolicy_rules.main import create_app


def _rebuild(_: argparse.Namespace) -> int:
    from reelpolicy_rules.rebuild import SnapshotError, rebuild

    try:
        return asyncio.run(rebuild(Settings()))
    except SnapshotError as exc:
        print(f"error: rebuild refused: {exc}", file=sys.stderr)
        return 2


def _extra(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    again = commands.add_parser(
        "rebuild",
        help="rebuild the projection from the latest complete snapshot of the registry and"
        " policy topics (republish first; service stopped); keeps results",
    )
    again.set_defaults(handler=_rebuild)


def main(argv: list[str] | None = None) -> int:
    return service_main(
        argv,
        settings_factory=Settings,
        app_factory=create_app,
        migrations_package="reelpolicy_rules.migrations",
        description="reelpolicy rules: policy and registry events in, eligibility events out.",
        extra=_extra,
    )


if __name__ == "__main__":
    sys.exit(main())
