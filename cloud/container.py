"""What a cloud function keeps between invocations: one event loop and the services the
composition root builds (PostgreSQL pool, Redis, the shared simulated world, the SQS queue
port), made on the first invocation of a container and reused by every later one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from functions.bootstrap import Services, bootstrap
from shared.context import Context
from shared.ports import Queues
from shared.settings import Settings, load_settings

T = TypeVar("T")
log = logging.getLogger("engine.cloud")


class Container:
    def __init__(self, settings: Settings, **overrides: Any) -> None:
        """`overrides`: parts for the composition root (tests hand fakes in here)."""
        # A function cannot hold the subscription that announces revoked keys: no key cache.
        self.settings = settings.with_changes(key_cache_ttl_s=0)
        self.loop = asyncio.new_event_loop()
        self.services: Services = self.run(bootstrap(self.settings, min_connections=1, **overrides))

    @property
    def ctx(self) -> Context:
        return self.services.ctx

    @property
    def queues(self) -> Queues:
        return self.services.queues

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
        self.run(self.services.close())
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
