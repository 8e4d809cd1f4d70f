"""Pages for variant searches: choosing the axes and budget, and following the trials live."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.core.errors import UserError, invalid_value
from app.core.search import AXES, METRICS, STRATEGIES
from app.services import datasets
from app.services.searches import SearchDriver, get_search, list_searches, search_out, trial_label
from app.store.tables import ModelRecord, SearchRecord
from app.web.deps import PageModel, PageOwner, SessionDep, SettingsDep
from app.web.errors import status_of
from app.web.pages import FormDep, redirect_to
from app.web.templating import render

router = APIRouter(include_in_schema=False)
NUMBER_AXES = {"width": float, "dropout": float, "learning_rate": float, "depth": int, "batch_size": int}
POLL_S = 3  # how often a running search's page asks for news


def _driver(request: Request) -> SearchDriver:
    driver: SearchDriver = request.app.state.search_driver
    return driver


def axes_from_form(form: Any) -> dict[str, list[Any]]:
    """The ticked axes with their comma-separated values, numbers read as numbers."""
    axes: dict[str, list[Any]] = {}
    for name in AXES:
        if not form.get(f"vary.{name}"):
            continue
        texts = [t.strip() for t in str(form.get(f"values.{name}") or "").split(",") if t.strip()]
        convert = NUMBER_AXES.get(name)
        try:
            axes[name] = [convert(t) for t in texts] if convert else texts
        except ValueError:
            raise invalid_value(f"axes.{name}", "numbers separated by commas", form.get(f"values.{name}")) from None
    return axes


def _number(form: Any, name: str, default: int) -> int:
    text = str(form.get(name) or default).strip()
    if not text.isdigit() or len(text) > 6:
        raise invalid_value(f"budget.{name}", "a whole number", text)
    return int(text)


def _form_page(request: Request, record: ModelRecord, session: Any, settings: Any, error: UserError | None = None,
               form: Any = None) -> Response:
    values = dict(form or {})
    context = {"model": record, "axes": AXES, "strategies": STRATEGIES, "metrics": METRICS, "error": error,
               "form": values, "dataset": datasets.attached_dataset(session, record),
               "max_runs": settings.max_search_runs,
               "searches": [search_out(session, s) for s in list_searches(session, record.workspace_id, record.id)]}
    return render(request, "search_new.html", context, status_code=status_of(error) if error else 200)


@router.get("/models/{model_id}/search", response_class=HTMLResponse, name="new_search")
def new_search(request: Request, record: PageModel, session: SessionDep, settings: SettingsDep) -> Response:
    return _form_page(request, record, session, settings)


@router.post("/models/{model_id}/searches", name="start_search")
def start_search(request: Request, form: FormDep, record: PageModel, workspace_id: PageOwner, session: SessionDep,
                 settings: SettingsDep) -> Response:
    try:
        body = {"axes": axes_from_form(form),
                "budget": {"runs": _number(form, "runs", 8), "epochs": _number(form, "epochs", 5)},
                "strategy": str(form.get("strategy") or "grid"), "metric": str(form.get("metric") or "val_accuracy")}
        search = _driver(request).create(session, workspace_id, record, body)
    except UserError as exc:
        session.rollback()
        return _form_page(request, record, session, settings, exc, form)
    return redirect_to(request, request.app.url_path_for("search", search_id=str(search.id)))


def _search_page(request: Request, session: Any, workspace_id: str, search_id: int,
                 error: UserError | None = None) -> Response:
    search = get_search(session, workspace_id, search_id)
    out = search_out(session, search)
    best = out["best"]["number"] if out["best"] else None
    ranked = {number: place for place, number in enumerate(out["ranking"], start=1)}
    rows = sorted(out["trials"], key=lambda t: (ranked.get(t["number"], len(ranked) + t["number"])))
    by_params = [{"x": t["params_count"], "y": t["value"], "best": t["number"] == best,
                  "label": f"trial {t['number']}: {trial_label(t['params'])}"} for t in out["trials"]]
    by_axis = {name: [{"x": values.index(t["params"][name]), "y": t["value"], "best": t["number"] == best,
                       "label": f"trial {t['number']}: {trial_label(t['params'])}"}
                      for t in out["trials"] if t["params"].get(name) in values]
               for name, values in out["axes"].items()}
    top = [t["run_id"] for t in rows if t["run_id"] is not None and t["number"] in ranked][:8]
    context = {"search": out, "rows": rows, "ranked": ranked, "by_params": by_params, "by_axis": by_axis,
               "top_runs": top, "error": error, "poll_s": POLL_S, "planned": out["planned"],
               "ended": sum(1 for t in out["trials"] if t["state"] not in ("waiting", "queued", "running"))}
    return render(request, "search.html", context, status_code=status_of(error) if error else 200)


@router.get("/searches/{search_id}", response_class=HTMLResponse, name="search")
def search_page(request: Request, search_id: int, workspace_id: PageOwner, session: SessionDep) -> Response:
    return _search_page(request, session, workspace_id, search_id)


def _command(request: Request, session: Any, workspace_id: str, search_id: int,
             command: Callable[[Any, SearchRecord], None]) -> Response:
    """Stop or resume a search, then show it again (or the refusal on its page)."""
    try:
        command(session, get_search(session, workspace_id, search_id))
    except UserError as exc:
        return _search_page(request, session, workspace_id, search_id, exc)
    return redirect_to(request, request.app.url_path_for("search", search_id=str(search_id)))


@router.post("/searches/{search_id}/stop", name="stop_search")
def stop_search(request: Request, search_id: int, workspace_id: PageOwner, session: SessionDep) -> Response:
    return _command(request, session, workspace_id, search_id, _driver(request).stop)


@router.post("/searches/{search_id}/resume", name="resume_search")
def resume_search(request: Request, search_id: int, workspace_id: PageOwner, session: SessionDep) -> Response:
    return _command(request, session, workspace_id, search_id, _driver(request).resume)
