"""``reelpolicy-dev``: run the platform locally, create topics, replay dead letters."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from reelpolicy_contracts import topics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="reelpolicy development tools")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run the whole platform (embedded servers by default)")
    up.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    make_topics = commands.add_parser("topics", help="create the topics on KAFKA_BOOTSTRAP_SERVERS")
    make_topics.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    replay = commands.add_parser("replay-dlq", help="re-produce TOPIC.dlq records to TOPIC")
    replay.add_argument("topic", choices=topics.MAIN_TOPICS)
    replay.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    args = parser.parse_args(argv)

    if args.command == "up":
        from reelpolicy_devstack.stack import up as run_up

        return run_up(args.root.resolve())
    if args.command == "topics":
        from reelpolicy_common.kafka import ensure_topics

        asyncio.run(ensure_topics(bootstrap_servers=args.bootstrap))
        print("topics ready:", ", ".join(topics.ALL_TOPICS))
        return 0
    from reelpolicy_devstack.dlq import replay_dead_letters

    count = asyncio.run(replay_dead_letters(bootstrap_servers=args.bootstrap, topic=args.topic))
    print(f"replayed {count} dead letter(s) to {args.topic}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
