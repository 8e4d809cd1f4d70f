"""Export a saved .keras model to serving formats, through Keras' own `model.export`.

Runs in the data worker only (it imports Keras and TensorFlow). Nothing here converts
a model by hand: each format is one `model.export` call, so what a user downloads is
what Keras itself produces. The export is written to a scratch folder beside its
target and renamed into place, so a reader never sees half a file and a failed
export leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.core.errors import UserError

# Layers whose Keras implementation is a TensorFlow while-loop over tensor lists: LiteRT's built-in
# operations cannot express it, and the select-TF-ops fallback needs a Flex delegate that neither
# TensorFlow's nor LiteRT's Python interpreter carries, so such a file could not be checked anywhere.
RECURRENT_LAYERS = ("LSTM", "GRU")
SAVED_MODEL_FOLDER = "saved_model"  # the top folder inside the SavedModel zip


def export_model_format(payload: dict[str, Any]) -> dict[str, Any]:
    """Export `payload["source"]` (a .keras file) as `payload["format"]` to `payload["target"]`.

    A plain UserError (422) when Keras cannot express this model in that format; other
    failures (a full disk, a worker crash) stay errors of the server.
    """
    import keras

    source, target, name = Path(payload["source"]), Path(payload["target"]), str(payload["format"])
    exporter = EXPORTERS.get(name)
    if exporter is None:
        raise UserError(f"Unknown export format {name!r}; allowed: {', '.join(sorted(EXPORTERS))}.",
                        field="format")
    if target.exists() and target.stat().st_mtime >= source.stat().st_mtime:
        return {"bytes": target.stat().st_size}  # made meanwhile, for a download that asked just before
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".export-") as scratch:
        model = keras.models.load_model(source, compile=False)  # inference only: no optimizer state
        produced = exporter(model, Path(scratch))
        os.replace(produced, target)
    return {"bytes": target.stat().st_size}


def _saved_model(model: Any, scratch: Path) -> Path:
    """A TensorFlow SavedModel (a folder, with a `serving_default` signature), zipped for download."""
    folder = scratch / SAVED_MODEL_FOLDER
    _export(model, folder, "tf_saved_model", "TensorFlow SavedModel")
    return Path(shutil.make_archive(str(scratch / "saved_model"), "zip", root_dir=scratch,
                                    base_dir=SAVED_MODEL_FOLDER))


def _onnx(model: Any, scratch: Path) -> Path:
    """ONNX through Keras' tf2onnx route (Keras patches tf2onnx for numpy 2 itself)."""
    path = scratch / "model.onnx"
    with warnings.catch_warnings():
        # Keras' numpy-2 patch for tf2onnx probes `np.object`, which numpy answers with a FutureWarning.
        warnings.filterwarnings("ignore", message=r".*np\.object.*", category=FutureWarning)
        # Keras 3.15 refuses to guess the signature of a model loaded from a file and not called since
        # ("The model provided has never called"); the model's own inputs, in the list that LayerLab
        # builds them as (app/worker/build.py), are that signature, batch size left open.
        _export(model, path, "onnx", "ONNX", input_signature=[list(model.inputs)])
    return path


def _litert(model: Any, scratch: Path) -> Path:
    """A LiteRT (.tflite) flatbuffer made of LiteRT's built-in operations only.

    Keras' default also allows TensorFlow "select" ops, which only a runtime with the Flex
    delegate can run; asking for built-ins only turns that case into a clear refusal instead
    of a file that fails when it is loaded.
    """
    import tensorflow as tf

    path = scratch / "model.tflite"
    recurrent = sorted({type(layer).__name__ for layer in model.layers} & set(RECURRENT_LAYERS))
    if recurrent:
        raise UserError(litert_refusal(recurrent), field="format")
    _export(model, path, "litert", "LiteRT",
            target_spec={"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]})
    return path


def litert_refusal(layer_types: list[str]) -> str:
    return (f"LiteRT cannot run this model's {' and '.join(layer_types)} layers with its built-in operations: "
            "Keras exports them as TensorFlow loops that need the Flex delegate (TensorFlow select ops). "
            "Download it as a TensorFlow SavedModel or ONNX instead.")


def _export(model: Any, path: Path, keras_format: str, title: str, **options: Any) -> None:
    """One `model.export` call; a model Keras cannot express in the format becomes a UserError."""
    try:
        model.export(str(path), format=keras_format, verbose=False, **options)
    except (OSError, MemoryError):
        raise
    except Exception as exc:  # converters raise their own kinds (ConverterError, ValueError, ...)
        first_line = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise UserError(f"Keras could not export this model as {title}: {first_line[:300]}",
                        field="format", details={"keras_message": str(exc)[:2000]}) from exc


EXPORTERS: dict[str, Callable[[Any, Path], Path]] = {
    "savedmodel": _saved_model,
    "onnx": _onnx,
    "litert": _litert,
}
