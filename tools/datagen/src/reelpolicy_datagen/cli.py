"""``reelpolicy-datagen``: write synthetic enterprises and productions as JSON Lines, the
registry's import format (``reelpolicy-registry import FILE`` or ``POST /v1/import``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reelpolicy_datagen.registry_rows import generate_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="reelpolicy-datagen", description="Write synthetic registry data (JSON Lines)."
    )
    parser.add_argument("--enterprises", type=int, default=1000)
    parser.add_argument("--productions", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="the file (default: stdout)")
    args = parser.parse_args(argv)
    out = sys.stdout if args.out is None else args.out.open("w", encoding="utf-8")
    try:
        for row in generate_rows(
            enterprises=args.enterprises, productions=args.productions, seed=args.seed
        ):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
