"""Request bodies and response shapes of the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def example(value: dict[str, Any]) -> ConfigDict:
    """A request body's configuration with the example the API documentation shows."""
    return ConfigDict(extra="forbid", json_schema_extra={"examples": [value]})


class WorkspaceCreated(BaseModel):
    workspace_id: str
    token: str = Field(description="Send as `Authorization: Bearer <token>`; it is shown only this once.")
    expires_in_days: float = Field(description="How long the token stays valid after its last use.")


class ModelCreate(Strict):
    model_config = example({"name": "Digits convnet", "starter": "convnet"})

    name: str | None = Field(None, description="1 to 64 letters, digits, spaces or _ . - ( ). Empty: a "
                             "name from the starter, numbered when taken (\"Convnet 2\").")
    starter: str = Field("blank", description="One of the keys from GET /api/v1/starters.")


class ModelRename(Strict):
    model_config = example({"name": "Wider convnet"})

    name: str


class ModelDuplicate(Strict):
    model_config = example({"name": "Convnet, tanh"})

    name: str | None = None


class LayerCreate(Strict):
    model_config = example({"type": "Dense", "params": {"units": 32, "activation": "relu"}, "after": "n3"})

    type: str = Field(description="A layer type from GET /api/v1/catalog.")
    params: dict[str, Any] = Field(default_factory=dict)
    name: str | None = None
    after: str | None = Field(None, description="Insert after this layer id (default: the last layer).")
    inputs: list[str] | None = Field(None, description="Wire to exactly these layer ids (branches and merges).")


class LayerUpdate(Strict):
    model_config = example({"params": {"units": 128, "activation": "tanh"}})

    params: dict[str, Any] = Field(default_factory=dict)
    name: str | None = None


class LayerMove(Strict):
    model_config = example({"direction": "up"})

    direction: Literal["up", "down"] | None = None
    position: int | None = Field(None, description="New index in the layer list (drag and drop).")


class LayerRewire(Strict):
    model_config = example({"inputs": ["n2", "n4"]})

    inputs: list[str]


class NodeOut(BaseModel):
    id: str
    type: str
    name: str
    params: dict[str, Any]
    inputs: list[str]


class ModelOut(BaseModel):
    id: int
    name: str
    revision: int
    created_at: datetime
    updated_at: datetime
    layers: list[NodeOut]
    validation: dict[str, Any]


class ModelListItem(BaseModel):
    id: int
    name: str
    layer_count: int
    updated_at: datetime


class RunMetrics(BaseModel):
    epochs: list[dict[str, Any]] = Field(description="One record per finished epoch: epoch, logs, times.")
    batches: list[dict[str, Any]] = Field(description="Batch losses, thinned to a chart's worth.")


class RunSummary(BaseModel):
    """A run as lists show it."""

    id: int
    name: str = Field(description="Its own name, or one that says what changed since the model's previous run.")
    named: bool = Field(description="Whether the name was given (false: the telling default).")
    notes: str | None
    state: str = Field(description="queued, running, completed, failed, diverged, cancelled or interrupted.")
    reason: str | None = Field(description="Why it ended (or what it is waiting for), in words.")
    active: bool = Field(description="Queued or running.")
    resumable: bool = Field(description="Ended early with a saved epoch, so POST .../resume continues it.")
    model_id: int | None
    model_name: str
    dataset_id: int | None
    dataset_name: str
    architecture: str = Field(description="The layers in one line, with activations and initializers.")
    params: int | None = Field(description="The model's parameter count.")
    config: dict[str, Any] = Field(description="The training settings it ran with.")
    epochs_done: int
    epochs: int | None
    saved_epoch: int | None = Field(description="The last epoch saved in its checkpoint (null in lists).")
    queue_position: int | None = Field(description="1 for the next run to start; null unless queued.")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None = Field(description="Seconds from its start to its end, once it has ended.")
    progress: dict[str, Any] | None = Field(description="The newest started, batch or epoch event.")
    best_epoch: int | None = Field(description="The epoch with the lowest validation loss.")
    evaluation: dict[str, Any] | None = Field(description="Test loss, metrics and reports on the test split.")
    model_url: str | None = Field(description="Where to download the trained model, once there is one.")
    model_epoch: int | None = Field(description="The epoch that model holds.")
    model_is_final: bool = Field(description="False when the model is the checkpoint of a run that ended early.")


class RunDetail(RunSummary):
    """A run with its metrics history and the graph it trained."""

    metrics: RunMetrics
    graph: dict[str, Any]
    started_from: dict[str, list[str]] | None = Field(
        None, description="For a run of an imported or reused model: the layers that began with its trained weights "
                          "(`loaded`) and those with weights that started fresh (`fresh`).")
    device: str | None = Field(None, description="What it trained on, as the training worker saw it: \"CPU\" or "
                                                 "\"GPU 0 (<name>)\" (see LAYERLAB_DEVICE); null before it starts.")


class RunUpdate(Strict):
    model_config = example({"name": "Baseline", "notes": "Before adding dropout."})

    name: str | None = Field(None, description="At most 80 characters; empty goes back to the telling default.")
    notes: str | None = Field(None, description="At most 2,000 characters.")


class Score(BaseModel):
    metric: str
    value: float
    epoch: int | None = None


class ChangeOut(BaseModel):
    path: str = Field(description="`layers.<layer>.<parameter>`, `layers.<layer>` (added or removed), "
                      "`settings.<setting>` or `dataset`.")
    from_: Any = Field(alias="from")
    to: Any
    kind: str = Field(description="changed, added, removed or rewired.")
    text: str = Field(description="The change in a few words: `tanh instead of relu in conv2d`.")

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)


class RunHistoryRow(RunSummary):
    """A run as the history lists it, with what changed since the previous run of its model."""

    best: Score | None = Field(description="The validation value (val_accuracy, else val_loss) at the best epoch (the "
                               "lowest validation loss), and that epoch.")
    test: Score | None = Field(description="The headline test metric: accuracy, else an error or the loss.")
    changes_from_previous: list[ChangeOut]
    previous_run_id: int | None


class Sentence(BaseModel):
    text: str
    within_noise: bool = Field(description="The difference could come from the seed alone: repeat to find out.")


class ComparedRun(RunSummary):
    colour: str
    metrics: RunMetrics
    test_metrics: dict[str, float]
    changes: list[ChangeOut] = Field(description="What differs from the first run (empty for the first).")
    summary: Sentence | None = Field(description="The change and its effect in one sentence (null for the first).")


class RunComparison(BaseModel):
    runs: list[ComparedRun]
    metrics: list[str] = Field(description="The per-epoch values any of the runs has.")
    epochs: int = Field(description="The most epochs any of the runs has.")
    classes: list[dict[str, Any]] = Field(description="Per-class F1 and recall of each run, when they share classes.")


class SuggestionOut(BaseModel):
    key: str
    title: str
    reason: str = Field(description="What the rule saw, with the numbers.")
    changes: list[dict[str, Any]] = Field(description="`{path, from, to}`; an added layer has from null and "
                                          "to `{type, params, after}`.")


class AppliedSuggestion(BaseModel):
    model_id: int = Field(description="The new variant model.")
    run_id: int = Field(description="Its queued run.")


class SearchBudget(Strict):
    model_config = example({"runs": 8, "epochs": 5})

    runs: int = Field(8, description="Trials to train at most (LAYERLAB_MAX_SEARCH_RUNS caps it).")
    epochs: int = Field(5, description="Epochs of each trial.")


class SearchCreate(Strict):
    model_config = example({"axes": {"activation": ["relu", "tanh"], "learning_rate": [0.001, 0.01]},
                            "budget": {"runs": 4, "epochs": 5}, "strategy": "grid", "metric": "val_accuracy"})

    axes: dict[str, list[Any]] = Field(description="What to vary, each with its values: activation, "
                                       "kernel_initializer, width (factor), depth (-1, 0, 1), dropout (rate), "
                                       "optimizer, learning_rate, batch_size.")
    budget: SearchBudget = Field(default_factory=SearchBudget)
    strategy: Literal["grid", "optuna"] = "grid"
    metric: Literal["val_accuracy", "val_loss", "accuracy", "loss"] = "val_accuracy"
    settings: dict[str, Any] | None = Field(None, description="Training settings every trial starts from "
                                            "(default: those of the model's last run).")


class SearchTrialOut(BaseModel):
    number: int
    params: dict[str, Any]
    run_id: int | None
    state: str = Field(description="waiting (for room in the workspace), then its run's state.")
    reason: str | None
    value: float | None = Field(description="The search's metric (its best epoch), once the run has ended.")
    params_count: int | None
    run_name: str | None


class SearchOut(BaseModel):
    id: int
    state: str = Field(description="running, completed, cancelled or interrupted.")
    reason: str | None
    model_id: int | None
    model_name: str
    dataset_id: int | None
    axes: dict[str, list[Any]]
    budget: dict[str, int]
    strategy: str
    metric: str
    maximize: bool
    planned: int = Field(description="Trials it will train: the budget, or the whole grid when that is smaller.")
    trials: list[SearchTrialOut]
    ranking: list[int] = Field(description="Trial numbers, best first, of the trials with a value.")
    best: SearchTrialOut | None
    created_at: datetime
    finished_at: datetime | None


class DatasetOut(BaseModel):
    id: int
    name: str
    source: str = Field(description="builtin, csv, npz, images, or challenge (a workshop challenge's data, shared).")
    state: str
    created_at: datetime
    kind: str = Field(description="image, table or points2d.")
    task: str = Field(description="classification or regression.")
    input_shape: list[int] = Field(description="One sample's shape, without the batch axis.")
    class_names: list[str]
    feature_names: list[str]
    target_name: str
    split_sizes: dict[str, int]
    preview: dict[str, Any] = Field(description="Rows and statistics, class balance, scatter points...")
    samples_url: str | None = Field(description="Sample images per class (image datasets).")


class InstructorSignIn(Strict):
    model_config = example({"password": "the instructor password"})

    password: str = Field(max_length=1000)


class JoinRequest(Strict):
    model_config = example({"code": "KQ7M-4XTP", "display_name": "Ada"})

    code: str = Field(max_length=64, description="The workshop's join code (case and dashes do not matter).")
    display_name: str = Field(max_length=200, description="1 to 40 characters, shown to the instructor and on boards.")
    pin: str | None = Field(None, max_length=32, description="To come back as an existing participant: the PIN "
                            "shown at joining.")


class WorkshopCreate(Strict):
    model_config = example({"name": "Friday group", "datasets": ["digits", "iris"],
                            "limits": {"runs_at_once": 1, "max_epochs": 20, "max_params": 200000, "uploads": False}})

    name: str = Field(max_length=200)
    datasets: list[str] | None = Field(None, description="Built-in dataset keys on offer (GET /api/v1/datasets/"
                                       "builtins); empty: every one that works offline on this server.")
    limits: dict[str, Any] | None = Field(None, description="runs_at_once, max_epochs, max_params, uploads, "
                                          "max_upload_mb.")


class ExamplePin(Strict):
    model_config = example({"model_id": 12, "participant_id": 3})

    model_id: int
    participant_id: int | None = Field(None, description="Whose model; empty: the instructor's own.")


class ChallengeCreate(Strict):
    model_config = example({"dataset_id": 4, "metric": "accuracy", "target": 0.95,
                            "budget": {"params": 20000, "epochs": 20, "submissions": 5}})

    dataset_id: int = Field(description="A ready dataset of the instructor's workspace, with a test split.")
    metric: str = Field(description="accuracy or macro_f1 (classification); mae, rmse or r2 (regression).")
    budget: dict[str, Any] | None = Field(None, description="params, epochs, submissions (per participant).")
    target: float | None = Field(None, description="The score an entry should reach.")
    title: str | None = Field(None, max_length=200)


class SubmissionCreate(Strict):
    model_config = example({"run_id": 17})

    run_id: int
