"""The ASGI application: `uvicorn app.main:app`."""

from __future__ import annotations

import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app.config import Settings
from app.jobs.inspector import Inspector
from app.store.db import make_engine, make_session_factory
from app.web.api import catalog, models, workspaces
from app.web.cookies import WorkspaceCookieMiddleware
from app.web.errors import install_error_handlers
from app.web.pages import router as pages_router

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    settings.signing_key  # create or read the key now, not during a request
    engine = make_engine(settings.resolved_database_url)
    inspector = Inspector(timeout=settings.inspect_timeout)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Warm up TensorFlow in the worker just after start-up, so its import does not
        # compete with serving the first page.
        warm_up = threading.Timer(1.0, inspector.start)
        warm_up.daemon = True
        warm_up.start()
        yield
        warm_up.cancel()
        inspector.stop()
        engine.dispose()

    app = FastAPI(title="LayerLab", version="0.1.0", lifespan=lifespan,
                  description="Assemble, train and improve Keras networks. Every page action has a twin here.")
    app.state.settings = settings
    app.state.sessions = make_session_factory(engine)
    app.state.inspector = inspector
    app.add_middleware(WorkspaceCookieMiddleware, secure=settings.secure_cookies)
    install_error_handlers(app)
    for router in (workspaces.router, catalog.router, models.router):
        app.include_router(router, prefix="/api/v1")
    app.include_router(pages_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


app = create_app()
