"""Image folder zips: round trips in grayscale and colour, and every hostile archive refused."""

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.core.errors import UserError
from app.data.catalog import UploadLimits
from app.data.prepare import prepare_upload
from app.data.prepared import read_arrays
from tests.data.files import (
    files_under,
    jpeg_bytes,
    noise_png,
    png_bytes,
    png_declaring,
    png_of,
    two_class_images,
    write_image_zip,
    write_symlink_zip,
    write_zip,
    write_zip_bomb,
)

PREPARED = {Path("arrays.npz"), Path("meta.json"), Path("samples.png")}


def refuse(tmp_path, path, message, limits=UploadLimits(), **options):
    """Expect the upload refused with `message`, and nothing at all written."""
    (tmp_path / "cwd").mkdir(exist_ok=True)
    before = files_under(tmp_path)
    with pytest.raises(UserError, match=message) as info:
        prepare_upload("images", path, options, tmp_path / "out", limits)
    assert files_under(tmp_path) == before
    return info.value


def test_a_folder_per_class_becomes_labelled_grayscale_images(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_image_zip(tmp_path / "shades.zip", two_class_images(10), prefix="dataset/")
    meta = prepare_upload("images", path, {"image_size": [16, 12]}, tmp_path / "out")
    arrays = read_arrays(tmp_path / "out")
    assert meta.kind == "image" and meta.class_names == ["dark", "light"] and meta.input_shape == [16, 12, 1]
    assert sum(meta.split_sizes.values()) == 20 and arrays["x_train"].dtype == np.float32
    dark = arrays["x_train"][arrays["y_train"] == 0]
    assert dark.max() < 0.15 and arrays["x_train"][arrays["y_train"] == 1].min() > 0.85
    assert meta.preview["grid"]["rows"] == ["dark", "light"] and meta.preview["class_counts"]["train"] == [7, 7]
    assert files_under(tmp_path / "out") == PREPARED
    assert files_under(tmp_path) == {Path("shades.zip"), Path("out")} | {Path("out") / p for p in PREPARED}
    with Image.open(tmp_path / "out" / "samples.png") as grid:
        assert grid.size[1] > grid.size[0] / 8  # two rows of up to eight cells


def test_rgb_jpeg_and_transparent_png_are_decoded_and_other_files_skipped(tmp_path):
    transparent = png_bytes(color=(0, 0, 255, 0), mode="RGBA")
    palette = Image.new("P", (4, 4), 0)
    palette.info["transparency"] = 0
    entries = {"red/a.jpg": jpeg_bytes(), "red/b.JPEG": jpeg_bytes(), "blank/a.png": transparent,
               "blank/b.png": png_of(palette, transparency=0), "blank/c.png": transparent, "README.txt": b"hello",
               "__MACOSX/red/._a.jpg": b"junk", "red/.DS_Store": b"junk"}
    path = write_zip(tmp_path / "mixed.zip", entries)
    meta = prepare_upload("images", path, {"color_mode": "rgb", "image_size": 8, "validation_fraction": 0.2,
                                           "test_fraction": 0.2}, tmp_path / "out")
    arrays = read_arrays(tmp_path / "out")
    x = np.concatenate([arrays[f"x_{s}"] for s in ("train", "val", "test")])
    y = np.concatenate([arrays[f"y_{s}"] for s in ("train", "val", "test")])
    assert meta.input_shape == [8, 8, 3] and meta.class_names == ["blank", "red"]
    np.testing.assert_allclose(x[y == 0], 1.0)  # transparency shows as white
    assert np.all(x[y == 1][..., 0] > 0.7) and np.all(x[y == 1][..., 1] < 0.3)
    assert meta.preview["notes"]["skipped_files"] == ["README.txt"]


def test_entries_pointing_outside_the_archive_are_refused(tmp_path):
    entries = {"dark/0.png": png_bytes(), "../light/evil.png": png_bytes()}
    refuse(tmp_path, write_zip(tmp_path / "up.zip", entries), r"'\.\./light/evil.png' points outside the archive")
    entries = {"dark/0.png": png_bytes(), "dark/../../evil.png": png_bytes()}
    refuse(tmp_path, write_zip(tmp_path / "up2.zip", entries), "points outside the archive")
    assert not (tmp_path.parent / "evil.png").exists() and not (tmp_path.parent / "light").exists()


@pytest.mark.parametrize("name", ["/etc/cron.d/evil.png", "C:/Windows/evil.png", "\\\\server\\share\\evil.png"])
def test_absolute_entry_names_are_refused(tmp_path, name):
    path = write_zip(tmp_path / "abs.zip", {"dark/0.png": png_bytes(), name: png_bytes()})
    refuse(tmp_path, path, "has an absolute path; entries must be relative")


def test_symbolic_links_are_refused(tmp_path):
    refuse(tmp_path, write_symlink_zip(tmp_path / "link.zip"), "'dark/link.png' is a symbolic link")


def test_a_zip_bomb_is_refused_from_its_headers_without_inflating_it(tmp_path):
    path = write_zip_bomb(tmp_path / "bomb.zip", megabytes=20)
    assert path.stat().st_size < 200_000
    tracemalloc.start()
    error = refuse(tmp_path, path, r"'light/bomb.png' unpacks \d+ times larger than it is stored \(20 MB\); at "
                                   r"most 100 times is allowed")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 * 2**20 and error.field == "file"


@pytest.mark.parametrize("width,height", [(20000, 20000), (10000, 10000), (5000, 5000)])
def test_images_declaring_too_many_pixels_are_refused_before_decoding(tmp_path, width, height):
    # 20000x20000 passes pillow's own limit twice over, 10000x10000 sits where pillow would
    # only warn, 5000x5000 is within pillow's limit but over ours: each gets our message.
    entries = {"dark/0.png": png_bytes(), "light/0.png": png_bytes(), "light/big.png": png_declaring(width, height)}
    path = write_zip(tmp_path / "big.zip", entries)
    tracemalloc.start()
    refuse(tmp_path, path, r"The image 'light/big.png' is .* pixels; at most 16777216 pixels")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < 5 * 2**20


@pytest.mark.parametrize("limits,message", [
    (UploadLimits(max_zip_entries=5), "has 12 entries; at most 5 are allowed"),
    (UploadLimits(max_total_uncompressed=500), "at most 0 MB are allowed"),
    (UploadLimits(max_bytes=500), "an upload may be at most"),
    (UploadLimits(max_prepared_values=1000), "choose a smaller image_size or grayscale"),
])
def test_archive_limits_apply(tmp_path, limits, message):
    refuse(tmp_path, write_image_zip(tmp_path / "up.zip", two_class_images(6)), message, limits)


@pytest.mark.parametrize("entries,message", [
    ({"dark/0.png": png_bytes(), "light/0.png": b"not an image"}, "'light/0.png' cannot be read as a PNG or JPEG"),
    ({"dark/0.png": png_bytes(), "light/0.png": noise_png()[:400]}, "'light/0.png' cannot be decoded"),
    ({"dark/0.png": png_bytes(), "loose.png": png_bytes()}, "'loose.png' is not inside a class folder"),
    ({"dark/0.png": png_bytes(), "dark/1.png": png_bytes()}, r"one class folder \('dark'\)"),
    ({"notes.txt": b"hello"}, "holds no PNG or JPEG images"),
    ({"dark/0.gif": b"GIF89a"}, "holds no PNG or JPEG images"),
])
def test_unusable_archives_are_refused(tmp_path, entries, message):
    refuse(tmp_path, write_zip(tmp_path / "up.zip", entries), message)


def test_something_that_is_not_a_zip_is_refused(tmp_path):
    path = tmp_path / "photo.zip"
    path.write_bytes(png_bytes())
    refuse(tmp_path, path, "not a readable zip archive")


def test_an_encrypted_entry_is_refused(tmp_path):
    path = write_image_zip(tmp_path / "up.zip", two_class_images(2))
    data = bytearray(path.read_bytes())
    central = data.rfind(b"PK\x01\x02")  # set the "encrypted" flag in the last central directory record
    data[central + 8] |= 1
    path.write_bytes(bytes(data))
    refuse(tmp_path, path, "is encrypted")
