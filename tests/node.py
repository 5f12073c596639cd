"""The JavaScript tools some tests drive (tests/js/package.json, installed by `python3 dev.py test`):
where they are, or a skip that says what is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

NODE_MODULES = Path(__file__).resolve().parent / "js" / "node_modules"


def node_package(name: str) -> Path:
    """The installed package's directory (e.g. "@jup-ag/api"); the test is skipped, with the reason,
    when Node.js or the package is missing."""
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed (.ci/run installs it: apt-get install nodejs npm)")
    package = NODE_MODULES / name
    if not (package / "package.json").exists():
        pytest.skip(f"{name} is not installed in tests/js/node_modules: run `python3 dev.py test` (npm ci)")
    return package
