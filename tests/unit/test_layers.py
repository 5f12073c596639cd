"""The direction of imports, enforced (import-linter's contracts in pyproject.toml): entry points
→ functions → shared; inside shared, adapters → context → ports → the pure domain; the domain
imports no I/O library; the service layer none either, but its composition root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_import_contract_is_kept():
    lint_imports = Path(sys.executable).with_name("lint-imports")  # import-linter's command, in this venv
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "6 kept, 0 broken" in result.stdout
