"""The home page's "Import a model" form: a .keras file or Keras JSON config becomes a model, then its editor."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from app.core.errors import UserError
from app.services import importing
from app.services.datasets import workspace_folder
from app.web.auth import CSRF_FIELD, CSRF_HEADER, check_csrf
from app.web.deps import DataWorkerDep, PageWorkspace, SessionDep, SettingsDep
from app.web.pages import _home, redirect_to
from app.web.uploads import save_upload

router = APIRouter(include_in_schema=False)

FILE_FIELD = "import_file"  # the form's fields, named apart from the create form's on the same page
NAME_FIELD = "import_name"


async def checked_form(request: Request) -> FormData:
    """The form, once its CSRF token matches the session; checked before a first visit gets a workspace,
    as the other page forms are. A refused form's file is closed here, as nothing else would close it."""
    form = await request.form(max_files=1, max_fields=10)
    try:
        sent = form.get(CSRF_FIELD)
        check_csrf(request, sent if isinstance(sent, str) else request.headers.get(CSRF_HEADER))
    except UserError:
        await form.close()
        raise
    return form


@router.post("/models/import/upload", name="import_model")
async def import_model(request: Request, form: Annotated[FormData, Depends(checked_form)], workspace_id: PageWorkspace,
                       session: SessionDep, settings: SettingsDep, worker: DataWorkerDep) -> Response:
    """Import, then open the new model's editor; a refusal shows the home page with the reason at the form."""
    upload = form.get(FILE_FIELD)
    name = str(form.get(NAME_FIELD) or "").strip() or None

    def show_error(error: UserError) -> Response:
        error.field = FILE_FIELD  # shown at the import form, not at the create form above it
        return _home(request, session, workspace_id, error, {NAME_FIELD: name or ""})

    if upload is None or isinstance(upload, str) or not upload.filename:
        await form.close()
        return await run_in_threadpool(show_error, UserError(
            "Choose a model file first. Expected a .keras file or a Keras JSON config (.json)."))
    filename = str(upload.filename)
    try:
        path = await save_upload(upload, workspace_folder(settings, workspace_id) / "uploads")
    except UserError as exc:
        return await run_in_threadpool(show_error, exc)

    def run() -> Response:
        try:
            result = importing.import_model(session, settings, worker, workspace_id, path, filename, name)
        except UserError as exc:
            return show_error(exc)
        finally:
            path.unlink(missing_ok=True)
        return redirect_to(request, request.app.url_path_for("editor", model_id=str(result.record.id)))

    return await run_in_threadpool(run)
