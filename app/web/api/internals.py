"""Inside a trained convnet: feature maps, learned filters and saliency of one test sample, drawn by the worker."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from fastapi.responses import FileResponse

from app.services import internals
from app.web.deps import ApiRun, DataWorkerDep, SchedulerDep, SessionDep, SettingsDep

router = APIRouter(tags=["internals"])

SampleIndex = Annotated[int, Path(description="The sample's position in the test split, from 0.", examples=[0])]
LayerId = Annotated[str, Path(description="The layer's id in the run's model, as in its graph (`n2`).",
                              examples=["n2"])]
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "The picture, as PNG."}}


def _png(picture: internals.Picture, headers: dict[str, str]) -> FileResponse:
    return FileResponse(picture.path, media_type="image/png",
                        headers={**headers, "Cache-Control": "private, max-age=3600"})


@router.get("/runs/{run_id}/samples/{index}/feature-maps/{layer}.png", response_class=FileResponse,
            responses=PNG)
def feature_maps(index: SampleIndex, layer: LayerId, run: ApiRun, session: SessionDep, settings: SettingsDep,
                 scheduler: SchedulerDep, worker: DataWorkerDep) -> FileResponse:
    """What one Conv2D, MaxPooling2D or AveragePooling2D layer sees in an image test sample: a grid of its
    channels, the most active (largest mean activation) first, each scaled to its own minimum and maximum
    (black to white). At most 32 channels are drawn: `X-Channels-Shown` and `X-Channels-Total` say how many
    were drawn of how many, `X-Channels` which ones in grid order. Drawn on the first request, then cached."""
    picture = internals.feature_maps(session, settings, scheduler, worker, run, index, layer)
    return _png(picture, {"X-Channels-Shown": picture.facts["shown"], "X-Channels-Total": picture.facts["total"],
                          "X-Channels": picture.facts.get("channels", "")})


@router.get("/runs/{run_id}/filters/{layer}.png", response_class=FileResponse, responses=PNG)
def filters(layer: LayerId, run: ApiRun, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
            worker: DataWorkerDep) -> FileResponse:
    """The learned kernels of a Conv2D layer, one tile per output filter in order, each scaled to its own
    minimum and maximum: in colour where the layer's input has 3 channels, else averaged over them. At most
    32 filters are drawn (`X-Channels-Shown` of `X-Channels-Total`). The first Conv2D layer's filters are the
    easiest to read: they look straight at the pixels."""
    picture = internals.filters(session, settings, scheduler, worker, run, layer)
    return _png(picture, {"X-Channels-Shown": picture.facts["shown"], "X-Channels-Total": picture.facts["total"]})


@router.get("/runs/{run_id}/samples/{index}/saliency.png", response_class=FileResponse, responses=PNG)
def saliency(index: SampleIndex, run: ApiRun, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
             worker: DataWorkerDep) -> FileResponse:
    """Where the model looked to predict an image test sample's class: Grad-CAM on the model's last Conv2D
    layer for the predicted class, scaled to the picture and laid over it as a heat map (red: most). A model
    without Conv2D layers shows the absolute gradient of the prediction with respect to each input pixel.
    `X-Saliency-Method` says which (`grad-cam` or `input-gradient`), `X-Class` the class explained."""
    picture = internals.saliency(session, settings, scheduler, worker, run, index)
    return _png(picture, {"X-Saliency-Method": picture.facts["method"], "X-Class": picture.facts["class"]})
