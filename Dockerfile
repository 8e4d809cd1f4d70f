# LayerLab for a workshop room: one server, many browsers, no internet needed at run time.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    LAYERLAB_HOST=0.0.0.0 LAYERLAB_PORT=8000 LAYERLAB_DATA_DIR=/data \
    LAYERLAB_DATASET_CACHE_DIR=/opt/layerlab/dataset-cache

WORKDIR /opt/layerlab
COPY pyproject.toml README.md ./
COPY app ./app
COPY templates ./templates
COPY static ./static
# Editable install: the app finds templates/ and static/ beside app/.
RUN pip install -e . \
 && python -m app.data.cache_keras_datasets "$LAYERLAB_DATASET_CACHE_DIR" \
 && useradd --create-home --uid 1000 layerlab \
 && mkdir -p /data && chown layerlab /data

USER layerlab
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/api/v1/starters')"
CMD ["layerlab"]
