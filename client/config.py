"""Where the client talks to and as whom: the server's URL and the API key, each from a flag, the
environment or the development key file the local runtime leaves; and a key's id."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"
URL_ENV = "DEX_URL"
KEY_ENV = "DEX_API_KEY"
DEV_KEY_FILE = ".dev-api-key"
ENGINE_ROOT = Path(__file__).resolve().parent.parent
"""The engine's checkout when the client is installed from it (pip install -e .): where
`python3 dev.py start` leaves the development key."""
_KEY_ID = re.compile(r"[0-9a-fA-F]{64}")


class NoKey(Exception):
    """No key given and no development key file found."""


def server_url(flag: str | None, environ: Mapping[str, str]) -> str:
    """--url, else $DEX_URL, else the local runtime's address; without a trailing slash."""
    return (flag or environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")


def socket_url(base_url: str) -> str:
    """The WebSocket base for an HTTP base URL (http → ws, https → wss)."""
    scheme, rest = base_url.split("://", 1)
    return ("wss" if scheme == "https" else "ws") + "://" + rest


def api_key(flag: str | None, environ: Mapping[str, str], cwd: Path, engine_root: Path) -> tuple[str, str]:
    """The key and where it came from: --api-key, else $DEX_API_KEY, else `.dev-api-key` in the
    current directory, else in the engine's checkout. NoKey if none of them has one."""
    if flag:
        return flag, "--api-key"
    if environ.get(KEY_ENV):
        return environ[KEY_ENV], KEY_ENV
    for folder in dict.fromkeys((cwd, engine_root)):
        path = folder / DEV_KEY_FILE
        try:
            key = path.read_text().strip()
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        if key:
            return key, str(path)
    raise NoKey(f"no API key: pass --api-key, set {KEY_ENV}, or start the local runtime (it writes {DEV_KEY_FILE})")


def key_id(key_or_id: str) -> str:
    """A key's id as the server knows it (its SHA-256 in hex): given an id, the id itself; given a
    key, its hash, computed here, so the key never travels in a URL."""
    text = key_or_id.strip()
    if _KEY_ID.fullmatch(text):
        return text.lower()
    return hashlib.sha256(text.encode()).hexdigest()
