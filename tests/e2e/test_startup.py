"""Starting without Redis or PostgreSQL: one clear line saying which and how to fix it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import DATABASE_URL, REDIS_URL
from tests.e2e.runtime import ROOT, free_port

CASES = [
    ("redis", {"REDIS_URL": f"redis://127.0.0.1:{free_port()}/0", "DATABASE_URL": DATABASE_URL}, "Redis", "REDIS_URL"),
    (
        "postgres",
        {"REDIS_URL": REDIS_URL, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/x"},
        "PostgreSQL",
        "DATABASE_URL",
    ),
]


@pytest.mark.parametrize(("service", "env", "name", "variable"), CASES, ids=[c[0] for c in CASES])
def test_unreachable_service_stops_the_runtime_with_one_clear_line(service, env, name, variable):
    result = subprocess.run(
        [sys.executable, "-m", "local_runtime", "start"],
        cwd=ROOT,
        env={**os.environ, **env, "PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {name} is unreachable")
    assert variable in lines[0]
    assert "Traceback" not in result.stderr + result.stdout
