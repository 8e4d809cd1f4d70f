"""Inside a trained convnet: feature maps, learned filters and saliency of one test sample, drawn by the worker."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["internals"])
