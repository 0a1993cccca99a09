"""The FastAPI dependencies the ingest routers share."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from reelpolicy_ingest.bootstrap import Ingest


async def get_ingest(request: Request) -> Ingest:
    ingest: Ingest = request.app.state.ingest
    return ingest


IngestDep = Annotated[Ingest, Depends(get_ingest)]
