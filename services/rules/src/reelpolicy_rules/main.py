"""The rules ASGI app: ``uvicorn --factory reelpolicy_rules.main:create_app``."""

from __future__ import annotations

from fastapi import FastAPI

from reelpolicy_common.db.pool import ConnectionLimits
from reelpolicy_common.http import create_service_app
from reelpolicy_rules.adapters.simulation_process import SimulationProcess, WorkerConfig
from reelpolicy_rules.bootstrap import Rules, bootstrap
from reelpolicy_rules.config import Settings
from reelpolicy_rules.entrypoints.consumers import register_consumers
from reelpolicy_rules.entrypoints.http import routers
from reelpolicy_rules.entrypoints.scheduler import run_scheduler
from reelpolicy_rules.entrypoints.simulation_worker import serve as serve_simulations


def create_app(settings: Settings | None = None, *, rules: Rules | None = None) -> FastAPI:
    """The composition root: bootstrap (unless given), the Kafka consumers, the day
    scheduler, the simulation process, the HTTP routers."""
    rules = rules or bootstrap(settings)
    register_consumers(rules)
    rules.runtime.add_background(lambda: run_scheduler(rules), name="rules-scheduler")
    s = rules.settings
    simulator = SimulationProcess(
        worker=serve_simulations,
        config=WorkerConfig(s.database_url, ConnectionLimits.from_settings(s)),
        cache=rules.cache,
        book=rules.book,
    )
    rules.simulator = simulator
    rules.runtime.on_stopped(simulator.close)
    app = create_service_app(
        rules.runtime,
        title="reelpolicy rules",
        description="Eligibility projection and recalculation; publishes eligibility changes.",
        routers=routers,
    )
    app.state.rules = rules
    return app
