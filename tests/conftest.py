"""Shared fixtures: one app with a real SQLite file and one warm Keras worker per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.browser_like import BrowserLikeClient
from tests.postgres import DATABASES, PostgresServer, postgres_programs, remove_postgres, start_postgres


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory):
    data_dir: Path = tmp_path_factory.mktemp("layerlab-data")
    # Every test gets a workspace of its own, all from one address: lift the hourly cap here
    # (tests/web/test_sessions.py checks the cap itself).
    return create_app(Settings(data_dir=data_dir, workspaces_per_hour=1_000_000))


@pytest.fixture(scope="session")
def sqlite_server(app) -> Iterator[TestClient]:
    """The app with its lifespan running (the inspector worker started)."""
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="session")
def postgresql_server(postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The same app, keeping its records in a database of its own on the session's PostgreSQL server."""
    settings = Settings(data_dir=tmp_path_factory.mktemp("layerlab-pg-data"), database_url=postgres.new_database(),
                        workspaces_per_hour=1_000_000)
    with TestClient(create_app(settings)) as client:
        yield client


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `both_databases` that use the shared server run twice: on SQLite and on PostgreSQL."""
    if metafunc.definition.get_closest_marker("both_databases") and "server" in metafunc.fixturenames:
        metafunc.parametrize("database", DATABASES, indirect=True, scope="session")


@pytest.fixture(scope="session")
def database(request: pytest.FixtureRequest) -> str:
    """Where the shared server keeps its records: SQLite, unless a test is parametrized over DATABASES."""
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="session")
def server(database: str, request: pytest.FixtureRequest) -> TestClient:
    """The shared app, running, on the test's database."""
    return request.getfixturevalue(f"{database}_server")


@pytest.fixture
def api(server: TestClient) -> TestClient:
    """A client with a fresh workspace's bearer token, so tests never share models."""
    token = server.post("/api/v1/workspaces").json()["token"]
    client = TestClient(server.app)
    client.headers["Authorization"] = f"Bearer {token}"
    return client


@pytest.fixture
def browser_client(server: TestClient) -> TestClient:
    """A client that behaves like a browser on the app's own pages (cookie, Origin, CSRF token)."""
    return BrowserLikeClient(server.app)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of its own for the session. Without PostgreSQL's programs the tests that need it
    are skipped, unless LAYERLAB_REQUIRE_POSTGRES=1 (as in CI) makes that a failure."""
    programs = postgres_programs()
    if programs is None:
        reason = "PostgreSQL's server programs (initdb, pg_ctl) are not installed"
        if os.environ.get("LAYERLAB_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    server = start_postgres(programs)
    yield server
    remove_postgres(server)
