"""Jinja2 set-up, and the one place that decides between a full page and fragments."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from jinja2 import pass_context
from jinja2.runtime import Context
from jinja2_fragments.fastapi import Jinja2Blocks

from app.core.activations import ACTIVATIONS
from app.core.catalog import CATALOG, LAYER_TYPES
from app.core.initializers import INITIALIZERS
from app.core.internals import ALERT_SHARE
from app.core.text import byte_size
from app.core.training import GROUPS, PARAMS_BY_NAME
from app.data.catalog import BUILTIN_DATASETS, SPLIT_OPTIONS
from app.web import auth, charts, diagram, formatting, inside_charts

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "templates"

templates = Jinja2Blocks(directory=str(TEMPLATE_DIR))


@pass_context
def url(context: Context, name: str, /, **params: Any) -> str:
    """The path of a named route: every link and form action in the templates comes from the route table."""
    return _path_for(context["request"].app, name, tuple(sorted((k, str(v)) for k, v in params.items())))


@lru_cache(maxsize=16384)
def _path_for(app: Any, name: str, params: tuple[tuple[str, str], ...]) -> str:
    # Looking a name up walks the whole route table; an editor page asks for hundreds of paths,
    # mostly the same ones (its layers' buttons) each time, so each answer is kept.
    return str(app.url_path_for(name, **dict(params)))


@pass_context
def csrf(context: Context) -> str:
    """The session's CSRF token for forms and htmx (empty before the browser has a session)."""
    return auth.csrf_token(context["request"]) or ""


@pass_context
def viewer(context: Context) -> Any:
    """Who the page is for (`app.web.auth.Principal`), when known: the header shows roles and workshops."""
    return getattr(context["request"].state, "principal", None)


templates.env.globals.update(
    url=url,
    csrf=csrf,
    viewer=viewer,
    catalog=CATALOG,
    layer_types=LAYER_TYPES,
    activations=ACTIVATIONS,
    initializers=INITIALIZERS,
    render_diagram=diagram.render_svg,
    activation_plot=diagram.activation_plot_svg,
    builtin_datasets=BUILTIN_DATASETS,
    split_params=SPLIT_OPTIONS,
    train_groups=GROUPS,
    train_params=PARAMS_BY_NAME,
    charts=charts,
    inside_charts=inside_charts,
    alert_share=ALERT_SHARE,
)
templates.env.filters.update(
    shape=formatting.shape_text,
    number=formatting.number,
    size=byte_size,
    param_text=formatting.param_text,
    compact_number=formatting.compact_number,
    test_result=formatting.test_result,
    metric_value=formatting.metric_value,
    duration=formatting.duration,
    change_value=formatting.change_value,
    percent=formatting.percent,
    user_message=formatting.user_message,
)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def render(request: Request, template: str, context: dict[str, Any], status_code: int = 200,
           fragment: str | None = None) -> Response:
    """Render `template`; HTMX requests get `fragment` (a template of oob panels) instead."""
    name = fragment if fragment and is_htmx(request) else template
    return templates.TemplateResponse(request, name, context, status_code=status_code)
