"""Variant searches over JSON: start one from a model, follow its trials, stop or resume it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from app.services.searches import SearchDriver, get_search, list_searches, search_out
from app.store.tables import SearchRecord
from app.web.api.schemas import SearchCreate, SearchOut
from app.web.deps import ApiModel, ApiWorkspace, SessionDep

router = APIRouter(tags=["searches"])


def search_driver(request: Request) -> SearchDriver:
    driver: SearchDriver = request.app.state.search_driver
    return driver


DriverDep = Annotated[SearchDriver, Depends(search_driver)]


def api_search(search_id: int, workspace_id: ApiWorkspace, session: SessionDep) -> SearchRecord:
    return get_search(session, workspace_id, search_id)


ApiSearch = Annotated[SearchRecord, Depends(api_search)]


@router.post("/models/{model_id}/searches", status_code=201)
def start_search(body: SearchCreate, record: ApiModel, workspace_id: ApiWorkspace, session: SessionDep,
                 driver: DriverDep) -> SearchOut:
    """Train variants of the model along the chosen axes, within a budget: the full grid when it fits,
    or trials proposed by Optuna's TPE sampler from the results so far. Trials are ordinary runs."""
    search = driver.create(session, workspace_id, record, body.model_dump(exclude_none=True))
    return SearchOut.model_validate(search_out(session, search))


@router.get("/searches")
def searches(workspace_id: ApiWorkspace, session: SessionDep, model_id: int | None = None) -> list[SearchOut]:
    """The workspace's variant searches (of one model with `model_id`), newest first, with their trials."""
    return [SearchOut.model_validate(search_out(session, s)) for s in list_searches(session, workspace_id, model_id)]


@router.get("/searches/{search_id}")
def get(search: ApiSearch, session: SessionDep) -> SearchOut:
    """The search's state, its trials (each with its run, parameters, state and metric), the ranking and the best."""
    return SearchOut.model_validate(search_out(session, search))


@router.post("/searches/{search_id}/stop")
def stop(search: ApiSearch, session: SessionDep, driver: DriverDep) -> SearchOut:
    """Cancel the trials that have not finished; the finished ones are kept."""
    driver.stop(session, search)
    session.refresh(search)
    return SearchOut.model_validate(search_out(session, search))


@router.post("/searches/{search_id}/resume")
def resume(search: ApiSearch, session: SessionDep, driver: DriverDep) -> SearchOut:
    """Continue a search that a server restart interrupted."""
    driver.resume(session, search)
    session.refresh(search)
    return SearchOut.model_validate(search_out(session, search))
