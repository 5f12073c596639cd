"""The runtime's command line: `start` the engine (the web process and, by default, one worker
process running every function), run a `worker`, or the `demo`."""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import uvicorn
import uvloop
from redis.asyncio import Redis

from local_runtime.app import create_app
from local_runtime.auth import leave_dev_key, local_api_key
from local_runtime.logs import configure_process_logging, uvicorn_log_config
from local_runtime.metrics_api import engine_directory
from local_runtime.services import ServiceUnavailable, check_services, prepare
from functions.pipeline import PIPELINE
from local_runtime.worker import exit_on_sigterm, parse_functions, run_processes, serve, spawn_workers, stop_workers
from shared.adapters.postgres.api_keys import CACHE_TTL_S, PgApiKeys, new_key
from shared.settings import Settings, load_settings


def _configure_logging(settings: Settings) -> None:
    """Text lines, or JSON lines with DEX_LOG_FORMAT=json (local_runtime/logs.py)."""
    configure_process_logging(settings.log_level, settings.log_format)


LAYOUTS = ("process", "inline", "none")
"""`start --workers`: every function in separate worker processes (the default: measured
fastest, web + worker), in the web process itself, or nowhere (web only); or a list of
functions to run in the web process."""


def listen_socket(host: str, port: int) -> socket.socket:
    """The server's socket, bound now (not yet listening: a client meanwhile is refused, not kept
    waiting), so a taken port stops `start` before it migrates or touches the development key.
    OSError if the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: TIME_WAIT is no obstacle
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def start(settings: Settings, steps: tuple[str, ...], worker_processes: int = 0,
          dev_key_file: Path | None = None) -> int:
    """Migrate, then serve; with `worker_processes`, also that many worker processes running every
    function, stopped with the web process (Ctrl-C stops them all). With `dev_key_file`, the
    development key is written there once it is registered (`python3 dev.py start`: .dev-api-key)."""
    _configure_logging(settings)
    if settings.queue_backend != "saq" and (steps or worker_processes):
        print("error: with DEX_QUEUE_BACKEND=sqs the functions run behind their queue triggers: "
              "start the web process with --workers none", file=sys.stderr)
        return 2
    try:
        listener = listen_socket(settings.host, settings.port)
    except OSError as exc:
        print(f"error: cannot listen on {settings.host}:{settings.port} ({exc.strerror}): is another engine running? "
              "Stop it first (Ctrl-C where it runs), or set PORT", file=sys.stderr)
        return 1
    try:
        asyncio.run(prepare(settings.redis_url, settings.database_url))
    except ServiceUnavailable as exc:
        listener.close()
        print(f"error: {exc}", file=sys.stderr)
        return 1
    settings = engine_directory(settings)  # where this command's processes share their metrics
    settings = settings.with_changes(dev_api_key=settings.dev_api_key or new_key())  # one key for the app and the file
    app = create_app(settings, steps)
    if dev_key_file is not None:  # after the app's start-up registered the key (on_startup runs after the lifespan's)
        app.on_startup.append(lambda _: leave_dev_key(dev_key_file, settings.dev_api_key))
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=64 * 1024,
        timeout_graceful_shutdown=5,
        log_level=settings.log_level.lower(),
        log_config=uvicorn_log_config(settings.log_format),
        access_log=False,
    )
    children = spawn_workers(tuple(PIPELINE), worker_processes, settings.metrics_dir) if worker_processes else []
    print(f"engine listening on http://{settings.host}:{settings.port} (OpenAPI at /schema)"
          + (f" with {worker_processes} worker process{'es' if worker_processes > 1 else ''}" if children else ""),
          flush=True)
    exit_on_sigterm()
    try:
        uvicorn.Server(config).run(sockets=[listener])
    finally:
        stop_workers(children)
    return 0


def worker(settings: Settings, steps: tuple[str, ...], processes: int) -> int:
    _configure_logging(settings)
    if processes > 1:
        return run_processes(steps, processes)
    try:
        asyncio.run(check_services(settings.redis_url, settings.database_url))
        uvloop.run(serve(settings, steps))  # the same loop as the web process (uvicorn's uvloop)
    except ServiceUnavailable as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_runtime", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    start_cmd = commands.add_parser("start", help="run migrations, then serve the API and run the functions")
    start_cmd.add_argument("--workers", default="process", metavar="LAYOUT",
                           help='"process" (default: every function in --worker-processes worker processes beside '
                                'the web process), "inline" (every function in the web process: one process), '
                                '"none" (the web process only), or functions to run in the web process, '
                                'such as "quote,route"')
    start_cmd.add_argument("--worker-processes", type=int, default=1,
                           help="worker processes with --workers process (default 1)")
    start_cmd.add_argument("--dev-key-file", type=Path, default=None, metavar="PATH",
                           help="write the development key there once registered (python3 dev.py start: "
                                ".dev-api-key); default: print it only")
    worker_cmd = commands.add_parser("worker", help="run workers (and the reconciler) without the web server")
    worker_cmd.add_argument("--functions", default="all", help='"all" (default) or a list such as "quote,route"')
    worker_cmd.add_argument("--processes", type=int, default=1, help="worker processes to run (default 1)")
    demo = commands.add_parser("demo", help="submit 5 simultaneous orders over WebSockets and print their events")
    demo.add_argument("--url", default=None, help="engine base URL (default http://127.0.0.1:$PORT)")
    keys_cmd = commands.add_parser("apikey", help="create or revoke API keys")
    key_actions = keys_cmd.add_subparsers(dest="action", required=True)
    create = key_actions.add_parser("create", help="make a key for a client and print it (shown once)")
    create.add_argument("--client", required=True, help="the client id the key acts as")
    create.add_argument("--label", default="")
    create.add_argument("--per-minute", type=int, default=None, help="orders per minute (default: the engine's)")
    create.add_argument("--in-flight", type=int, default=None, help="orders in flight (default: the engine's)")
    revoke = key_actions.add_parser("revoke", help="revoke a key: every web process refuses it within a second "
                                    "(its open WebSockets too)")
    revoke.add_argument("key")
    args = parser.parse_args(argv)
    settings = load_settings()
    try:
        if args.command == "start":
            if args.workers == "process":
                if args.worker_processes < 1:
                    raise ValueError("--worker-processes must be at least 1")
                return start(settings, (), args.worker_processes, args.dev_key_file)
            steps = tuple(PIPELINE) if args.workers == "inline" else (
                () if args.workers == "none" else parse_functions(args.workers))
            return start(settings, steps, dev_key_file=args.dev_key_file)
        if args.command == "worker":
            if args.processes < 1:
                raise ValueError("--processes must be at least 1")
            return worker(settings, parse_functions(args.functions), args.processes)
    except ValueError as exc:
        parser.error(str(exc))
    if args.command == "apikey":
        return asyncio.run(manage_keys(settings, args))
    from local_runtime.demo import run_demo

    return asyncio.run(run_demo(args.url or f"http://127.0.0.1:{settings.port}", local_api_key()))


async def manage_keys(settings: Settings, args: argparse.Namespace) -> int:
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    # Revocations are announced to the web processes on Redis; short timeouts, as PostgreSQL is
    # what makes a revocation stand.
    redis = Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    try:
        keys, now = PgApiKeys(pool, redis, settings.namespace), datetime.now(UTC)
        if args.action == "create":
            print(await keys.create(args.client, now, label=args.label, orders_per_minute=args.per_minute,
                                    max_in_flight=args.in_flight))
            return 0
        revocation = await keys.revoke(args.key, now)
        if revocation.error is not None:
            print(f"warning: the key is revoked in PostgreSQL, but the web processes could not be told over Redis "
                  f"({revocation.error}): it takes effect within the key cache's TTL ({CACHE_TTL_S:g} s), "
                  "open WebSockets included", file=sys.stderr)
        if revocation.revoked:
            print("revoked")
            return 0
        if revocation.known:
            print("error: this key was already revoked (announced again)", file=sys.stderr)
            return 1
        print("error: no such key", file=sys.stderr)
        return 1
    finally:
        await pool.close()
        await redis.aclose()
