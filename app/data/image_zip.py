"""Reading an uploaded zip of images, one folder per class, without ever extracting it.

Each image is read into memory, its declared size checked from the header before any
pixel is decoded, then resized to the chosen size. Files other than PNG and JPEG (a
README, macOS's __MACOSX folder, hidden files) are skipped and counted.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError

from app.core.errors import UserError
from app.data.catalog import UploadLimits
from app.data.raw import LabeledArrays
from app.data.zip_safety import open_checked_zip, read_entry

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_DECODE_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)


def read_image_zip(path: Path, options: dict, limits: UploadLimits = UploadLimits()) -> LabeledArrays:
    height, width = options.get("image_size", [28, 28])
    color_mode = options.get("color_mode", "grayscale")
    channels = 1 if color_mode == "grayscale" else 3
    archive, entries = open_checked_zip(path, limits, "an image dataset")
    with archive:
        labelled, skipped = _image_entries(entries)
        class_names = sorted({folder for folder, _ in labelled})
        _check_classes(class_names, len(labelled), limits)
        if len(labelled) * height * width * channels > limits.max_prepared_values:
            raise UserError(f"{len(labelled)} images of {height}x{width}x{channels} would hold more than the "
                              f"{limits.max_prepared_values} values allowed; choose a smaller image_size or "
                              f"grayscale.", field="image_size")
        x = np.empty((len(labelled), height, width, channels), dtype=np.uint8)
        for i, (_, info) in enumerate(labelled):
            x[i] = _decode(read_entry(archive, info), info.filename, (width, height), color_mode, limits)
    index = {name: i for i, name in enumerate(class_names)}
    y = np.array([index[folder] for folder, _ in labelled], dtype=np.int64)
    notes = {"images": len(labelled), "skipped_files": skipped[:20], "skipped_count": len(skipped),
             "image_size": [height, width], "color_mode": color_mode}
    return LabeledArrays("image", "classification", x, y, class_names, notes=notes)


def _image_entries(entries: list[zipfile.ZipInfo]) -> tuple[list[tuple[str, zipfile.ZipInfo]], list[str]]:
    labelled, skipped = [], []
    for info in entries:
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if any(part.startswith(".") or part == "__MACOSX" for part in parts):
            continue  # metadata that archivers add, never images of a class
        if not info.filename.lower().endswith(IMAGE_SUFFIXES):
            skipped.append(info.filename)
            continue
        if len(parts) < 2:
            raise UserError(f"{info.filename!r} is not inside a class folder. Put each class's images in a "
                              f"folder named after the class, like 'cats/1.png' and 'dogs/1.png'.", field="file")
        labelled.append((parts[-2], info))
    return labelled, skipped


def _check_classes(class_names: list[str], n_images: int, limits: UploadLimits) -> None:
    if n_images == 0:
        raise UserError("The archive holds no PNG or JPEG images. Put each class's images in a folder named "
                          "after the class, like 'cats/1.png' and 'dogs/1.png'.", field="file")
    if len(class_names) < 2:
        raise UserError(f"The archive holds one class folder ({class_names[0]!r}); classification needs at least "
                          f"2, one folder per class.", field="file")
    if len(class_names) > limits.max_classes:
        raise UserError(f"The archive holds {len(class_names)} class folders; at most {limits.max_classes} are "
                          f"allowed.", field="file")


def _too_large(name: str, size: str, limits: UploadLimits) -> UserError:
    return UserError(f"The image {name!r} is {size} pixels; at most {limits.max_image_pixels} pixels "
                       f"(for example 4096x4096) are allowed.", field="file")


def _decode(data: bytes, name: str, size: tuple[int, int], color_mode: str, limits: UploadLimits) -> np.ndarray:
    try:
        # Pillow checks sizes in Image.open against its own global limit, warning first and
        # refusing only at twice the limit. Its warning is turned into an error here, locally,
        # so a huge image is always refused with our message and nothing is logged; our own,
        # stricter limit is checked next, from the header, before decoding.
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=("PNG", "JPEG"))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise _too_large(name, "more than " + str(Image.MAX_IMAGE_PIXELS), limits) from None
    except _DECODE_ERRORS as exc:
        raise UserError(f"{name!r} cannot be read as a PNG or JPEG image ({exc}).", field="file") from None
    with image:
        declared_width, declared_height = image.size
        if declared_width * declared_height > limits.max_image_pixels:
            raise _too_large(name, f"{declared_width}x{declared_height}", limits)
        try:
            return _to_array(image, size, color_mode)
        except _DECODE_ERRORS as exc:
            raise UserError(f"{name!r} cannot be decoded ({exc}).", field="file") from None


def _to_array(image: Image.Image, size: tuple[int, int], color_mode: str) -> np.ndarray:
    mode = "L" if color_mode == "grayscale" else "RGB"
    if image.format == "JPEG":
        image.draft(mode, size)  # lets the JPEG decoder skip detail the resize would throw away
    image.load()
    if image.mode == "P" or "A" in image.mode or "transparency" in image.info:
        # Transparent pixels are shown on white, as a browser shows them; converting a
        # palette image with transparency straight to RGB would drop it (and warn).
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    resized = image.convert(mode).resize(size, Image.Resampling.BILINEAR)
    array = np.asarray(resized, dtype=np.uint8)
    return array.reshape(size[1], size[0], 1 if mode == "L" else 3)
