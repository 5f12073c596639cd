"""Shared fixtures of the end-to-end tests: the local runtime as a user starts it, per test module."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import REDIS_URL, _admin, database_url, run_sync
from tests.e2e.runtime import Runtime


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    """The local runtime as a user starts it, on its own port, database (which it creates and
    migrates itself) and Redis namespace, with every simulated delay at zero."""
    name = f"dex_e2e_{uuid.uuid4().hex[:10]}"
    server = Runtime(
        {
            "REDIS_URL": REDIS_URL,
            "DATABASE_URL": database_url(name),
            "DEX_NAMESPACE": f"e2e{uuid.uuid4().hex[:8]}",
            "DEX_SIM_ZERO_DELAYS": "true",
            "DEX_WORKER_CONCURRENCY": "50",
            "DEX_SIM_DRIFT_INTERVAL_MS": "0",  # prices move only when a test moves them
            "DEX_EXPIRY_POLL_MS": "100",
            "DEX_ORDERS_PER_MINUTE": "100000",  # the development client is not what these tests limit
            "DEX_MAX_IN_FLIGHT": "10000",
        }
    ).start()
    yield server
    server.stop()
    server.forget_namespace()
    run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
