"""The day scheduler (a runtime background task).

Checks every ``CLOCK_POLL_SECONDS`` and right after each day boundary in
``TIMEZONE`` whether the day moved on; if so, re-evaluates the date-dependent
policies (cause ``clock``). The clock is the service's injectable ``Rules.clock``.
"""

from __future__ import annotations

import asyncio
import logging

from reelpolicy_rules.bootstrap import Rules
from reelpolicy_rules.domain.calendar import next_day_start
from reelpolicy_rules.handlers.clock import tick

log = logging.getLogger(__name__)


async def run_scheduler(rules: Rules) -> None:
    while True:
        try:
            changed = await tick(
                uow=rules.uow, cache=rules.cache, book=rules.book, today=rules.today(),
                trace_limit=rules.settings.bulk_trace_limit,
            )  # fmt: skip
            if changed is not None:
                log.info("new day %s: %d result(s) changed", rules.today(), changed)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("clock tick failed; retrying")
        now = rules.clock()
        until_boundary = (next_day_start(now, rules.settings.timezone) - now).total_seconds()
        await asyncio.sleep(
            max(0.01, min(rules.settings.clock_poll_seconds, until_boundary + 0.01))
        )
