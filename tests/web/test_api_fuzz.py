"""The API fuzzed from its own OpenAPI document: no request, however odd, gets a 500, and no answer
contradicts the schema it documents."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error, response_schema_conformance

from app.config import Settings
from tests.postgres import DATABASES
from tests.web.live_server import app_without_warm_up

pytestmark = pytest.mark.slow

# Event streams stay open while a run could still change; the tests in test_training_api.py cover them.
schema = schemathesis.pytest.from_fixture("api_schema").exclude(path_regex=r".*/events$")


@pytest.fixture(scope="module", params=DATABASES)
def fuzzed_app(request, tmp_path_factory):
    """The app on each database: an id or number one database takes may be out of the other's range."""
    from fastapi.testclient import TestClient

    url = request.getfixturevalue("postgres").new_database() if request.param == "postgresql" else ""
    app = app_without_warm_up(Settings(data_dir=tmp_path_factory.mktemp("fuzz"), database_url=url,
                                       workspaces_per_hour=100_000))
    with TestClient(app) as client:  # the lifespan runs: workers, event hub
        token = client.post("/api/v1/workspaces").json()["token"]
        yield app, token


@pytest.fixture(scope="module")
def api_schema(fuzzed_app):
    app, _ = fuzzed_app
    return schemathesis.openapi.from_asgi("/openapi.json", app)


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
def test_no_request_gets_a_server_error(case, fuzzed_app):
    _, token = fuzzed_app
    case.call_and_validate(headers={"Authorization": f"Bearer {token}"},
                           checks=[not_a_server_error, response_schema_conformance])
