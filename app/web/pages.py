"""HTML pages and the HTMX fragments of the model editor."""

from __future__ import annotations

from typing import Annotated, Any, Callable

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from app.core import graph as edits
from app.core.catalog import CATALOG
from app.core.graph import Graph
from app.core.starters import STARTERS
from app.errors import PublicError
from app.store import repository, runs
from app.store.tables import ModelRecord
from app.web import datasets
from app.web.deps import InspectorDep, PageModel, PageWorkspace, SessionDep, SettingsDep
from app.web.editing import apply_edit, checked_name, create_model, describe_model
from app.web.templating import is_htmx, render

router = APIRouter(include_in_schema=False)

EDITOR_UPDATE = "partials/_editor_update.html"


async def read_form(request: Request) -> FormData:
    """Parse the form in the event loop, so that routes can be plain functions run in a thread."""
    return await request.form()


FormDep = Annotated[FormData, Depends(read_form)]


class Editor:
    """Renders the editor, whole or as the fragments an HTMX edit swaps in."""

    def __init__(self, request: Request, session: SessionDep, settings: SettingsDep,
                 inspector: InspectorDep):
        self.request, self.session, self.settings, self.inspector = request, session, settings, inspector

    def show(self, record: ModelRecord, *, selected: str | None = None, error: PublicError | None = None,
             form_values: dict[str, Any] | None = None, flash: str | None = None, panel_error: bool = False,
             train_values: dict[str, Any] | None = None) -> HTMLResponse:
        dataset = datasets.attached_dataset(self.session, record)
        meta = datasets.meta_of(dataset) if dataset else None
        state = describe_model(record, self.settings, self.inspector, meta=meta)
        ids = [n.id for n in state.graph.nodes]
        if selected not in ids:
            selected = ids[-1] if ids else None
        suggested = datasets.suggested_config(meta, state.graph, state.report) if meta else {}
        context = {
            "model": record, "state": state, "selected_id": selected,
            "selected": state.graph.node(selected) if selected else None,
            "error": None if panel_error else error, "form_values": form_values or {}, "flash": flash,
            "can_undo": repository.last_edit(self.session, record.id) is not None,
            "dataset": dataset, "meta": meta, "panel_error": error if panel_error else None,
            "train_values": {**suggested, **(train_values or {})},
            "workspace_datasets": datasets.list_datasets(self.session, record.workspace_id),
            "model_runs": runs.list_runs(self.session, record.workspace_id, record.id)[:8],
            "proposal": datasets.output_proposal(meta) if meta else None,
            "max_upload_bytes": self.settings.max_upload_bytes,
        }
        status = error.status if error else 200
        return render(self.request, "editor.html", context, status_code=status, fragment=EDITOR_UPDATE)

    def edit(self, record: ModelRecord, edit: Callable[[Graph], Graph], description: str, *,
             selected: str | None, form_values: dict[str, Any] | None = None) -> HTMLResponse:
        try:
            apply_edit(self.session, self.settings, record, edit, description, self.inspector)
        except PublicError as exc:
            return self.show(record, selected=exc.layer_id or selected, error=exc, form_values=form_values)
        return self.show(record, selected=selected)


EditorDep = Annotated[Editor, Depends()]


def _last(form: FormData, key: str) -> Any:
    values = form.getlist(key)
    return values[-1] if values else None


def _params_from_form(form: FormData, node_type: str) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for param in CATALOG[node_type].params:
        value = _last(form, f"p.{param.name}")
        if value is not None:
            params[param.name] = value
    return params


@router.get("/", response_class=HTMLResponse)
def home(request: Request, workspace_id: PageWorkspace, session: SessionDep) -> HTMLResponse:
    models = [(r, len(repository.load_graph(r).nodes)) for r in repository.list_models(session, workspace_id)]
    return render(request, "home.html", {"models": models, "starters": STARTERS.values(),
                                         "recent_runs": runs.list_runs(session, workspace_id)[:5]})


@router.post("/models")
def create(request: Request, form: FormDep, workspace_id: PageWorkspace, session: SessionDep,
                 settings: SettingsDep) -> Response:
    try:
        record = create_model(session, settings, workspace_id, str(form.get("name") or "Untitled model"),
                              str(form.get("starter") or "blank"))
    except PublicError as exc:
        models = [(r, len(repository.load_graph(r).nodes)) for r in repository.list_models(session, workspace_id)]
        return render(request, "home.html", {"models": models, "starters": STARTERS.values(), "error": exc,
                                             "form_values": dict(form)}, status_code=exc.status)
    return redirect_to(request, f"/models/{record.id}")


def redirect_to(request: Request, url: str) -> Response:
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


@router.get("/models/{model_id}", response_class=HTMLResponse)
def editor(record: PageModel, view: EditorDep, layer: str | None = None) -> HTMLResponse:
    return view.show(record, selected=layer)


@router.post("/models/{model_id}/layers", response_class=HTMLResponse)
def add_layer(form: FormDep, record: PageModel, view: EditorDep) -> HTMLResponse:
    type_name = str(form.get("type") or "")
    after = str(form.get("after") or "") or None
    inputs = [str(i) for i in form.getlist("inputs")] or None
    added: dict[str, str] = {}

    def edit(graph: Graph) -> Graph:
        new, node_id = edits.add_layer(graph, type_name, None, None, after, inputs)
        added["id"] = node_id
        return new

    try:
        apply_edit(view.session, view.settings, record, edit, f"add {type_name}", view.inspector)
    except PublicError as exc:
        return view.show(record, selected=after, error=exc)
    return view.show(record, selected=added["id"])


@router.post("/models/{model_id}/layers/{layer_id}", response_class=HTMLResponse)
def update_layer(form: FormDep, layer_id: str, record: PageModel, view: EditorDep) -> HTMLResponse:
    node_type = next((n.type for n in repository.load_graph(record).nodes if n.id == layer_id), None)
    if node_type is None:
        return view.show(record, error=PublicError(f"There is no layer {layer_id!r} in this model.", status=404))
    params = _params_from_form(form, node_type)
    name = _last(form, "name")
    return view.edit(record, lambda g: edits.update_layer(g, layer_id, params, name), f"change {layer_id}",
                     selected=layer_id, form_values={**params, "name": name})


@router.post("/models/{model_id}/layers/{layer_id}/delete", response_class=HTMLResponse)
def remove_layer(layer_id: str, record: PageModel, view: EditorDep) -> HTMLResponse:
    graph = repository.load_graph(record)
    ids = [n.id for n in graph.nodes]
    neighbour = ids[ids.index(layer_id) - 1] if layer_id in ids and ids.index(layer_id) > 0 else None
    return view.edit(record, lambda g: edits.remove_layer(g, layer_id), f"remove {layer_id}",
                     selected=neighbour)


@router.post("/models/{model_id}/layers/{layer_id}/move", response_class=HTMLResponse)
def move_layer(form: FormDep, layer_id: str, record: PageModel, view: EditorDep) -> HTMLResponse:
    position = str(form.get("position") or "")
    if position.lstrip("-").isdigit():
        edit: Callable[[Graph], Graph] = lambda g: edits.move_layer_to(g, layer_id, int(position))
    else:
        direction = str(form.get("direction") or "")
        edit = lambda g: edits.move_layer(g, layer_id, direction)
    return view.edit(record, edit, f"move {layer_id}", selected=layer_id)


@router.post("/models/{model_id}/layers/{layer_id}/inputs", response_class=HTMLResponse)
def rewire_layer(form: FormDep, layer_id: str, record: PageModel, view: EditorDep) -> HTMLResponse:
    inputs = [str(i) for i in form.getlist("inputs")]
    return view.edit(record, lambda g: edits.rewire_layer(g, layer_id, inputs), f"rewire {layer_id}",
                     selected=layer_id)


@router.post("/models/{model_id}/undo", response_class=HTMLResponse)
def undo(form: FormDep, record: PageModel, view: EditorDep) -> HTMLResponse:
    selected = str(form.get("selected") or "") or None
    try:
        description = repository.undo(view.session, record)
    except PublicError as exc:
        return view.show(record, selected=selected, error=exc)
    return view.show(record, selected=selected, flash=f"Undone: {description}.")


@router.post("/models/{model_id}/rename", response_class=HTMLResponse)
def rename(form: FormDep, record: PageModel, view: EditorDep) -> HTMLResponse:
    try:
        repository.rename_model(view.session, record, checked_name(str(form.get("name") or "")))
    except PublicError as exc:
        exc.field = "model_name"
        return view.show(record, error=exc)
    return view.show(record, flash="Model renamed.")


@router.post("/models/{model_id}/duplicate")
def duplicate(request: Request, record: PageModel, session: SessionDep) -> Response:
    copy = repository.duplicate_model(session, record, f"{record.name} (copy)"[:64])
    return redirect_to(request, f"/models/{copy.id}")


@router.post("/models/{model_id}/delete")
def delete(request: Request, record: PageModel, session: SessionDep) -> Response:
    repository.delete_model(session, record)
    return redirect_to(request, "/")
