"""FastAPI dependencies shared by the notify routers."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from reelpolicy_notify.bootstrap import Notify


async def get_notify(request: Request) -> Notify:
    notify: Notify = request.app.state.notify
    return notify


NotifyDep = Annotated[Notify, Depends(get_notify)]
