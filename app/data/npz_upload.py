"""Reading an uploaded NPZ file (numpy's zip of .npy arrays) without trusting it.

Each member's .npy header declares its dtype and shape; those are checked against the
limits before any array is read, so a file cannot make us allocate more than it holds,
and object (pickled) arrays are refused by their dtype before numpy would refuse them
with a traceback-shaped message.
"""

from __future__ import annotations

import math
import zipfile
from pathlib import Path

import numpy as np

from app.core.errors import UserError
from app.data.catalog import UploadLimits
from app.data.raw import LabeledArrays
from app.data.tables import MAX_CLASSES_TO_INFER
from app.data.zip_safety import open_checked_zip

REQUIRED = ("x_train", "y_train")
OPTIONAL = ("x_test", "y_test", "class_names")
FEATURE_KINDS = "biuf"      # bool, integers, floats
LABEL_KINDS = "biufUS"      # and text labels


def read_npz(path: Path, options: dict, limits: UploadLimits = UploadLimits()) -> LabeledArrays:
    archive, entries = open_checked_zip(path, limits, "an NPZ dataset")
    with archive:
        members = {info.filename[:-4]: info for info in entries if info.filename.endswith(".npy")}
        missing = [name for name in REQUIRED if name not in members]
        if missing:
            raise UserError(f"The NPZ file lacks {', '.join(missing)}. It must hold x_train and y_train, and "
                              f"may hold x_test, y_test and class_names; it holds: "
                              f"{', '.join(sorted(members)) or 'no arrays'}.", field="file")
        if ("x_test" in members) != ("y_test" in members):
            raise UserError("The NPZ file holds only one of x_test and y_test; give both or neither.",
                              field="file")
        wanted = [name for name in (*REQUIRED, *OPTIONAL) if name in members]
        headers = {name: _read_header(archive, members[name]) for name in wanted}
        _check_declared(headers, members, limits)
        arrays = {name: _read_array(archive, members[name]) for name in wanted}
    return _labeled(arrays, options, limits)


def _read_header(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> tuple[tuple[int, ...], np.dtype]:
    name = info.filename
    try:
        with archive.open(info) as handle:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise ValueError(f"format version {version} is not supported")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, SyntaxError) as exc:
        raise UserError(f"{name} in the NPZ file is not a valid numpy array ({exc}).", field="file") from None
    return tuple(shape), dtype


def _check_declared(headers: dict[str, tuple[tuple[int, ...], np.dtype]], members: dict[str, zipfile.ZipInfo],
                    limits: UploadLimits) -> None:
    total = 0
    for name, (shape, dtype) in headers.items():
        if dtype.hasobject:
            raise UserError(f"{name} holds Python objects (a pickled array), which LayerLab never loads. Save "
                              f"plain numbers instead, for example np.savez(path, {name}={name}.astype('float32')).",
                              field="file")
        allowed = LABEL_KINDS if name != "x_train" and name != "x_test" else FEATURE_KINDS
        if dtype.names or dtype.kind not in allowed or dtype.subdtype:
            raise UserError(f"{name} has dtype {dtype}; expected {_kinds(allowed)}.", field="file")
        total += math.prod(shape)
    if total > limits.max_npz_elements:
        raise UserError(f"The NPZ arrays hold {total} values in all; at most {limits.max_npz_elements} are allowed.",
                          field="file")
    for name, (shape, dtype) in headers.items():
        # numpy allocates the declared size before reading: a header must not promise more than the file holds.
        if math.prod(shape) * dtype.itemsize > members[name].file_size:
            raise UserError(f"{name} declares shape {shape} of {dtype}, more data than the file holds; the file "
                              f"is damaged.", field="file")


def _kinds(kinds: str) -> str:
    words = {"b": "booleans", "i": "integers", "u": "unsigned integers", "f": "floats", "U": "text", "S": "bytes"}
    return ", ".join(words[k] for k in kinds)


def _read_array(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray:
    try:
        with archive.open(info) as handle:
            return np.lib.format.read_array(handle, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{info.filename} in the NPZ file cannot be read ({exc}).", field="file") from None


def _labels_1d(name: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UserError(f"{name} has shape {y.shape}; expected one label per sample, shape ({n},). If it is "
                          f"one-hot encoded, save {name}.argmax(axis=1) instead.", field="file")
    if len(y) != n:
        raise UserError(f"{name} holds {len(y)} labels but x_{name[2:]} holds {n} samples.", field="file")
    return y


def _labeled(arrays: dict[str, np.ndarray], options: dict, limits: UploadLimits) -> LabeledArrays:
    x = arrays["x_train"]
    if x.ndim < 2 or x.ndim > 4 or len(x) == 0:
        raise UserError(f"x_train has shape {x.shape}; expected (samples, features), (samples, height, width) "
                          f"or (samples, height, width, channels).", field="file")
    y = _labels_1d("y_train", arrays["y_train"], len(x))
    x_test = arrays.get("x_test")
    y_test = None
    if x_test is not None:
        if x_test.shape[1:] != x.shape[1:]:
            raise UserError(f"x_test samples have shape {x_test.shape[1:]} but x_train samples have shape "
                              f"{x.shape[1:]}; they must match.", field="file")
        y_test = _labels_1d("y_test", arrays["y_test"], len(x_test))
        if (y_test.dtype.kind in "US") != (y.dtype.kind in "US"):
            raise UserError(f"y_train holds {y.dtype} labels but y_test holds {y_test.dtype}; both must be "
                              f"numbers or both text.", field="file")
    for name, array in (("x_train", x), ("x_test", x_test)):
        if array is not None and array.dtype.kind == "f" and not np.isfinite(array).all():
            raise UserError(f"{name} holds NaN or infinite values; replace them before uploading.", field="file")
    if x.ndim == 3:  # (n, h, w): grayscale images, given their channel axis
        x = x[..., None]
        x_test = x_test[..., None] if x_test is not None else None
    kind = "table" if x.ndim == 2 else "image"
    task = options.get("task", "auto")
    if task == "auto":
        task = _infer_task(y)
    labels, class_names = _encode_labels(y, y_test, task, arrays.get("class_names"), limits)
    notes = {"arrays": {name: {"shape": list(a.shape), "dtype": str(a.dtype)} for name, a in arrays.items()}}
    return LabeledArrays(kind, task, x, labels[0], class_names,
                         feature_names=[f"x{i}" for i in range(x.shape[1])] if kind == "table" else [],
                         target_name="y", x_test=x_test, y_test=labels[1], notes=notes)


def _infer_task(y: np.ndarray) -> str:
    if y.dtype.kind in "biuUS":
        return "classification"
    whole = bool(np.all(y == np.round(y)))
    return "classification" if whole and len(np.unique(y)) <= MAX_CLASSES_TO_INFER else "regression"


def _encode_labels(y: np.ndarray, y_test: np.ndarray | None, task: str, names: np.ndarray | None,
                   limits: UploadLimits) -> tuple[tuple[np.ndarray, np.ndarray | None], list[str]]:
    if task == "regression":
        if y.dtype.kind in "US":
            raise UserError("y_train holds text labels; regression needs numbers. Choose task=classification.",
                              field="task")
        return (y.astype(np.float32), None if y_test is None else y_test.astype(np.float32)), []
    if y.dtype.kind == "f" and not np.all(y == np.round(y)):
        raise UserError("y_train holds fractional numbers; classification needs class labels (whole numbers or "
                          "text). Choose task=regression.", field="task")
    both = y if y_test is None else np.concatenate([y, y_test.astype(y.dtype, copy=False)])
    distinct = np.unique(both)
    if len(distinct) > limits.max_classes:
        raise UserError(f"The labels hold {len(distinct)} different classes; at most {limits.max_classes} are "
                          f"allowed.", field="file")
    whole_labels = y.dtype.kind in "biuf"
    if names is not None and whole_labels and len(distinct) and distinct.min() >= 0:
        class_names = [str(n) for n in np.asarray(names).reshape(-1).tolist()]
        if distinct.max() >= len(class_names):
            raise UserError(f"class_names holds {len(class_names)} names but the labels go up to "
                              f"{int(distinct.max())}.", field="file")
        encode = lambda labels: labels.astype(np.int64)
    else:
        class_names = [_label_text(v) for v in distinct.tolist()]
        encode = lambda labels: np.searchsorted(distinct, labels).astype(np.int64)
    if len(class_names) < 2:
        raise UserError("The labels hold a single class; classification needs at least 2.", field="file")
    return (encode(y), None if y_test is None else encode(y_test.astype(y.dtype, copy=False))), class_names


def _label_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)
