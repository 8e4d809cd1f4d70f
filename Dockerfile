# LayerLab for a workshop room: one server, many browsers, no internet needed at run time.
#   docker build -t layerlab .                            (CPU; --build-arg TF_BUILD=gpu for CUDA)
#   docker run -p 8000:8000 -v layerlab-data:/data layerlab
# Workshop: add -e LAYERLAB_MODE=workshop -e LAYERLAB_INSTRUCTOR_PASSWORD=... (see README).
# The install steps live in scripts/install-image.sh, which CI also runs (check-image-install.sh).
FROM python:3.11-slim

# cpu: tensorflow-cpu as pinned in pyproject.toml; gpu: tensorflow[and-cuda] of the same version.
ARG TF_BUILD=cpu
# More pip requirements, space-separated: e.g. a PostgreSQL driver for LAYERLAB_DATABASE_URL.
ARG EXTRA_PACKAGES=""
# Where to download MNIST and Fashion-MNIST from at build time (empty: Keras' own origin).
ARG DATASET_MIRROR=""

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LAYERLAB_HOST=0.0.0.0 LAYERLAB_PORT=8000 LAYERLAB_DATA_DIR=/data \
    LAYERLAB_DATASET_CACHE_DIR=/opt/layerlab/dataset-cache

WORKDIR /opt/layerlab
COPY pyproject.toml README.md ./
COPY scripts ./scripts
COPY app ./app
COPY templates ./templates
COPY static ./static
# Installs the app editable (it finds templates/ and static/ here), caches MNIST and
# Fashion-MNIST, and creates the user `layerlab` owning /data.
RUN LAYERLAB_TF="$TF_BUILD" LAYERLAB_EXTRA_PACKAGES="$EXTRA_PACKAGES" \
    LAYERLAB_DATASET_MIRROR="$DATASET_MIRROR" LAYERLAB_CREATE_USER=1 bash scripts/install-image.sh

# The user layerlab, by number, so that a runtime can tell it is not root.
USER 1000:1000
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "/opt/layerlab/scripts/healthcheck.py"]
CMD ["layerlab"]
