"""The FastAPI dependencies of the rules HTTP API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from reelpolicy_rules.bootstrap import Rules
from reelpolicy_rules.ports import Simulator


async def get_rules(request: Request) -> Rules:
    rules: Rules = request.app.state.rules
    return rules


RulesDep = Annotated[Rules, Depends(get_rules)]


async def get_simulator(rules: RulesDep) -> Simulator:
    if rules.simulator is None:
        raise RuntimeError("no simulator: main.create_app wires one")
    return rules.simulator


SimulatorDep = Annotated[Simulator, Depends(get_simulator)]
