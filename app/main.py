"""The ASGI application's factory: `layerlab`, or `uvicorn --factory app.main:create_app`.

Importing this module has no side effects: the data directory, the secret key and the
database are created when `create_app()` runs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from app.config import Settings
from app.jobs.event_hub import RunEventHub
from app.jobs.executor import EventSink, Executor, LocalExecutor, WorkerLimits
from app.jobs.gpu_placement import local_gpus
from app.jobs.inspector import Inspector
from app.jobs.scheduler import Scheduler
from app.jobs.warm_worker import WarmWorker
from app.services import storage
from app.services.searches import SearchDriver
from app.store import sessions as session_records
from app.store.db import make_engine, make_session_factory
from app.web.api import (
    catalog,
    datasets,
    exports,
    imports,
    insights,
    internals,
    models,
    runs,
    searches,
    workshops,
    workspaces,
)
from app.web.auth import RateLimiter
from app.web.body_limits import BodyLimitMiddleware
from app.web.code_pages import router as code_router
from app.web.cookies import SessionCookieMiddleware
from app.web.errors import install_error_handlers
from app.web.history_pages import router as history_router
from app.web.import_pages import router as import_router
from app.web.insight_pages import router as insight_router
from app.web.openapi import documented_openapi
from app.web.pages import router as pages_router
from app.web.search_pages import router as search_router
from app.web.security import SecurityMiddleware
from app.web.templating import templates
from app.web.training_pages import router as training_router
from app.web.workshop_gate import WorkshopGateMiddleware
from app.web.workshop_pages import router as workshop_router

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
# TensorFlow's import in the inspector worker takes a core for seconds: start it once the
# first page is likely served, yet well before a learner has created a model.
WARM_UP_DELAY_S = 1.0


def make_executor(settings: Settings, sink: EventSink) -> Executor:
    """The executor LAYERLAB_EXECUTOR names. Ray is imported only when it is chosen, and then only in the
    bridge process (app.jobs.ray_bridge), so that a lost cluster cannot take the server down with it."""
    if settings.executor == "ray":
        from app.jobs.ray_bridge import RayBridge

        return RayBridge(sink, {"address": settings.ray_address, "cpus_per_run": settings.ray_cpus_per_run,
                                "gpus_per_run": settings.ray_gpus_per_run, "device": settings.device,
                                "warm_actors": settings.warm_training_workers,
                                "kept_actors": settings.running_runs_limit})
    return LocalExecutor(sink, warm_spares=settings.warm_training_workers,
                         limits=WorkerLimits(settings.worker_memory_mb, settings.worker_silence_s),
                         device=settings.device, gpus=local_gpus(settings.gpus, settings.device))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    _ = settings.signing_key  # create or read the key now, not during a request
    engine = make_engine(settings.resolved_database_url, settings.database_pool_size, settings.database_timeout)
    sessions = make_session_factory(engine)
    inspector = Inspector(timeout=settings.inspect_timeout)
    data_worker = WarmWorker("data", timeout=settings.prepare_timeout, preload_keras=False)
    hub = RunEventHub()
    scheduler = Scheduler(sessions, settings.data_dir, settings.running_runs_limit,
                          settings.max_running_runs_per_workspace, hub,
                          lambda sink: make_executor(settings, sink),
                          histogram_bins=settings.histogram_bins)

    search_driver = SearchDriver(sessions, settings, scheduler)
    scheduler.run_ended_listeners.append(search_driver.run_ended)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        hub.bind(asyncio.get_running_loop())
        with sessions() as db:  # before any request: what a crash left behind, and ended sessions
            storage.sweep(db, settings)
            session_records.remove_expired(db)
        scheduler.recover()
        search_driver.recover()
        # Warm up TensorFlow in the worker just after start-up, so its import does not
        # compete with serving the first page.
        warm_up = threading.Timer(WARM_UP_DELAY_S, inspector.start)
        warm_up.daemon = True
        warm_up.start()
        yield
        warm_up.cancel()
        scheduler.shutdown()
        inspector.stop()
        data_worker.stop()
        engine.dispose()

    app = FastAPI(title="LayerLab", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Assemble, train and improve Keras networks. Every page action has a twin here.")

    @app.get("/healthz", include_in_schema=False)
    def health() -> dict[str, str]:
        """For container health checks and load balancers: answers without a session, in both modes."""
        return {"status": "ok", "mode": settings.mode}

    @app.get("/docs", include_in_schema=False)
    def api_docs(request: Request) -> Response:
        # Swagger UI from static/vendor, not a CDN, so the docs work in a workshop room without internet.
        return templates.TemplateResponse(request, "docs.html", {})
    app.openapi = documented_openapi(app)  # type: ignore[method-assign]
    app.state.settings = settings
    app.state.sessions = sessions
    app.state.inspector = inspector
    app.state.data_worker = data_worker
    app.state.scheduler = scheduler
    app.state.search_driver = search_driver
    app.state.event_hub = hub
    app.state.workspace_rate = RateLimiter(settings.workspaces_per_hour)
    app.state.guess_rate = RateLimiter(settings.join_attempts_per_minute, window_s=60.0)
    app.add_middleware(SessionCookieMiddleware, secure=settings.secure_cookies)
    app.add_middleware(BodyLimitMiddleware, max_upload_bytes=settings.max_upload_bytes,
                       max_body_bytes=settings.max_body_bytes)
    if settings.workshop_mode:
        app.add_middleware(WorkshopGateMiddleware)  # nothing but the ways in without a session
    app.add_middleware(SecurityMiddleware)  # outermost: every response
    install_error_handlers(app)
    api_routers = [workspaces.router, catalog.router, imports.router, models.router, datasets.router, runs.router,
                   searches.router, exports.router, insights.router, internals.router]
    if settings.workshop_mode:
        api_routers.append(workshops.router)
    for router in api_routers:
        for route in router.routes:  # "api.<function>", so page and API route names never collide
            if isinstance(route, APIRoute) and not route.name.startswith("api."):
                route.summary = route.summary or route.name.replace("_", " ").capitalize()
                route.name = f"api.{route.name}"
        app.include_router(router, prefix="/api/v1")
    app.include_router(pages_router)
    app.include_router(import_router)  # the home page's import form
    app.include_router(history_router)  # before the run pages: /runs/compare is not /runs/{run_id}
    app.include_router(training_router)
    app.include_router(insight_router)  # a run's confusion cells, largest errors and test samples
    app.include_router(search_router)
    app.include_router(code_router)
    if settings.workshop_mode:
        app.include_router(workshop_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
