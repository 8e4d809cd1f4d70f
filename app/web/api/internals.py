"""Inside a run: a convnet's feature maps, learned filters and saliency of one test sample; on 2-D data, the
decision boundary and a Dense layer's units over the plane at an epoch (all drawn by the worker); and the
weight and activation statistics recorded during training."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query
from fastapi.responses import FileResponse

from app.services import internals
from app.web.deps import ApiRun, DataWorkerDep, SchedulerDep, SessionDep, SettingsDep

router = APIRouter(tags=["internals"])

SampleIndex = Annotated[int, Path(description="The sample's position in the test split, from 0.", examples=[0])]
LayerId = Annotated[str, Path(description="The layer's id in the run's model, as in its graph (`n2`).",
                              examples=["n2"])]
Epoch = Annotated[int | None, Query(ge=0, le=1000, description="The epoch whose weights to draw (0: before "
                                  "training); empty: the last one kept. The epochs kept are listed by "
                                  "`GET /api/v1/runs/{run_id}/internals` as `snapshot_epochs`.", examples=[5])]
PNG: dict[int | str, dict[str, Any]] = {200: {"content": {"image/png": {}}, "description": "The picture, as PNG."}}


def _png(picture: internals.Picture, headers: dict[str, str], revalidate: bool = False) -> FileResponse:
    """revalidate: an epoch's picture changes when a resumed run trains that epoch again."""
    caching = "private, no-cache" if revalidate else "private, max-age=3600"
    return FileResponse(picture.path, media_type="image/png", headers={**headers, "Cache-Control": caching})


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


@router.get("/runs/{run_id}/internals")
def recorded_internals(run: ApiRun, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
                       worker: DataWorkerDep) -> dict[str, Any]:
    """What training recorded inside the model on a fixed batch of validation samples (`probe`), at the start
    (epoch 0) and after epochs as a small time budget allowed (always after the last; once the run has ended,
    up to 30 epochs are filled in from the weights kept per epoch of small models): for every layer with
    weights and every activation layer, a histogram of its weights (the kernel) and of its outputs (`low`,
    `high`, `counts` in equal bins, `mean`, `std`), the share of `dead` relu units (zero for every probe sample)
    or of `saturated` sigmoid/tanh outputs, and, up to epoch 5, the norm of the loss's gradient with respect to
    its weights. `findings` says in words what stands out (dead or saturated layers, vanishing or exploding
    gradients); `snapshot_epochs` lists the epochs whose weights were kept, for the decision boundary and the
    units at an epoch (2-D data). Answers during training with the records so far."""
    return internals.recorded(session, settings, scheduler, worker, run)


@router.get("/runs/{run_id}/decision-boundary.png", response_class=FileResponse, responses=PNG)
def decision_boundary(run: ApiRun, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
                      worker: DataWorkerDep, epoch: Epoch = None) -> FileResponse:
    """A 2-D dataset's plane shaded by what the model predicts there after `epoch` (paler where it is unsure;
    for numbers, a colour ramp), with the test points in their true class's colour. Step through the epochs
    to watch the boundary form. `X-Epoch` says which epoch was drawn (empty: the run's saved model, for runs
    that kept no weights per epoch)."""
    picture = internals.decision_boundary(session, settings, scheduler, worker, run, epoch)
    return _png(picture, {"X-Epoch": picture.facts["epoch"]}, revalidate=True)


@router.get("/runs/{run_id}/units/{layer}.png", response_class=FileResponse, responses=PNG)
def units(layer: LayerId, run: ApiRun, session: SessionDep, settings: SettingsDep, scheduler: SchedulerDep,
          worker: DataWorkerDep, epoch: Epoch = None) -> FileResponse:
    """On a 2-D dataset, the output of every unit of a Dense layer over the plane after `epoch`: one small
    heat map per unit in order (blue negative, white zero, orange positive, each scaled to its own largest
    value), as the playgrounds draw their neurons but for the real Keras layer. At most 32 units are drawn
    (`X-Channels-Shown` of `X-Channels-Total`); `X-Epoch` says which epoch."""
    picture = internals.units(session, settings, scheduler, worker, run, layer, epoch)
    return _png(picture, {"X-Channels-Shown": picture.facts["shown"], "X-Channels-Total": picture.facts["total"],
                          "X-Epoch": picture.facts["epoch"]}, revalidate=True)
