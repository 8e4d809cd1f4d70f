"""The `layerlab` command: serve the app with the settings from the environment.

`layerlab hash-password` prints the hashed form of an instructor password, for
LAYERLAB_INSTRUCTOR_PASSWORD_HASH. `layerlab db upgrade` applies the database migrations
that the server would apply when it starts, and says what it did.
"""

from __future__ import annotations

import argparse
import getpass
import sys

import uvicorn
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from app.config import Settings
from app.core.passwords import MIN_PASSWORD_CHARS, hash_password
from app.store.db import DatabaseUnreachable, apply_migrations, make_engine


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["hash-password"]:
        _print_password_hash()
        return
    try:
        settings = Settings()
    except ValidationError as error:  # say what to fix, without a traceback
        sys.exit(f"layerlab: cannot start: {'; '.join(_setting_problem(e) for e in error.errors())}")
    if argv[:2] == ["db", "upgrade"]:
        _upgrade_database(settings)
        return
    parser = argparse.ArgumentParser(prog="layerlab", description="Serve LayerLab. "
                                     "`layerlab hash-password` hashes an instructor password; "
                                     "`layerlab db upgrade` applies the database migrations.")
    parser.add_argument("--host", default=settings.host, help=f"default: {settings.host} (LAYERLAB_HOST)")
    parser.add_argument("--port", type=int, default=settings.port, help=f"default: {settings.port} (LAYERLAB_PORT)")
    args = parser.parse_args(argv)
    _migrated(settings)  # refuse to start, saying why, rather than fail in the server's start-up
    if settings.executor == "ray":
        _serve_on_ray(settings, args.host, args.port)
    else:
        _serve(settings, args.host, args.port)


def _serve(settings: Settings, host: str, port: int) -> None:
    mode = "workshop mode" if settings.workshop_mode else "personal mode"
    print(f"LayerLab ({mode}) on http://{host}:{port}  (data in {settings.data_dir.resolve()})")
    uvicorn.run("app.main:create_app", factory=True, host=host, port=port, log_level="info")


def _setting_problem(error: ErrorDetails) -> str:
    """One setting's problem, named as it is set (its value is not repeated: it may be a password or a URL
    holding one); the checks across settings name their settings themselves."""
    message = str(error["msg"]).removeprefix("Value error, ")
    if not error["loc"]:
        return message
    return f"LAYERLAB_{'_'.join(str(part) for part in error['loc']).upper()}: {message}"


def _migrated(settings: Settings) -> list[str]:
    """Bring the database's schema up to date (what was done); exit saying why when it cannot be reached."""
    try:
        engine = make_engine(settings.resolved_database_url, pool_size=1, upgrade=False)
    except DatabaseUnreachable as error:  # its driver is not installed
        sys.exit(f"layerlab: {error}")
    try:
        return apply_migrations(engine)
    except DatabaseUnreachable as error:
        sys.exit(f"layerlab: {error}")
    finally:
        engine.dispose()


def _serve_on_ray(settings: Settings, host: str, port: int) -> None:
    """Refuse to start in ray mode when its cluster cannot be reached, rather than queue runs that never start:
    at once when nothing answers at its address, else once connecting to it fails during the server's start-up."""
    from app.jobs.ray_executor import RayUnavailable, probe

    try:
        probe(settings.ray_address)
        _serve(settings, host, port)
    except RayUnavailable as error:
        sys.exit(f"layerlab: {error}")


def _upgrade_database(settings: Settings) -> None:
    done = _migrated(settings)
    print("\n".join(done) if done else "The database is up to date.")


def _print_password_hash() -> None:
    password = getpass.getpass("Instructor password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < MIN_PASSWORD_CHARS:
        sys.exit(f"layerlab: the password must be at least {MIN_PASSWORD_CHARS} characters long.")
    print(hash_password(password))


if __name__ == "__main__":
    main()
