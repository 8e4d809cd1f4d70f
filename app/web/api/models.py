"""Models and their layers over JSON: the REST twin of the editor page."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse

from app.core import graph as edits
from app.core.errors import Unavailable, UserError
from app.core.graph import check_model_name
from app.core.validation import validate
from app.services import augmentation
from app.services.editing import apply_edit, create_model, describe_model, duplicate_model
from app.store import repository
from app.store.tables import ModelRecord
from app.web.api.schemas import (
    LayerCreate,
    LayerMove,
    LayerRewire,
    LayerUpdate,
    ModelCreate,
    ModelDuplicate,
    ModelListItem,
    ModelOut,
    ModelRename,
    NodeOut,
)
from app.web.deps import ApiModel, ApiWorkspace, DataWorkerDep, InspectorDep, SessionDep, SettingsDep

router = APIRouter(tags=["models"])


def model_out(record: ModelRecord, settings: Any) -> ModelOut:
    graph = repository.load_graph(record)
    return ModelOut(
        id=record.id, name=record.name, revision=record.revision,
        created_at=record.created_at, updated_at=record.updated_at,
        layers=[NodeOut(**node.model_dump()) for node in graph.nodes],
        validation=validate(graph, settings.limits).as_dict(),
    )


@router.get("/models")
def list_models(workspace_id: ApiWorkspace, session: SessionDep) -> list[ModelListItem]:
    """The workspace's models, most recently changed first, with their layer counts."""
    return [ModelListItem(id=r.id, name=r.name, updated_at=r.updated_at,
                          layer_count=len(repository.load_graph(r).nodes))
            for r in repository.list_models(session, workspace_id)]


@router.post("/models", status_code=201)
def create_from_starter(body: ModelCreate, workspace_id: ApiWorkspace, session: SessionDep,
           settings: SettingsDep) -> ModelOut:
    """Create a model from a starter (see GET /api/v1/starters)."""
    return model_out(create_model(session, settings, workspace_id, body.name, body.starter), settings)


@router.get("/models/{model_id}")
def get_model(record: ApiModel, settings: SettingsDep) -> ModelOut:
    """A model: its layers, every problem found, the parameter count and the Keras summary when it builds."""
    return model_out(record, settings)


@router.patch("/models/{model_id}")
def rename_model(body: ModelRename, record: ApiModel, session: SessionDep, settings: SettingsDep) -> ModelOut:
    """Rename a model (1 to 64 letters, digits, spaces or _ . - ( ))."""
    repository.rename_model(session, record, check_model_name(body.name))
    return model_out(record, settings)


@router.delete("/models/{model_id}", status_code=204)
def delete_model(record: ApiModel, session: SessionDep) -> Response:
    """Delete a model and its undo history; its runs stay in the run list."""
    repository.delete_model(session, record)
    return Response(status_code=204)


@router.post("/models/{model_id}/duplicate", status_code=201)
def duplicate(body: ModelDuplicate, record: ApiModel, session: SessionDep, settings: SettingsDep) -> ModelOut:
    """Copy the model; without a name the copy is called "<name> (copy)"."""
    return model_out(duplicate_model(session, settings, record, body.name), settings)


@router.post("/models/{model_id}/layers", status_code=201)
def add_layer(body: LayerCreate, record: ApiModel, session: SessionDep, settings: SettingsDep,
              inspector: InspectorDep) -> ModelOut:
    """Add a layer after `after` (default: the last one), or wired to `inputs`."""
    apply_edit(session, settings, record,
               lambda g: edits.add_layer(g, body.type, body.params, body.name, body.after, body.inputs)[0],
               f"add {body.type}", inspector)
    return model_out(record, settings)


@router.patch("/models/{model_id}/layers/{layer_id}")
def update_layer(layer_id: str, body: LayerUpdate, record: ApiModel, session: SessionDep,
                 settings: SettingsDep, inspector: InspectorDep) -> ModelOut:
    """Change a layer's parameters or name; refused values are named with what is allowed."""
    apply_edit(session, settings, record,
               lambda g: edits.update_layer(g, layer_id, body.params, body.name), f"change {layer_id}", inspector,
               changed_layer=layer_id)
    return model_out(record, settings)


@router.delete("/models/{model_id}/layers/{layer_id}")
def remove_layer(layer_id: str, record: ApiModel, session: SessionDep, settings: SettingsDep,
                 inspector: InspectorDep) -> ModelOut:
    """Remove a layer; the layers after it are wired to what came before it."""
    apply_edit(session, settings, record, lambda g: edits.remove_layer(g, layer_id), f"remove {layer_id}", inspector)
    return model_out(record, settings)


@router.post("/models/{model_id}/layers/{layer_id}/move")
def move_layer(layer_id: str, body: LayerMove, record: ApiModel, session: SessionDep,
               settings: SettingsDep, inspector: InspectorDep) -> ModelOut:
    """Move a layer one step (`direction`) or to a list index (`position`)."""
    if (body.direction is None) == (body.position is None):
        raise UserError("Send either `direction` (up or down) or `position` (a list index).",
                        layer_id=layer_id, field="direction")
    direction, position = body.direction, body.position
    if direction is not None:
        apply_edit(session, settings, record, lambda g: edits.move_layer(g, layer_id, direction),
                   f"move {layer_id} {direction}", inspector)
    elif position is not None:
        apply_edit(session, settings, record, lambda g: edits.move_layer_to(g, layer_id, position),
                   f"move {layer_id}", inspector)
    return model_out(record, settings)


@router.put("/models/{model_id}/layers/{layer_id}/inputs")
def rewire_layer(layer_id: str, body: LayerRewire, record: ApiModel, session: SessionDep,
                 settings: SettingsDep, inspector: InspectorDep) -> ModelOut:
    """Wire a layer to exactly these input layers (branches and merges)."""
    apply_edit(session, settings, record, lambda g: edits.rewire_layer(g, layer_id, body.inputs),
               f"rewire {layer_id}", inspector)
    return model_out(record, settings)


@router.post("/models/{model_id}/undo")
def undo(record: ApiModel, session: SessionDep, settings: SettingsDep) -> ModelOut:
    """Undo the model's last edit."""
    repository.undo(session, record)
    return model_out(record, settings)


@router.get("/models/{model_id}/validate")
def validate_model(record: ApiModel, session: SessionDep, settings: SettingsDep,
                   inspector: InspectorDep) -> dict[str, Any]:
    """Pure-Python checks, then Keras' build; every problem with its layer id."""
    state = describe_model(session, record, settings, inspector)
    body = state.report.as_dict()
    body["issues"] = [i.as_dict() for i in state.issues]
    body["valid"] = state.valid
    if state.notices:
        body["notices"] = state.notices
    return body


@router.get("/models/{model_id}/summary")
def summary(record: ApiModel, session: SessionDep, settings: SettingsDep, inspector: InspectorDep,
            text: bool = False) -> dict[str, Any]:
    """Keras' own summary: every layer's output shape and parameters, and the totals.

    With `text=true`, also Keras' printed `model.summary()`.
    """
    state = describe_model(session, record, settings, inspector, with_text=text)
    if state.notices and state.summary is None and state.report.ok and state.keras_issue is None:
        raise Unavailable(state.notices[0])
    if not state.valid:
        first = next(i for i in state.issues if i.severity == "error")
        raise first.as_error(others=state.issues)
    assert state.summary is not None  # valid means Keras built it
    return {**state.summary, "issues": [i.as_dict() for i in state.issues],
            "activations_bytes_per_sample": state.report.as_dict()["estimate"]["activations_bytes_per_sample"]}


Seed = Annotated[int, Query(ge=0, le=augmentation.MAX_SEED, description="Picks the random changes; another seed "
                            "gives other examples.", examples=[1])]


@router.get("/models/{model_id}/augmentation.png", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}}, "description": "The picture, as PNG."}})
def augmentation_preview(record: ApiModel, session: SessionDep, settings: SettingsDep, worker: DataWorkerDep,
                         seed: Seed = 0) -> FileResponse:
    """What the model's augmentation layers (RandomFlip, RandomRotation, RandomZoom, RandomTranslation,
    RandomContrast, RandomBrightness) do to the attached dataset's images: 4 training images in rows, each first
    as it is, then as 5 training steps could see it. Only training applies them; testing and predictions see the
    images unchanged. 422 when the model has no augmentation layer or no image dataset attached."""
    path = augmentation.preview(session, settings, worker, record, seed)
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})
