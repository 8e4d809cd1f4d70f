"""Dataset preparation inside the data worker: files are parsed and images decoded here,
never in the web process. Errors meant for the user come back as refusals."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.data.catalog import UploadLimits
from app.data.errors import DatasetParamError, DatasetUnavailable, UploadError
from app.worker.service import Refusal


def prepare_dataset(payload: dict[str, Any]) -> dict[str, Any]:
    from app.data.prepare import prepare_builtin, prepare_upload

    folder = Path(payload["folder"])
    try:
        if payload["source"] == "builtin":
            meta = prepare_builtin(payload["key"], payload.get("params"), payload.get("options"), folder,
                                   Path(payload["cache_dir"]))
        else:
            limits = UploadLimits(**payload.get("limits", {}))
            meta = prepare_upload(payload["source"], Path(payload["path"]), payload.get("options"), folder, limits)
    except (DatasetParamError, UploadError, DatasetUnavailable) as exc:
        raise Refusal(message=exc.message if hasattr(exc, "message") else str(exc),
                      field=getattr(exc, "field", None), status=getattr(exc, "status", 422)) from exc
    return asdict(meta)
