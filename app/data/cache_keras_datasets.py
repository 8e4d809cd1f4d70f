"""Fetch MNIST and Fashion-MNIST into a cache folder, so that LayerLab needs no internet later.

The Docker image runs this at build time:

    python -m app.data.cache_keras_datasets /data/dataset-cache

Importing this module does nothing; only `main()` downloads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DEFAULT_CACHE_DIR = Path("data") / "dataset-cache"


def main(argv: list[str] | None = None) -> int:
    from app.data.keras_datasets import KERAS_DATASETS, cache_file, download_keras_dataset

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("cache_dir", nargs="?", type=Path, default=DEFAULT_CACHE_DIR,
                        help=f"folder to hold <name>.npz (default: {DEFAULT_CACHE_DIR})")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds to wait for the mirror to answer, and between chunks")
    args = parser.parse_args(argv)
    failed = 0
    for name in KERAS_DATASETS:
        target = cache_file(name, args.cache_dir)
        if target.exists():
            print(f"{name}: already cached at {target}")
            continue
        try:
            download_keras_dataset(name, args.cache_dir, read_timeout=args.timeout,
                                   connect_deadline=args.timeout)
        except OSError as exc:
            failed += 1
            print(f"{name}: download failed: {exc}", file=sys.stderr)
        else:
            print(f"{name}: cached at {target} ({target.stat().st_size / 1e6:.1f} MB)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
