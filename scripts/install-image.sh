#!/usr/bin/env bash
# The Docker image's install steps, in one place: the Dockerfile runs this script, and CI
# runs it into a fresh virtual environment (scripts/check-image-install.sh).
#
#   scripts/install-image.sh [VENV]
#
# VENV (or LAYERLAB_VENV): a virtual environment to install into, created with $PYTHON
# (default python3) when missing. Neither given: install into $PYTHON itself (the image).
#
# The app is installed editable from this source tree (`pip install -e .`): it finds
# templates/ and static/ beside app/, so the tree must stay where it is.
#
# Environment, all optional:
#   LAYERLAB_TF=cpu|gpu            cpu (default): the tensorflow-cpu pinned in pyproject.toml;
#                                  gpu: tensorflow[and-cuda] of the same version in its place
#   LAYERLAB_EXTRA_PACKAGES        more pip requirements, space-separated (e.g. a database driver)
#   LAYERLAB_DATASET_CACHE_DIR     where MNIST and Fashion-MNIST are cached
#                                  (default: $LAYERLAB_DATA_DIR/dataset-cache, data/dataset-cache)
#   LAYERLAB_DATASET_MIRROR        download them from this folder URL instead of Keras' own
#                                  (https://..., or file:///path for a local copy)
#   LAYERLAB_SKIP_DATASET_CACHE=1  do not download them (no internet; the app fetches them on
#                                  first use, or tells the user how to provide them)
#   LAYERLAB_CREATE_USER=1         create the user `layerlab` (uid and gid 1000) owning /data; as root only
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "install-image: $*"; }
die() { echo "install-image: $*" >&2; exit 1; }

venv=${1:-${LAYERLAB_VENV:-}}
python=${PYTHON:-python3}
tf_build=${LAYERLAB_TF:-cpu}
case "$tf_build" in cpu|gpu) ;; *) die "LAYERLAB_TF must be cpu or gpu, not '$tf_build'" ;; esac

if [ -n "$venv" ]; then
  [ -x "$venv/bin/python" ] || { say "creating the virtual environment $venv"; "$python" -m venv "$venv"; }
  python=$venv/bin/python
fi
pip() { "$python" -m pip install --no-input "$@"; }
read -ra extras <<<"${LAYERLAB_EXTRA_PACKAGES:-}"  # split on spaces, no globbing of [extras]

# 1. The app and its pinned dependencies.
if [ "$tf_build" = cpu ]; then
  say "installing the app with tensorflow-cpu into $("$python" -c 'import sys; print(sys.prefix)')"
  pip -e . "${extras[@]}"
else
  # tensorflow-cpu and tensorflow hold the same `tensorflow` package: install pyproject's
  # dependencies with the CUDA build put in place of the CPU one, then the app without them.
  requirements_text=$("$python" - <<'EOF'
import tomllib

deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
cpu = [d for d in deps if d.replace(" ", "").startswith("tensorflow-cpu==")]
if len(cpu) != 1:
    raise SystemExit("pyproject.toml must pin tensorflow-cpu==<version> exactly once")
version = cpu[0].split("==", 1)[1].strip()
for dep in deps:
    print(f"tensorflow[and-cuda]=={version}" if dep in cpu else dep)
EOF
  )
  say "installing the app with tensorflow[and-cuda] into $("$python" -c 'import sys; print(sys.prefix)')"
  mapfile -t requirements <<<"$requirements_text"
  pip "${requirements[@]}" "${extras[@]}"
  pip --no-deps -e .
fi
TF_CPP_MIN_LOG_LEVEL=2 "$python" -c 'import tensorflow as tf, keras; print("install-image: TensorFlow", tf.__version__, "Keras", keras.__version__)'

# 2. MNIST and Fashion-MNIST, so that a room without internet can use them.
cache_dir=${LAYERLAB_DATASET_CACHE_DIR:-${LAYERLAB_DATA_DIR:-data}/dataset-cache}
if [ "${LAYERLAB_SKIP_DATASET_CACHE:-0}" = 1 ]; then
  say "NOT caching MNIST and Fashion-MNIST (LAYERLAB_SKIP_DATASET_CACHE=1)"
elif [ -n "${LAYERLAB_DATASET_MIRROR:-}" ]; then
  say "caching MNIST and Fashion-MNIST in $cache_dir from $LAYERLAB_DATASET_MIRROR"
  "$python" - "$cache_dir" "$LAYERLAB_DATASET_MIRROR" <<'EOF'
import sys
from pathlib import Path

from app.data.keras_datasets import KERAS_DATASETS, cache_file, download_keras_dataset

cache_dir, mirror = Path(sys.argv[1]), sys.argv[2]
for name in KERAS_DATASETS:
    if not cache_file(name, cache_dir).exists():
        try:
            download_keras_dataset(name, cache_dir, mirror=mirror, read_timeout=60, connect_deadline=60)
        except OSError as exc:
            sys.exit(f"install-image: {name}: download from {mirror} failed: {getattr(exc, 'reason', exc)}")
    print(f"{name}: cached at {cache_file(name, cache_dir)}")
EOF
else
  say "caching MNIST and Fashion-MNIST in $cache_dir"
  "$python" -m app.data.cache_keras_datasets "$cache_dir"
fi
if [ -d "$cache_dir" ]; then
  chmod -R a+rX "$cache_dir"  # readable by the image's own user, whoever wrote them
fi

# 3. The user the image runs as, owning the data volume.
if [ "${LAYERLAB_CREATE_USER:-0}" = 1 ]; then
  [ "$(id -u)" = 0 ] || die "LAYERLAB_CREATE_USER=1 needs root (it is meant for the image build)"
  if ! id layerlab >/dev/null 2>&1; then
    groupadd --gid 1000 layerlab
    useradd --uid 1000 --gid 1000 --create-home layerlab
  fi
  mkdir -p /data
  chown layerlab:layerlab /data
  say "user layerlab owns /data"
fi
say "done"
