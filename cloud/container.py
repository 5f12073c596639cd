"""What a cloud function keeps between invocations: one event loop, one Context (PostgreSQL
pool, Redis, the simulated world) and the queue port, built on the first invocation of a
container and reused by every later one (never inside `functions/`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from shared.adapters.queues import queue_port
from shared.context import Context, Queues
from shared.settings import Settings, load_settings
from shared.wiring import World, connect_world

T = TypeVar("T")
log = logging.getLogger("engine.cloud")


class Container:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.world: World = self.run(connect_world(settings, min_connections=1))
        self.queues: Queues = queue_port(settings)  # SQS in the cloud (DEX_QUEUE_BACKEND=sqs)
        self.run(self.queues.connect())

    @property
    def ctx(self) -> Context:
        return self.world.ctx

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run on the container's loop: pools made on it stay usable across invocations."""
        asyncio.set_event_loop(self.loop)
        return self.loop.run_until_complete(coroutine)

    def invoke(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run one invocation's work, then send the events it handed to the publisher: the
        platform may freeze the container as soon as the handler returns."""
        try:
            return self.run(coroutine)
        finally:
            self.run(self.ctx.publisher.flush())

    def close(self) -> None:
        self.run(self.world.close())
        self.loop.close()


_container: Container | None = None


def container() -> Container:
    """This container's singleton, built on first use from the environment."""
    global _container
    if _container is None:
        logging.basicConfig(level=logging.INFO)
        _container = Container(load_settings())
    return _container


def reset() -> None:
    """Forget the singleton (tests that change the environment between containers)."""
    global _container
    if _container is not None:
        _container.close()
    _container = None
