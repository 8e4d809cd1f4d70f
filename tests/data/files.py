"""Files that the data tests upload: well-formed ones and hostile ones, all made small and fast."""

from __future__ import annotations

import io
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def write_csv(path: Path, header: list[str] | None, rows: list[list[object]]) -> Path:
    lines = [] if header is None else [",".join(header)]
    lines += [",".join("" if v is None else str(v) for v in row) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def png_bytes(width: int = 6, height: int = 6, color: int | tuple[int, ...] = 128, mode: str = "L") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg_bytes(width: int = 10, height: int = 8, color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="JPEG")
    return buffer.getvalue()


def png_of(image: Image.Image, **save_options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **save_options)
    return buffer.getvalue()


def noise_png(size: int = 40) -> bytes:
    """Random pixels, so the compressed data is long enough to cut in the middle."""
    return png_of(Image.fromarray(np.random.default_rng(0).integers(0, 256, (size, size), dtype=np.uint8)))


def png_declaring(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR claims width x height (CRC fixed), made in microseconds."""
    data = bytearray(png_bytes(1, 1))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    return bytes(data)


def write_zip(path: Path, entries: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in entries.items():
            archive.writestr(zipfile.ZipInfo(name), data)  # ZipInfo keeps hostile names as given
    return path


def write_image_zip(path: Path, per_class: dict[str, list[bytes]], prefix: str = "") -> Path:
    entries = {f"{prefix}{label}/{i}.png": data for label, images in per_class.items()
               for i, data in enumerate(images)}
    return write_zip(path, entries)


def two_class_images(count: int = 6) -> dict[str, list[bytes]]:
    return {"dark": [png_bytes(color=20 + i) for i in range(count)],
            "light": [png_bytes(color=230 - i) for i in range(count)]}


def write_symlink_zip(path: Path) -> Path:
    entries = two_class_images(2)
    write_image_zip(path, entries)
    with zipfile.ZipFile(path, "a") as archive:
        link = zipfile.ZipInfo("dark/link.png")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        archive.writestr(link, "/etc/passwd")
    return path


def write_zip_bomb(path: Path, megabytes: int = 20) -> Path:
    """One entry of zeros that deflates about 1000-fold; written in chunks, never all in memory."""
    chunk = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("dark/0.png", png_bytes())
        archive.writestr("light/0.png", png_bytes(color=200))
        with archive.open("light/bomb.png", "w") as entry:
            for _ in range(megabytes):
                entry.write(chunk)
    return path


def write_npz(path: Path, **arrays: np.ndarray) -> Path:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def npy_member(header: dict, payload: bytes = b"") -> bytes:
    """A .npy file with any header we like: for arrays that declare more than they hold."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue() + payload


def write_keras_cache(cache_dir: Path, name: str, n_train: int = 120, n_test: int = 30) -> Path:
    """A small stand-in for mnist.npz / fashion_mnist.npz, in Keras' own layout."""
    rng = np.random.default_rng(1)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return write_npz(cache_dir / f"{name}.npz",
                     x_train=rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
                     y_train=(np.arange(n_train) % 10).astype(np.uint8),
                     x_test=rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
                     y_test=(np.arange(n_test) % 10).astype(np.uint8))


def files_under(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*")}
