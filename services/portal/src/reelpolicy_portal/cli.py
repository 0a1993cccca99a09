"""``reelpolicy-portal``: serve, migrate (the sessions table)."""

from __future__ import annotations

import sys

from reelpolicy_common.cli import service_main
from reelpolicy_portal.config import Settings
from reelpolicy_portal.main import create_app


def main(argv: list[str] | None = None) -> int:
    return service_main(
        argv,
        settings_factory=Settings,
        app_factory=create_app,
        migrations_package="reelpolicy_portal.migrations",
        description="reelpolicy portal: the companies' pages in the browser.",
    )


if __name__ == "__main__":
    sys.exit(main())
