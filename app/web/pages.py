"""HTML pages and the HTMX fragments of the model editor.

Every form is a real form: with JavaScript, htmx posts it and swaps in the fragments that
changed; without, the browser posts it and gets the page again (Post/Redirect/Get).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from app.core import graph as edits
from app.core.catalog import CATALOG
from app.core.errors import NotFound, UserError
from app.core.graph import Graph, check_model_name
from app.core.starters import STARTERS
from app.core.training import PARAMS_BY_NAME, output_head
from app.core.validation import validate
from app.services import datasets, importing, storage, workshops
from app.services.augmentation import MAX_SEED
from app.services.editing import apply_edit, create_model, describe_model, duplicate_model
from app.services.training import DATA_DEPENDENT_SETTINGS, next_run_settings
from app.store import repository, runs
from app.store.tables import ModelRecord, RunRecord
from app.web.auth import CSRF_FIELD, CSRF_HEADER, check_csrf
from app.web.deps import InspectorDep, PageModel, PageViewer, PageWorkspace, SessionDep, SettingsDep
from app.web.errors import status_of
from app.web.security import SAFE_METHODS
from app.web.templating import is_htmx, render

router = APIRouter(include_in_schema=False)

EDITOR_UPDATE = "partials/_editor_update.html"


async def read_form(request: Request) -> FormData:
    """Parse the form in the event loop, so that routes can be plain functions run in a thread,
    and check its CSRF token (a hidden field, or htmx's header) against the session.

    At most one file: no page sends more (the form is parsed once per request, and cached).
    """
    form = await request.form(max_files=1)
    if request.method not in SAFE_METHODS:
        sent = form.get(CSRF_FIELD)
        check_csrf(request, sent if isinstance(sent, str) else request.headers.get(CSRF_HEADER))
    return form


FormDep = Annotated[FormData, Depends(read_form)]


def training_form_values(form: Any) -> dict[str, Any]:
    """The training settings a form sent (fields `t.<name>`); checkboxes send false through a hidden field first."""
    values: dict[str, Any] = {}
    for name in PARAMS_BY_NAME:
        sent = form.getlist(f"t.{name}")
        if not sent:
            continue
        values[name] = [v for v in sent if v] if name == "metrics" else sent[-1]
    return values


PANEL_KEY_FIELD = "panel_key"  # sent by app.js with every editor post: which training panel the page shows


def panel_key(state: Any, dataset: Any) -> str:
    """A fingerprint of what the training panel shows that a layer edit can change: the data, the
    Input shape, the output layer and how the model fits the data."""
    inputs = [n.params.get("shape") for n in state.graph.nodes if n.type == "Input"]
    head = output_head(state.graph, state.report) if state.report.ok else None
    facts = [dataset.id if dataset else None, inputs, state.report.ok,
             [head.units, head.activation] if head else None,
             [[i.message, i.layer_id, i.severity] for i in state.fit_issues]]
    return hashlib.sha256(json.dumps(facts, default=str).encode()).hexdigest()[:16]


class Editor:
    """Renders the editor, whole or as the fragments an HTMX edit swaps in.

    The training form's unsent values travel with every edit (app.js adds them), so that
    changing a layer does not undo what the learner typed into the settings.
    """

    def __init__(self, request: Request, session: SessionDep, settings: SettingsDep,
                 inspector: InspectorDep, form: FormDep):
        self.request, self.session, self.settings, self.inspector = request, session, settings, inspector
        self.draft = training_form_values(form if request.method == "POST" else request.query_params)
        self.sent_panel_key = str(form.get(PANEL_KEY_FIELD) or "") if request.method == "POST" else ""

    def show(self, record: ModelRecord, *, selected: str | None = None, error: UserError | None = None,
             form_values: dict[str, Any] | None = None, flash: str | None = None, panel_error: bool = False,
             settings_source: str = "draft", from_run: RunRecord | None = None,
             just_edited: bool = False) -> Response:
        """The editor. `settings_source`: "draft" keeps the form's values, "data" re-suggests the
        settings that depend on the data (after a dataset change), "suggested" resets them all.
        The settings start from `from_run` when given ("Train again"), else from the model's last run."""
        dataset = datasets.attached_dataset(self.session, record)
        meta = datasets.meta_of(dataset) if dataset else None
        state = describe_model(self.session, record, self.settings, self.inspector, meta=meta)
        ids = [n.id for n in state.graph.nodes]
        if selected not in ids:
            selected = ids[-1] if ids else None
        key = panel_key(state, dataset)
        context = {
            "model": record, "state": state, "selected_id": selected,
            "selected": state.graph.node(selected) if selected else None,
            "error": None if panel_error else error, "form_values": form_values or {}, "flash": flash,
            "can_undo": just_edited or repository.last_edit(self.session, record.id) is not None,
            "dataset": dataset, "meta": meta, "panel_error": error if panel_error else None,
            "panel_key": key,
            # An htmx edit that left everything the training panel shows as it was does not redraw it:
            # it is a quarter of an edit's work, and the page keeps what the learner typed there.
            "keep_train_panel": just_edited and is_htmx(self.request) and self.sent_panel_key == key,
        }
        if not context["keep_train_panel"]:
            model_runs = runs.list_runs(self.session, record.workspace_id, record.id, limit=8)
            member = workshops.membership(self.session, record.workspace_id)
            max_upload = self.settings.max_upload_bytes
            if member is not None:
                max_upload = min(max_upload, member.limits.max_upload_mb * 1024 * 1024)
            train_values, settings_run = self._train_values(record, state, meta, settings_source,
                                                            from_run or (model_runs[0] if model_runs else None))
            context.update({
                "train_values": train_values, "settings_run": settings_run, "model_runs": model_runs,
                "workspace_datasets": datasets.list_datasets(self.session, record.workspace_id),
                "dataset_choices": datasets.builtin_choices(self.settings, state.graph, dataset,
                                                            member.datasets if member else None),
                "proposal": datasets.output_proposal(meta) if meta else None,
                "uploads_allowed": member is None or member.limits.uploads,
                "kept_weights": importing.imported_weights(self.settings, record),
                "max_upload_bytes": max_upload,
            })
        status = status_of(error) if error else 200
        return render(self.request, "editor.html", context, status_code=status, fragment=EDITOR_UPDATE)

    def _train_values(self, record: ModelRecord, state: Any, meta: Any, source: str,
                      last_run: RunRecord | None) -> tuple[dict[str, Any], int | None]:
        if meta is None:
            return {}, None
        start, settings_run = next_run_settings(self.session, record, meta, state.graph, state.report, last_run)
        if source == "suggested":
            return datasets.suggested_config(meta, state.graph, state.report), None
        draft = dict(self.draft)
        if source == "data":
            for name in DATA_DEPENDENT_SETTINGS:
                draft.pop(name, None)
        return {**start, **draft}, settings_run

    def done(self, record: ModelRecord, *, selected: str | None = None, error: UserError | None = None,
             form_values: dict[str, Any] | None = None, flash: str | None = None, panel_error: bool = False,
             settings_source: str = "draft", just_edited: bool = False) -> Response:
        """The answer to a form post: fragments for htmx; without JavaScript, the page again (after a
        redirect when it worked, so that reloading does not post twice)."""
        if error is None and not is_htmx(self.request):
            url = self.request.app.url_path_for("editor", model_id=str(record.id))
            return RedirectResponse(f"{url}?layer={selected}" if selected else url, status_code=303)
        return self.show(record, selected=selected, error=error, form_values=form_values, flash=flash,
                         panel_error=panel_error, settings_source=settings_source, just_edited=just_edited)

    def edit(self, record: ModelRecord, edit: Callable[[Graph], Graph], description: str, *,
             selected: str | None, form_values: dict[str, Any] | None = None,
             changed_layer: str | None = None) -> Response:
        try:
            apply_edit(self.session, self.settings, record, edit, description, self.inspector, changed_layer)
        except UserError as exc:
            return self.done(record, selected=exc.layer_id or selected, error=exc, form_values=form_values)
        return self.done(record, selected=selected, just_edited=True)


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


def redirect_to(request: Request, url: str) -> Response:
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def _home(request: Request, session: Any, workspace_id: str | None, error: UserError | None = None,
          form_values: dict[str, Any] | None = None) -> Response:
    records = repository.list_models(session, workspace_id) if workspace_id else []
    models = [(r, len(repository.load_graph(r).nodes)) for r in records]
    settings = request.app.state.settings
    context = {"models": models, "starters": STARTERS.values(), "error": error, "form_values": form_values or {},
               "recent_runs": runs.list_runs(session, workspace_id)[:5] if workspace_id else [],
               "storage_used": storage.workspace_usage(session, settings, workspace_id) if workspace_id else 0,
               "storage_quota": settings.workspace_quota_bytes}
    return render(request, "home.html", context, status_code=status_of(error) if error else 200)


@router.get("/", response_class=HTMLResponse, name="home")
def home(request: Request, workspace_id: PageViewer, session: SessionDep) -> Response:
    return _home(request, session, workspace_id)


@router.post("/models", name="create_model")
def create(request: Request, form: FormDep, workspace_id: PageWorkspace, session: SessionDep,
           settings: SettingsDep) -> Response:
    try:
        record = create_model(session, settings, workspace_id, str(form.get("name") or "").strip() or None,
                              str(form.get("starter") or "blank"))
    except UserError as exc:
        return _home(request, session, workspace_id, exc, dict(form))
    return redirect_to(request, request.app.url_path_for("editor", model_id=str(record.id)))


@router.get("/models/{model_id}", response_class=HTMLResponse, name="editor")
def editor(record: PageModel, view: EditorDep, layer: str | None = None, settings: str | None = None,
           from_run: int | None = None) -> Response:
    """The editor; `?settings=suggested` resets the training form to the settings that fit the data,
    `?from_run=<id>` fills it with that run's settings ("Train again")."""
    run = runs.get_run(view.session, record.workspace_id, from_run) if from_run is not None else None
    return view.show(record, selected=layer, settings_source="suggested" if settings == "suggested" else "draft",
                     from_run=run)


@router.get("/models/{model_id}/augmentation", response_class=HTMLResponse, name="augmentation_preview")
def augmentation_preview(request: Request, record: PageModel, session: SessionDep, seed: int = 0) -> Response:
    """The editor's augmentation figure with other examples (`seed`), which "New examples" swaps in."""
    dataset = datasets.attached_dataset(session, record)
    meta = datasets.meta_of(dataset) if dataset else None
    state = {"report": validate(Graph.model_validate_json(record.graph_json))}
    return render(request, "partials/_augmentation_preview.html",
                  {"model": record, "meta": meta, "state": state, "seed": max(0, min(seed, MAX_SEED - 1))})


@router.post("/models/{model_id}/layers", name="add_layer")
def add_layer(form: FormDep, record: PageModel, view: EditorDep) -> Response:
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
    except UserError as exc:
        return view.done(record, selected=after, error=exc)
    return view.done(record, selected=added["id"])


@router.post("/models/{model_id}/layers/{layer_id}", name="update_layer")
def update_layer(form: FormDep, layer_id: str, record: PageModel, view: EditorDep) -> Response:
    node_type = next((n.type for n in repository.load_graph(record).nodes if n.id == layer_id), None)
    if node_type is None:
        return view.done(record, error=NotFound(f"There is no layer {layer_id[:60]!r} in this model."))
    params = _params_from_form(form, node_type)
    name = _last(form, "name")
    return view.edit(record, lambda g: edits.update_layer(g, layer_id, params, name), f"change {layer_id}",
                     selected=layer_id, form_values={**params, "name": name}, changed_layer=layer_id)


@router.post("/models/{model_id}/layers/{layer_id}/delete", name="remove_layer")
def remove_layer(layer_id: str, record: PageModel, view: EditorDep) -> Response:
    ids = [n.id for n in repository.load_graph(record).nodes]
    neighbour = ids[ids.index(layer_id) - 1] if layer_id in ids and ids.index(layer_id) > 0 else None
    return view.edit(record, lambda g: edits.remove_layer(g, layer_id), f"remove {layer_id}", selected=neighbour)


@router.post("/models/{model_id}/layers/{layer_id}/move", name="move_layer")
def move_layer(form: FormDep, layer_id: str, record: PageModel, view: EditorDep) -> Response:
    position = str(form.get("position") or "")
    if position.lstrip("-").isdigit() and len(position) < 6:
        edit: Callable[[Graph], Graph] = lambda g: edits.move_layer_to(g, layer_id, int(position))
    else:
        direction = str(form.get("direction") or "")
        edit = lambda g: edits.move_layer(g, layer_id, direction)
    return view.edit(record, edit, f"move {layer_id}", selected=layer_id)


@router.post("/models/{model_id}/layers/{layer_id}/inputs", name="rewire_layer")
def rewire_layer(form: FormDep, layer_id: str, record: PageModel, view: EditorDep) -> Response:
    inputs = [str(i) for i in form.getlist("inputs")]
    return view.edit(record, lambda g: edits.rewire_layer(g, layer_id, inputs), f"rewire {layer_id}",
                     selected=layer_id)


@router.post("/models/{model_id}/undo", name="undo")
def undo(form: FormDep, record: PageModel, view: EditorDep) -> Response:
    selected = str(form.get("selected") or "") or None
    try:
        description = repository.undo(view.session, record)
    except UserError as exc:
        return view.done(record, selected=selected, error=exc)
    return view.done(record, selected=selected, flash=f"Undone: {description}.")


@router.post("/models/{model_id}/rename", name="rename_model")
def rename(form: FormDep, record: PageModel, view: EditorDep) -> Response:
    try:
        repository.rename_model(view.session, record, check_model_name(str(form.get("name") or "")))
    except UserError as exc:
        exc.field = "model_name"
        return view.done(record, error=exc)
    return view.done(record, flash="Model renamed.")


@router.post("/models/{model_id}/duplicate", name="duplicate_model")
def duplicate(record: PageModel, view: EditorDep) -> Response:
    try:
        copy = duplicate_model(view.session, view.settings, record)
    except UserError as exc:
        return view.done(record, error=exc)
    return redirect_to(view.request, view.request.app.url_path_for("editor", model_id=str(copy.id)))


@router.post("/models/{model_id}/delete", name="delete_model")
def delete(request: Request, record: PageModel, session: SessionDep) -> Response:
    repository.delete_model(session, record)
    return redirect_to(request, request.app.url_path_for("home"))
