"""Shared fixtures of the end-to-end tests: the local runtime as a user starts it, per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.runtime import Runtime, private_runtime


@pytest.fixture(scope="module")
def runtime() -> Iterator[Runtime]:
    """The local runtime as a user starts it, on its own port, database (which it creates and
    migrates itself) and Redis namespace, with every simulated delay at zero."""
    with private_runtime(
        DEX_SIM_ZERO_DELAYS="true",
        DEX_WORKER_CONCURRENCY="50",
        DEX_SIM_DRIFT_INTERVAL_MS="0",  # prices move only when a test moves them
        DEX_EXPIRY_POLL_MS="100",
        DEX_ORDERS_PER_MINUTE="100000",  # the development client is not what these tests limit
        DEX_MAX_IN_FLIGHT="10000",
    ) as server:
        yield server
