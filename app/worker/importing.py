"""Importing a model file in the data worker: a `.keras` archive or a Keras JSON config, read as data.

An uploaded file never reaches `keras.models.load_model`, `model_from_json`,
`keras.saving.deserialize_keras_object` or pickle: each of them rebuilds objects the file names,
and Keras' safe mode has been bypassed more than once. Instead:

- the `.keras` zip is opened here with an allowlist of members (config.json, metadata.json,
  model.weights.h5), each read up to a size limit; anything else is refused;
- config.json is parsed as JSON and mapped onto LayerLab's catalog (app/core/keras_config.py),
  which refuses, by name, every layer it cannot rebuild from the catalog;
- the model is rebuilt from the catalog (`build_model`), like every LayerLab model;
- the weights file is inspected with h5py before any array is read: no links (soft or to other
  files), no external or virtual storage, no filters but gzip, shuffle and checksums, numbers
  only, and the bytes its datasets declare within the upload limit; then its arrays must be
  exactly those Keras saves for the rebuilt model (names and shapes), and are read one by one
  (compressed chunks are inflated here, up to their declared size) and assigned to the variables;
- what is kept is a new weights file, written by Keras from the rebuilt model, never the upload.
"""

from __future__ import annotations

import math
import tempfile
import zipfile
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from app.core.errors import TooLarge, UserError, shown
from app.core.keras_config import MAX_CONFIG_BYTES, ImportPlan, keras_snake_case, parse_config, plan_import
from app.core.text import byte_size
from app.core.validation import Limits

CONFIG, METADATA, WEIGHTS = "config.json", "metadata.json", "model.weights.h5"
MAX_METADATA_BYTES = 64 * 1024
MAX_MEMBERS = 16             # a .keras file has 3
_EOCD_SEARCH_BYTES = 22 + 65_535  # the zip's end record, and the longest comment after it
HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
MAX_H5_OBJECTS = 20_000      # groups and datasets; a 200-layer model's file has about 1,000
MAX_H5_DEPTH = 12            # Keras nests 5 deep (layers/lstm/cell/vars/0)
MAX_CHUNKS = 65_536          # per compressed dataset; Keras writes no compressed datasets at all
ALLOWED_FILTERS = {h5py.h5z.FILTER_DEFLATE: "gzip", h5py.h5z.FILTER_SHUFFLE: "shuffle",
                   h5py.h5z.FILTER_FLETCHER32: "fletcher32"}
_CHECKSUM_BYTES = 4

LEGACY_H5 = ("This is an HDF5 file (.h5): Keras 2's legacy whole-model format, or weights alone. LayerLab does "
             "not import it: reading a model from it means letting Keras deserialize what the file names, "
             "which can run code that came with it. Expected a Keras 3 `.keras` file. If you trust the file, load "
             "it in your own Keras 3 (`keras.models.load_model('model.h5')`) and save it again with "
             "`model.save('model.keras')`, or send `model.to_json()` as a .json file. Received: an HDF5 file")


def refuse(message: str, **details: Any) -> UserError:
    return UserError(message, field="file", details=details or None)


# --- the upload ---------------------------------------------------------------------------------

def sniff(path: Path, filename: str = "") -> str:
    """"zip", "json" or "hdf5" from the file's first bytes (and its name); anything else is refused."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
        signatures = [head[:8]]
        for offset in (512, 1024, 2048):  # HDF5 may start after a user block
            handle.seek(offset)
            signatures.append(handle.read(8))
    if HDF5_SIGNATURE in signatures or filename.lower().endswith((".h5", ".hdf5")):
        raise refuse(LEGACY_H5)
    if head.startswith(ZIP_SIGNATURES):
        return "zip"
    if head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"{"):
        return "json"
    if not head:
        raise refuse("The file is empty. Expected a .keras file or a Keras JSON config. Received: 0 bytes")
    raise refuse("The file is neither a .keras file nor a Keras JSON config. Expected a .keras file (the zip "
                 "that `model.save('model.keras')` writes) or the JSON of `model.to_json()`. "
                 f"Received: {shown(filename) if filename else 'a file'} that begins with {_first_bytes(head)}")


def _first_bytes(head: bytes) -> str:
    """How a file begins, as a person can read it: its text when it is text, else its first bytes in hex."""
    start = head[:12]
    try:
        text = start.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and all(char.isprintable() or char in "\t\r\n" for char in text):
        return f"the text {shown(text)}"
    return "the bytes " + " ".join(f"{byte:02x}" for byte in start[:8])


def read_bounded(path: Path, limit: int, what: str) -> bytes:
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise TooLarge(f"{what} takes more than {byte_size(limit)}; at most {byte_size(limit)} are allowed.",
                       field="file")
    return data


def read_archive(path: Path, folder: Path, max_bytes: int) -> tuple[dict[str, Any], dict[str, Any] | None,
                                                                      Path | None]:
    """config.json, metadata.json and the weights file (copied into `folder`) of a .keras zip."""
    limits = {CONFIG: MAX_CONFIG_BYTES, METADATA: MAX_METADATA_BYTES, WEIGHTS: max_bytes}
    declared = _declared_members(path)
    if declared is not None and declared > MAX_MEMBERS:
        raise refuse(f"The .keras archive declares {declared} members. Expected {CONFIG}, {METADATA} and {WEIGHTS} "
                     "only.")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise refuse("The file is not a complete .keras archive: it may have been cut off while uploading, or "
                     f"damaged ({str(exc)[:120]}). Expected the whole zip that `model.save('model.keras')` writes. "
                     "Received: an unreadable zip") from None
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        for info in infos:
            if info.filename not in limits:
                raise refuse(f"The .keras archive holds {shown(info.filename)}, which a Keras model file does not "
                             f"have. Expected only {CONFIG}, {METADATA} and {WEIGHTS}. "
                             f"Received: {shown(info.filename)}", member=info.filename[:200])
            if names.count(info.filename) > 1:
                raise refuse(f"The .keras archive holds {info.filename} twice. Expected each member once.")
            if info.flag_bits & 0x1:
                raise refuse(f"{info.filename} in the archive is encrypted. Expected a plain .keras file.")
            if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                raise refuse(f"{info.filename} in the archive is compressed with method {info.compress_type}. "
                             "Expected stored or deflated members, as Keras writes.")
            if info.file_size > limits[info.filename]:
                raise TooLarge(f"{info.filename} in the archive takes {byte_size(info.file_size)}; at most "
                               f"{byte_size(limits[info.filename])} are allowed.", field="file")
        if CONFIG not in names:
            raise refuse(f"The .keras archive has no {CONFIG}, which describes the model. Expected {CONFIG}, "
                         f"{METADATA} and {WEIGHTS}. Received: {', '.join(names) or 'an empty archive'}")
        config = parse_config(_member(archive, CONFIG, limits[CONFIG]), CONFIG)
        metadata = None
        if METADATA in names:
            metadata = parse_config(_member(archive, METADATA, limits[METADATA]), METADATA)
        weights = None
        if WEIGHTS in names:
            weights = folder / WEIGHTS
            _member(archive, WEIGHTS, limits[WEIGHTS], weights)
    return config, metadata, weights


def _declared_members(path: Path) -> int | None:
    """How many members the zip's end record declares, read before `zipfile` lists (and allocates) them all."""
    with open(path, "rb") as handle:
        handle.seek(0, 2)
        size = handle.tell()
        handle.seek(max(0, size - _EOCD_SEARCH_BYTES))
        tail = handle.read()
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None  # no end record: zipfile refuses the file itself
    return int.from_bytes(tail[at + 10:at + 12], "little")


def _member(archive: zipfile.ZipFile, name: str, limit: int, target: Path | None = None) -> bytes:
    """A member's bytes (or, with `target`, the member copied there), never more than `limit`."""
    chunks, size = [], 0
    try:
        with archive.open(name) as source:
            out = open(target, "wb") if target is not None else None
            try:
                while chunk := source.read(1024 * 1024):
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(f"{name} in the archive unpacks to more than {byte_size(limit)}; at most "
                                       f"{byte_size(limit)} are allowed.", field="file")
                    if out is not None:
                        out.write(chunk)
                    else:
                        chunks.append(chunk)
            finally:
                if out is not None:
                    out.close()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError, zlib.error) as exc:
        raise refuse(f"{name} in the archive cannot be read: the file may have been cut off while uploading, or "
                     f"damaged ({str(exc)[:120]}). Expected a complete .keras file.") from None
    return b"".join(chunks)


# --- the weights file ---------------------------------------------------------------------------

def open_weights(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r", locking=False)
    except (OSError, ValueError) as exc:
        raise refuse(f"{WEIGHTS} is not a readable HDF5 file ({str(exc)[:120]}). Expected the weights file Keras "
                     "writes into a .keras file.") from None


def inspect_weights(handle: h5py.File, max_bytes: int) -> dict[str, h5py.Dataset]:
    """Every dataset by path, once the file's structure is safe to read; nothing is read but metadata.

    Refused: soft links and links to other files, objects that are neither groups nor datasets,
    external or virtual storage, filters other than gzip, shuffle and checksums, values that are not
    numbers, and more declared bytes in all than `max_bytes` (from the declared shapes alone).
    """
    found: dict[str, h5py.Dataset] = {}
    total = count = 0
    stack: list[tuple[h5py.Group, str, int]] = [(handle, "", 0)]
    while stack:
        group, prefix, depth = stack.pop()
        if depth > MAX_H5_DEPTH:
            raise refuse(f"{WEIGHTS} nests groups deeper than {MAX_H5_DEPTH} levels at {shown(prefix)}; Keras "
                         "nests 5.")
        try:
            if len(group) + count > MAX_H5_OBJECTS:
                raise refuse(f"{WEIGHTS} holds more than {MAX_H5_OBJECTS} objects; a LayerLab model's weights "
                             "need far fewer.")
            names = list(group)
        except (OSError, KeyError, RuntimeError) as exc:
            raise refuse(f"{WEIGHTS} cannot be read at {shown(prefix or '/')} ({str(exc)[:120]}).") from None
        for name in names:
            count += 1
            if count > MAX_H5_OBJECTS:
                raise refuse(f"{WEIGHTS} holds more than {MAX_H5_OBJECTS} objects; a LayerLab model's weights "
                             "need far fewer.")
            path = prefix + name
            try:
                link = group.get(name, getlink=True)
                if isinstance(link, h5py.ExternalLink):
                    raise refuse(f"{WEIGHTS} links {shown(path)} to another file ({shown(link.filename)}). Expected "
                                 "every array inside the file itself.", path=path[:200])
                if isinstance(link, h5py.SoftLink) or not isinstance(link, h5py.HardLink):
                    raise refuse(f"{WEIGHTS} holds a link at {shown(path)}. Expected plain groups and arrays, as "
                                 "Keras writes.", path=path[:200])
                item = group.get(name)
            except (OSError, KeyError, RuntimeError, ValueError) as exc:
                raise refuse(f"{WEIGHTS} cannot be read at {shown(path)} ({str(exc)[:120]}).") from None
            if isinstance(item, h5py.Group):
                stack.append((item, path + "/", depth + 1))
            elif isinstance(item, h5py.Dataset):
                total += _declared_bytes(item, path)
                if total > max_bytes:
                    raise TooLarge(f"{WEIGHTS} declares more than {byte_size(max_bytes)} of arrays (at {path}: shape "
                                   f"{item.shape}); at most {byte_size(max_bytes)}, the upload limit, are allowed.",
                                   field="file")
                found[path] = item
            else:
                raise refuse(f"{WEIGHTS} holds a {type(item).__name__} at {shown(path)}. Expected plain groups and "
                             "arrays, as Keras writes.", path=path[:200])
    return found


def _filters(dataset: h5py.Dataset) -> list[int]:
    plist = dataset.id.get_create_plist()
    return [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]


def _declared_bytes(dataset: h5py.Dataset, path: str) -> int:
    """The bytes the dataset declares, once its storage and type are known to be plain."""
    try:
        if dataset.is_virtual:
            raise refuse(f"{WEIGHTS} maps {shown(path)} onto other files (a virtual dataset). Expected arrays stored "
                         "in the file.", path=path[:200])
        if dataset.external:
            raise refuse(f"{WEIGHTS} keeps {shown(path)} in external files. Expected arrays stored in the file.",
                         path=path[:200])
        for code in _filters(dataset):
            if code not in ALLOWED_FILTERS:
                raise refuse(f"{WEIGHTS} compresses {shown(path)} with HDF5 filter {code}. Expected no compression, "
                             "or gzip.", path=path[:200])
        dtype, shape = dataset.dtype, dataset.shape
    except (OSError, RuntimeError, ValueError, TypeError) as exc:
        raise refuse(f"{WEIGHTS} cannot be read at {shown(path)} ({str(exc)[:120]}).") from None
    if dtype.kind not in "fiub" or dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize > 16:
        raise refuse(f"{WEIGHTS} holds {shown(path)} of type {dtype}. Expected arrays of numbers.", path=path[:200])
    if shape is None:
        raise refuse(f"{WEIGHTS} holds {shown(path)} with no shape. Expected arrays of numbers.", path=path[:200])
    return math.prod(int(d) for d in shape) * dtype.itemsize


def read_array(dataset: h5py.Dataset) -> np.ndarray:
    """The dataset's values, using at most its declared size (plus one chunk) of memory.

    Unfiltered data is read by HDF5; chunks that went through filters are read raw and inflated
    here, each up to its declared size, so that no compressed chunk can unpack into more memory.
    """
    filters = _filters(dataset)
    if not filters:
        try:
            return np.asarray(dataset[()])
        except (OSError, RuntimeError, ValueError, TypeError) as exc:
            raise refuse(f"{WEIGHTS} cannot be read at {shown(dataset.name)} ({str(exc)[:120]}).") from None
    shape, dtype, chunks = dataset.shape, dataset.dtype, dataset.chunks
    if chunks is None:
        raise refuse(f"{WEIGHTS} filters {shown(dataset.name)} without chunks. Expected chunked arrays.")
    out = np.full(shape, dataset.fillvalue, dtype=dtype)
    chunk_bytes = math.prod(chunks) * dtype.itemsize
    try:
        count = dataset.id.get_num_chunks()
        if count > MAX_CHUNKS:
            raise refuse(f"{WEIGHTS} splits {shown(dataset.name)} into {count} compressed chunks; at most "
                         f"{MAX_CHUNKS} are allowed.")
        for index in range(count):
            info = dataset.id.get_chunk_info(index)
            mask, raw = dataset.id.read_direct_chunk(info.chunk_offset)
            data = _unfilter(bytes(raw), filters, mask, chunk_bytes, dtype.itemsize, dataset.name)
            block = np.frombuffer(data, dtype=dtype).reshape(chunks)
            where = tuple(slice(o, min(o + c, s)) for o, c, s in zip(info.chunk_offset, chunks, shape))
            out[where] = block[tuple(slice(0, w.stop - w.start) for w in where)]
    except UserError:
        raise
    except (OSError, RuntimeError, ValueError, TypeError, KeyError) as exc:
        raise refuse(f"{WEIGHTS} cannot be read at {shown(dataset.name)} ({str(exc)[:120]}).") from None
    return out


def _unfilter(data: bytes, filters: list[int], mask: int, chunk_bytes: int, itemsize: int, name: str) -> bytes:
    for position in reversed(range(len(filters))):
        if mask & (1 << position):
            continue  # this filter was skipped for this chunk
        code = filters[position]
        if code == h5py.h5z.FILTER_FLETCHER32:
            data = data[:-_CHECKSUM_BYTES]
        elif code == h5py.h5z.FILTER_DEFLATE:
            inflater = zlib.decompressobj()
            try:
                data = inflater.decompress(data, chunk_bytes)
            except zlib.error as exc:
                raise refuse(f"{WEIGHTS} has a damaged compressed chunk in {shown(name)} ({exc}).") from None
            if inflater.unconsumed_tail or not inflater.eof:
                raise refuse(f"{WEIGHTS} has a compressed chunk in {shown(name)} that unpacks to more than the "
                             f"{byte_size(chunk_bytes)} its shape declares. Expected chunks of their declared size.")
        elif code == h5py.h5z.FILTER_SHUFFLE:
            whole = len(data) // itemsize * itemsize
            shuffled = np.frombuffer(data[:whole], dtype=np.uint8).reshape(itemsize, -1)
            data = shuffled.T.tobytes() + data[whole:]
    if len(data) != chunk_bytes:
        raise refuse(f"{WEIGHTS} has a chunk in {shown(name)} of {len(data)} bytes. Expected {chunk_bytes} bytes, "
                     "the size its shape declares.")
    return data


def layer_variables(layer: Any) -> dict[str, Any]:
    """A layer's variables by their path in Keras' weights file: `vars/<i>` in the order Keras saves them
    (trainable, then non-trainable), and a recurrent layer's cell under `cell/`."""
    import keras

    own = [*layer._trainable_variables, *layer._non_trainable_variables]
    found = {f"vars/{i}": variable for i, variable in enumerate(own)}
    cell = getattr(layer, "cell", None)
    if isinstance(cell, keras.layers.Layer):
        found.update({f"cell/{path}": variable for path, variable in layer_variables(cell).items()})
    return found


def weight_keys(model: Any) -> dict[str, str]:
    """Each layer's group under `layers/` in a weights file Keras writes for `model` (by class and position)."""
    counts: Counter[str] = Counter()
    keys = {}
    for layer in model.layers:
        base = keras_snake_case(type(layer).__name__)
        keys[layer.name] = base if counts[base] == 0 else f"{base}_{counts[base]}"
        counts[base] += 1
    return keys


# --- the import ---------------------------------------------------------------------------------

def import_model(payload: dict[str, Any]) -> dict[str, Any]:
    """Map the uploaded file onto a LayerLab graph; with weights, write them for the rebuilt model to
    `weights_out` (nothing is written when the import is refused)."""
    path, filename = Path(payload["path"]), str(payload.get("filename") or "")
    max_bytes = int(payload["max_bytes"])
    limits = Limits(**payload.get("limits", {}))
    weights_out = Path(payload["weights_out"])
    kind = sniff(path, filename)
    try:
        with tempfile.TemporaryDirectory(prefix=f"{path.name}.", dir=path.parent) as folder:
            if kind == "json":
                what = "The JSON config"
                config, weights = parse_config(read_bounded(path, MAX_CONFIG_BYTES, what), what), None
            else:
                config, _, weights = read_archive(path, Path(folder), max_bytes)
            plan = plan_import(config, limits)
            result: dict[str, Any] = {"graph": plan.graph.model_dump(), "model_name": plan.model_name,
                                      "imported": list(plan.imported), "not_imported": list(plan.not_imported),
                                      "weights": None}
            if weights is None:
                why = "a JSON config holds none" if kind == "json" else f"the archive has no {WEIGHTS}"
                result["not_imported"].append(f"trained weights: {why}, so the model starts from fresh weights")
                return result
            with open_weights(weights) as handle:
                datasets = inspect_weights(handle, max_bytes)
                result["weights"] = _load_weights(plan, datasets, weights_out, result)
            return result
    except BaseException:
        weights_out.unlink(missing_ok=True)
        raise


def _load_weights(plan: ImportPlan, datasets: dict[str, h5py.Dataset], out: Path,
                  result: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the model from the catalog, check the file holds exactly its arrays, assign them, save anew."""
    import keras

    from app.worker.build import build_model

    model = build_model(plan.graph)
    try:
        layer_of_key = {key: name for name, key in plan.weight_keys.items()}
        expected: dict[str, tuple[Any, Any]] = {}
        for layer in model.layers:
            variables = layer_variables(layer)
            if variables:
                key = plan.weight_keys[layer.name]
                expected.update({f"layers/{key}/{rel}": (layer, v) for rel, v in variables.items()})
        saved = {p for p in datasets if p.startswith("layers/")}
        for path in sorted(set(expected) - saved):
            layer = expected[path][0]
            raise refuse(f"Layer {shown(layer.name)} ({type(layer).__name__}): {WEIGHTS} has no array "
                         f"{shown(path)} for it. Expected the arrays Keras 3 saves for this model. Received: a "
                         "weights file for another model", layer=layer.name)
        for path in sorted(saved - set(expected)):
            key = path.split("/")[1]
            name = layer_of_key.get(key)
            where = f"Layer {shown(name)}" if name else f"The group {shown('layers/' + key)}"
            raise refuse(f"{where}: {WEIGHTS} holds {shown(path)}, which the model has no variable for. Expected "
                         "the arrays Keras 3 saves for this model only.", layer=name)
        values = 0
        arrays = {}
        for path, (layer, variable) in expected.items():
            dataset = datasets[path]
            want = tuple(int(d) for d in variable.shape)
            if tuple(dataset.shape) != want or dataset.dtype.kind != "f":
                raise refuse(f"Layer {shown(layer.name)} ({type(layer).__name__}): its weights {shown(path)} do not "
                             f"fit. Expected shape {want} of floats. Received: shape {tuple(dataset.shape)} of "
                             f"{dataset.dtype}", layer=layer.name)
            arrays[path] = read_array(dataset)
            values += int(arrays[path].size)
        for path, (_, variable) in expected.items():
            variable.assign(np.asarray(arrays[path], dtype=variable.dtype))
        others = sorted({p.split("/")[0] for p in datasets if not p.startswith("layers/")})
        if "optimizer" in others:
            result["not_imported"].append("optimizer state: training starts with a new optimizer")
        if [o for o in others if o != "optimizer"]:
            result["not_imported"].append("other saved state (" + ", ".join(o for o in others if o != "optimizer")
                                          + "): not part of a LayerLab model")
        model.save_weights(str(out))
        keys = weight_keys(model)
        _check_saved(out, model, keys)
        layers = sorted({expected[p][0].name for p in expected})
        result["imported"].append(f"trained weights of {len(layers)} layers ({values:,} values)")
        return {"layers": layers, "values": values, "layer_keys": keys}
    finally:
        del model
        keras.backend.clear_session()


def _check_saved(path: Path, model: Any, keys: dict[str, str]) -> None:
    """The file Keras wrote holds the arrays `layer_variables` maps, no more, no fewer: a Keras that saved
    its variables differently is caught here rather than mapped wrongly."""
    expected = {f"layers/{keys[layer.name]}/{rel}": tuple(int(d) for d in v.shape)
                for layer in model.layers for rel, v in layer_variables(layer).items()}
    with open_weights(path) as handle:
        written = {p: tuple(d.shape) for p, d in inspect_weights(handle, 2**62).items() if p.startswith("layers/")}
    if written != expected:
        raise RuntimeError("the weights Keras wrote do not match LayerLab's map of the model's variables")


def apply_stored_weights(model: Any, path: Path, keys: dict[str, str]) -> list[str]:
    """Assign weights kept from an import to the layers of `model` (built from the model's graph) that still
    have the same name and variable shapes; returns the names of the layers that got them."""
    applied = []
    with open_weights(path) as handle:
        datasets = inspect_weights(handle, 2**62)
        for layer in model.layers:
            variables = layer_variables(layer)
            key = keys.get(layer.name)
            if not variables or key is None:
                continue
            paths = {rel: f"layers/{key}/{rel}" for rel in variables}
            if all(p in datasets and tuple(datasets[p].shape) == tuple(v.shape)
                   for p, v in zip(paths.values(), variables.values())):
                for rel, variable in variables.items():
                    variable.assign(np.asarray(read_array(datasets[paths[rel]]), dtype=variable.dtype))
                applied.append(layer.name)
    return applied
