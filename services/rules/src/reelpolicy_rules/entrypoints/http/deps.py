"""The FastAPI dependencies of the rules HTTP API."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from reelpolicy_rules.bootstrap import Rules


async def get_rules(request: Request) -> Rules:
    rules: Rules = request.app.state.rules
    return rules


RulesDep = Annotated[Rules, Depends(get_rules)]
