"""The data directory's files, each owned by a record, and each workspace's share of the disk.

Layout under the data directory:
  builtin/<key>-<hash>/            a prepared built-in, shared by every dataset and run that uses it
  workspaces/<ws>/datasets/<id>/   a prepared upload, with its original file
  workspaces/<ws>/uploads/         uploads on their way in (deleted once prepared)
  runs/<id>/                       a run's checkpoints, model and images
  dataset-cache/                   downloaded MNIST-style files, for the whole server

A dataset folder is kept while a dataset or a run refers to it, and deleted with the last
of them. Start-up sweeps what a crash left behind: uploads half received, folders half
prepared, files of records that no longer exist.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.core.errors import TooLarge
from app.core.runs import run_folder
from app.core.text import byte_size
from app.store.tables import DatasetRecord, RunRecord

log = logging.getLogger(__name__)

# Held while a dataset folder is created and recorded, or checked and deleted, so that a folder
# being prepared for one workspace is never removed as unused by another.
folders_lock = threading.RLock()


def folders_in_use(session: Session) -> set[str]:
    """Dataset folders (relative to the data directory) that a dataset or a run refers to."""
    datasets = session.scalars(select(DatasetRecord.folder))
    runs = session.scalars(select(RunRecord.dataset_folder))
    return {str(Path(folder)) for folder in [*datasets, *runs]}


def release_folder(session: Session, data_dir: Path, relative: str) -> None:
    """Delete a dataset folder once no dataset and no run refers to it any more."""
    with folders_lock:
        if str(Path(relative)) not in folders_in_use(session):
            shutil.rmtree(data_dir / relative, ignore_errors=True)


def sweep(session: Session, settings: Settings) -> list[str]:
    """Remove what no record owns (run at start-up, before any request); returns what was removed."""
    root = settings.data_dir
    removed: list[str] = []
    in_use = folders_in_use(session)
    run_ids = {str(run_id) for run_id in session.scalars(select(RunRecord.id))}
    workspaces = _children(root / "workspaces")
    dataset_folders = _children(root / "builtin") + [f for w in workspaces for f in _children(w / "datasets")]
    leftovers = (
        [f for f in dataset_folders if str(f.relative_to(root)) not in in_use]  # half prepared, or orphaned
        + [f for f in _children(root / "runs") if f.name not in run_ids]         # of deleted runs
        + [f for w in workspaces for f in _children(w / "uploads")]              # half received
        + list((root / "dataset-cache").glob("*.part"))                          # half downloaded
    )
    for path in leftovers:
        _remove(path)
        removed.append(str(path.relative_to(root)))
    if removed:
        log.info("start-up sweep removed %d leftover files and folders", len(removed))
    return removed


def workspace_usage(session: Session, settings: Settings, workspace_id: str) -> int:
    """Bytes on disk that the workspace's datasets (uploads and prepared built-ins), runs and imported
    weights take."""
    folders = set(session.scalars(select(DatasetRecord.folder).where(DatasetRecord.workspace_id == workspace_id)))
    runs = session.scalars(select(RunRecord.id).where(RunRecord.workspace_id == workspace_id))
    paths = [settings.data_dir / folder for folder in folders] + [run_folder(settings.data_dir, r) for r in runs]
    paths.append(settings.data_dir / "workspaces" / workspace_id / "imports")  # imported models' weights
    return sum(_size(path) for path in paths)


def check_quota(session: Session, settings: Settings, workspace_id: str, adding: int = 0) -> None:
    """Refuse what would take the workspace past its storage quota, saying how much is used."""
    quota = settings.workspace_quota_bytes
    used = workspace_usage(session, settings, workspace_id)
    if used + adding > quota:
        what = f"{byte_size(adding)} more would make {byte_size(used + adding)}" if adding else \
            f"{byte_size(used)} are used"
        raise TooLarge(f"This workspace's storage is full: {what}, and the quota is {byte_size(quota)} "
                       "(LAYERLAB_WORKSPACE_QUOTA_BYTES). Delete old runs or datasets first.")


def _children(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except FileNotFoundError:
        return []


def _size(path: Path) -> int:
    total = 0
    for parent, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(parent, name)).st_size
            except OSError:
                pass  # gone meanwhile
    return total


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
