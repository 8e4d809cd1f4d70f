"""Dataset preparation inside the data worker: files are parsed and images decoded here,
never in the web process. A UserError raised here reaches the user as it is."""

from __future__ import annotations

import errno
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.core.errors import Unavailable
from app.data.catalog import UploadLimits


def prepare_dataset(payload: dict[str, Any]) -> dict[str, Any]:
    from app.data.prepare import prepare_builtin, prepare_upload

    folder = Path(payload["folder"])
    try:
        if payload["source"] == "builtin":
            meta = prepare_builtin(payload["key"], payload.get("params"), payload.get("options"), folder,
                                   Path(payload["cache_dir"]), payload.get("mirror"))
        else:
            limits = UploadLimits(**payload.get("limits", {}))
            meta = prepare_upload(payload["source"], Path(payload["path"]), payload.get("options"), folder, limits)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise Unavailable("The prepared dataset could not be written: the server's disk is full. Nothing was "
                          "kept; try again once there is space (delete old runs or datasets).") from exc
    return asdict(meta)
