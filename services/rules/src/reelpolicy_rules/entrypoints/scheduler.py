"""The day scheduler (a runtime background task).

Checks every ``CLOCK_POLL_SECONDS`` and right after each day boundary in
``TIMEZONE`` whether the day moved on; if so, re-evaluates the date-dependent
policies (cause ``clock``). The clock is the service's injectable ``Rules.clock``.
A failed tick is logged and tried again at the next check; every loop beats
(``reelpolicy_common.supervisor.heartbeat``), so a tick that hangs shows in ``/healthz``.
"""

from __future__ import annotations

import asyncio
import logging

from reelpolicy_common.supervisor import heartbeat
from reelpolicy_rules.bootstrap import Rules
from reelpolicy_rules.domain.calendar import next_day_start
from reelpolicy_rules.handlers.new_day import tick

log = logging.getLogger(__name__)
TICK_ALLOWANCE_SECONDS = 300.0  # a new day re-evaluates every date-dependent result


async def run_scheduler(rules: Rules) -> None:
    while True:
        heartbeat(within=rules.settings.clock_poll_seconds + TICK_ALLOWANCE_SECONDS)
        try:
            changed = await tick(
                uow=rules.uow,
                cache=rules.cache,
                book=rules.book,
                today=rules.today(),
                trace_limit=rules.settings.bulk_trace_limit,
            )
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
