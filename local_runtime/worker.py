"""A worker process: SAQ workers for some of the functions (and the reconciler), no web server.

Run several, on any machine that reaches the same Redis and PostgreSQL, to spread or
isolate functions: `python -m local_runtime worker --functions quote,route --processes 2`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import threading

from functions.pipeline import PIPELINE
from functions.bootstrap import bootstrap
from local_runtime.gc_tuning import freeze_startup_heap
from shared.adapters.metrics import mark_process_dead
from shared.settings import Settings

log = logging.getLogger("engine.worker")
_PR_SET_PDEATHSIG = 1


def parse_functions(text: str) -> tuple[str, ...]:
    """"all" or a comma-separated subset of the chain's functions, in chain order."""
    if text.strip() in {"", "all"}:
        return tuple(PIPELINE)
    wanted = {name.strip() for name in text.split(",") if name.strip()}
    unknown = wanted - set(PIPELINE)
    if unknown:
        raise ValueError(f"unknown function(s) {', '.join(sorted(unknown))}; choose from {', '.join(PIPELINE)}")
    return tuple(name for name in PIPELINE if name in wanted)


async def serve(settings: Settings, steps: tuple[str, ...]) -> None:
    """Run the workers until SIGTERM or SIGINT, then stop them cleanly."""
    services = await bootstrap(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await services.run_workers(steps)
    services.run_driver()  # every engine process contends for the market lease, workers too
    freeze_startup_heap()
    print(f"worker ready: {', '.join(steps)}", flush=True)
    try:
        await stop.wait()
    finally:
        await services.close()


def spawn_workers(steps: tuple[str, ...], processes: int, metrics_dir: str = "") -> list[subprocess.Popen]:
    """`processes` worker processes for `steps`, each told to stop (SIGTERM) if this process dies,
    however it dies: no worker outlives the command that started it. With `metrics_dir`, they
    write their metrics there (DEX_METRICS_DIR), and each is marked dead there when it exits."""
    command = [sys.executable, "-m", "local_runtime", "worker", "--functions", ",".join(steps), "--processes", "1"]
    env = {**os.environ, "DEX_METRICS_DIR": metrics_dir} if metrics_dir else None
    children = [subprocess.Popen(command, preexec_fn=_stop_with_parent, env=env) for _ in range(processes)]
    if metrics_dir:
        for child in children:
            threading.Thread(target=_mark_dead_on_exit, args=(child, metrics_dir), daemon=True,
                             name=f"worker-{child.pid}-exit").start()
    return children


def _mark_dead_on_exit(child: subprocess.Popen, metrics_dir: str) -> None:
    """Wait for the worker to exit, however it exits (SIGKILL too), then retire its live gauges."""
    code = child.wait()
    with contextlib.suppress(OSError):
        mark_process_dead(metrics_dir, child.pid)
    if code not in (0, -signal.SIGTERM, -signal.SIGINT):
        log.warning("worker process %d exited with %d", child.pid, code)


def _stop_with_parent() -> None:
    """In the child, before it runs: SIGTERM when the parent exits (Linux prctl PR_SET_PDEATHSIG)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def exit_on_sigterm() -> None:
    """SIGTERM ends this process by SystemExit (status 143) instead of at once: uvicorn raises the
    signal again once it has shut down, and the start command's `finally` (stopping its workers) and
    exit handlers (removing its metrics directory) then run."""
    signal.signal(signal.SIGTERM, _exit)


def _exit(signum: int, _frame) -> None:
    raise SystemExit(128 + signum)


def stop_workers(children: list[subprocess.Popen]) -> None:
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()


def run_processes(steps: tuple[str, ...], processes: int) -> int:
    """`processes` copies of this command with --processes 1 (with this command's DEX_METRICS_DIR);
    stops them all on SIGTERM/SIGINT."""
    children = spawn_workers(steps, processes)

    def forward(signum, _frame) -> None:
        for child in children:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    return max(codes, default=0)
