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
        messages = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in error.errors())
        sys.exit(f"layerlab: cannot start: {messages}")
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
    if settings.executor == "ray" and settings.ray_address:
        _check_ray(settings.ray_address)
    mode = "workshop mode" if settings.workshop_mode else "personal mode"
    print(f"LayerLab ({mode}) on http://{args.host}:{args.port}  (data in {settings.data_dir.resolve()})")
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, log_level="info")


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


def _check_ray(address: str) -> None:
    """Refuse to start in ray mode when its cluster cannot be reached, rather than queue runs that never start."""
    from app.jobs.ray_executor import RayUnavailable, probe

    try:
        probe(address)
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
