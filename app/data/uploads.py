"""Uploaded datasets: one entry point over the three formats, each parsed within `UploadLimits`.

  csv     a table with a header row; features and target chosen by column
  npz     numpy arrays x_train, y_train (and optionally x_test, y_test, class_names)
  images  a zip with one folder of PNG/JPEG images per class

Every failure is an `UserError` whose message says what was wrong and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.errors import UserError
from app.data.catalog import UPLOAD_KINDS, UploadLimits, validate_upload_options
from app.data.csv_upload import read_csv_table
from app.data.image_zip import read_image_zip
from app.data.npz_upload import read_npz
from app.data.raw import LabeledArrays
from app.data.tables import RawTable

__all__ = ["UserError", "read_csv_table", "read_image_zip", "read_npz", "read_upload"]


def read_upload(kind: str, path: Path, options: dict[str, Any] | None = None,
                limits: UploadLimits = UploadLimits()) -> RawTable | LabeledArrays:
    """Parse the file at `path` as `kind`; options are normalized first (see the catalog)."""
    options = validate_upload_options(kind, options)
    path = Path(path)
    if not path.is_file():
        raise UserError(f"The uploaded file {path.name!r} is missing.", field="file")
    limits.check_upload_size(path.stat().st_size)
    if kind == "csv":
        return read_csv_table(path, limits)
    if kind == "npz":
        return read_npz(path, options, limits)
    assert kind == "images" and kind in UPLOAD_KINDS
    return read_image_zip(path, options, limits)
