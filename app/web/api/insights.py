"""Error analysis of a run: the test samples behind each confusion-matrix cell, the largest errors,
and one sample's prediction."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Response

from app.services import insights
from app.web.deps import ApiRun, DataWorkerDep, SchedulerDep, SessionDep, SettingsDep

router = APIRouter(tags=["error analysis"])

TrueClass = Annotated[int, Path(description="The true class's number (a row of the confusion matrix).",
                                examples=[3])]
PredictedClass = Annotated[int, Path(description="The predicted class's number (a column of the confusion "
                                                 "matrix).", examples=[5])]
SampleIndex = Annotated[int, Path(description="The sample's position in the test split, from 0.", examples=[0])]


@router.get("/runs/{run_id}/confusion/{true_class}/{predicted_class}")
def confusion_cell(true_class: TrueClass, predicted_class: PredictedClass, run: ApiRun, session: SessionDep,
                   settings: SettingsDep, scheduler: SchedulerDep, worker: DataWorkerDep) -> dict[str, Any]:
    """The test samples counted in one cell of the run's confusion matrix, the model's most confident
    first, each with its top 3 classes; at most 200 (the server's `LAYERLAB_MAX_SAMPLES_LISTED`; `left_out`
    says how many more). The first call
    predicts the whole test split, which takes seconds; later calls answer from the run's cache."""
    return insights.confusion_cell(session, settings, scheduler, worker, run, true_class, predicted_class)


@router.get("/runs/{run_id}/errors")
def largest_errors(run: ApiRun, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
                   worker: DataWorkerDep) -> dict[str, Any]:
    """A regression run's test samples with the largest absolute errors (200, or the server's
    `LAYERLAB_MAX_SAMPLES_LISTED`), largest first, each with
    its prediction, target and error (a prediction that is not a number counts as the largest)."""
    return insights.largest_errors(session, settings, scheduler, worker, run)


@router.get("/runs/{run_id}/samples/{index}")
def sample(index: SampleIndex, run: ApiRun, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
           worker: DataWorkerDep) -> dict[str, Any]:
    """One test sample: its true label and prediction with every class's probability (classification)
    or its target, prediction and error (regression); a table's feature values with their names, an
    image's picture as `image_url`."""
    answer = insights.sample(session, settings, scheduler, worker, run, index)
    if answer["kind"] == "image":
        answer["image_url"] = f"/api/v1/runs/{run.id}/samples/{index}/input.png"
    return answer


@router.get("/runs/{run_id}/samples/{index}/input.png", response_class=Response,
            responses={200: {"content": {"image/png": {}}, "description": "The picture, as PNG."}})
def sample_image(index: SampleIndex, run: ApiRun, session: SessionDep, settings: SettingsDep,
                 scheduler: SchedulerDep, worker: DataWorkerDep) -> Response:
    """An image test sample's picture as a PNG, scaled up with whole pixels to about 112 pixels wide."""
    return Response(insights.input_png(session, settings, scheduler, worker, run, index), media_type="image/png",
                    headers={"Cache-Control": "private, max-age=3600"})
