"""The runtime's command line: `start` the engine, or run the `demo`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import uvicorn

from local_runtime.app import create_app
from local_runtime.services import ServiceUnavailable, prepare
from shared.settings import Settings, load_settings


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s", stream=sys.stderr)
    logging.getLogger("saq").setLevel(logging.WARNING)


def start(settings: Settings) -> int:
    _configure_logging(settings.log_level)
    try:
        asyncio.run(prepare(settings.redis_url, settings.database_url))
    except ServiceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=64 * 1024,
        timeout_graceful_shutdown=5,
        log_level=settings.log_level.lower(),
        access_log=False,
    )
    print(f"engine listening on http://{settings.host}:{settings.port} (OpenAPI at /schema)", flush=True)
    uvicorn.Server(config).run()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_runtime", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("start", help="run migrations, then serve the API with workers for all four functions")
    demo = commands.add_parser("demo", help="submit 5 simultaneous orders over WebSockets and print their events")
    demo.add_argument("--url", default=None, help="engine base URL (default http://127.0.0.1:$PORT)")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.command == "start":
        return start(settings)
    from local_runtime.demo import run_demo

    return asyncio.run(run_demo(args.url or f"http://127.0.0.1:{settings.port}"))
