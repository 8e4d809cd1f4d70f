"""The `layerlab` command: serve the app with the settings from the environment."""

from __future__ import annotations

import argparse

import uvicorn

from app.config import Settings


def main(argv: list[str] | None = None) -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(prog="layerlab", description="Serve LayerLab.")
    parser.add_argument("--host", default=settings.host, help=f"default: {settings.host} (LAYERLAB_HOST)")
    parser.add_argument("--port", type=int, default=settings.port, help=f"default: {settings.port} (LAYERLAB_PORT)")
    args = parser.parse_args(argv)
    print(f"LayerLab on http://{args.host}:{args.port}  (data in {settings.data_dir.resolve()})")
    uvicorn.run("app.main:create_app", factory=True, host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
