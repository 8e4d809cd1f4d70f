"""Receiving an uploaded file: copied into a folder (swept at start-up), the disk work off the event loop."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool

from app.core.errors import Unavailable

CHUNK_BYTES = 1024 * 1024


async def save_upload(upload: Any, folder: Path, suffix: str = ".upload") -> Path:
    path = folder / f"{uuid.uuid4().hex}{suffix}"
    try:
        await run_in_threadpool(folder.mkdir, parents=True, exist_ok=True)
        handle = await run_in_threadpool(open, path, "wb")
        try:
            while chunk := await upload.read(CHUNK_BYTES):
                await run_in_threadpool(handle.write, chunk)
        finally:
            await run_in_threadpool(handle.close)
    except OSError as exc:
        await run_in_threadpool(path.unlink, missing_ok=True)
        raise Unavailable(f"The upload could not be stored on the server ({exc.strerror or exc}); nothing "
                          "was kept. Try again later, or tell whoever runs this server that its disk is full.",
                          field="file") from exc
    finally:
        await upload.close()
    return path
