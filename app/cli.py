"""The `layerlab` command: serve the app with the settings from the environment.

`layerlab hash-password` prints the hashed form of an instructor password, for
LAYERLAB_INSTRUCTOR_PASSWORD_HASH.
"""

from __future__ import annotations

import argparse
import getpass
import sys

import uvicorn
from pydantic import ValidationError

from app.config import Settings
from app.core.passwords import MIN_PASSWORD_CHARS, hash_password


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
    parser = argparse.ArgumentParser(prog="layerlab", description="Serve LayerLab. "
                                     "`layerlab hash-password` hashes an instructor password.")
    parser.add_argument("--host", default=settings.host, help=f"default: {settings.host} (LAYERLAB_HOST)")
    parser.add_argument("--port", type=int, default=settings.port, help=f"default: {settings.port} (LAYERLAB_PORT)")
    args = parser.parse_args(argv)
    mode = "workshop mode" if settings.workshop_mode else "personal mode"
    print(f"LayerLab ({mode}) on http://{args.host}:{args.port}  (data in {settings.data_dir.resolve()})")
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, log_level="info")


def _print_password_hash() -> None:
    password = getpass.getpass("Instructor password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    if len(password) < MIN_PASSWORD_CHARS:
        sys.exit(f"layerlab: the password must be at least {MIN_PASSWORD_CHARS} characters long.")
    print(hash_password(password))


if __name__ == "__main__":
    main()
