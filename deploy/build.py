"""Build one deployable zip per cloud function, holding only what that function imports.

    python3 dev.py build            # → dist/lambda/{trigger,quote,route,execute,http,reconcile,ws}.zip

For each function the entry module (cloud.steps, plus functions.<name> for a queued step: the
pipeline table imports each function lazily; cloud.http_handler, cloud.reconcile_handler,
cloud.ws_handler), with the adapters the composition root imports only when the settings name them
(SQS, the WebSocket fan-out), is imported in a fresh interpreter; the
project modules it loads are copied as source, and the third-party
distributions they come from are copied file by file from this virtual environment (the
same versions the tests ran), then everything is compiled to bytecode. boto3/botocore are left out: the Lambda Python runtime has
them. Prints a table: files, zip size, unpacked size and cold import time per function.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.metadata as metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from functions.pipeline import QUEUED_STEPS

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("cloud", "functions", "shared")
RUNTIME_PROVIDED = {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six"}
"""Distributions the Lambda Python runtime already has."""
OPTIONAL_UNUSED = {"cryptography", "dex-order-engine"}
"""Imported if present but not needed: redis-py probes for cryptography (TLS OCSP checks, not
used here); the project's own distribution is copied as source instead."""
CLOUD_ADAPTERS = ("shared.adapters.queues.sqs", "shared.adapters.aws.socket_fanout")
"""Imported by the composition root only when the settings name them (DEX_QUEUE_BACKEND=sqs,
DEX_WS_MANAGEMENT_URL), as they do in every cloud function: an import trace would miss them."""
FUNCTIONS = {
    **{step: ("cloud.steps", f"functions.{step}", *CLOUD_ADAPTERS) for step in QUEUED_STEPS},
    "http": ("cloud.http_handler", "functions.intake", "functions.trigger", *CLOUD_ADAPTERS),
    "reconcile": ("cloud.reconcile_handler", "functions.reconcile", *CLOUD_ADAPTERS),
    "ws": ("cloud.ws_handler", "functions.intake", "functions.trigger", *CLOUD_ADAPTERS),
}
"""The entry modules of each function's artifact (a queued step also imports its function, which
the pipeline table loads lazily): one per step of the table, plus the HTTP, scheduled and WebSocket
ones."""


def traced_modules(entries: tuple[str, ...]) -> dict[str, str | None]:
    """Every module importing the entries loads, transitively: name → file (None for built-ins).
    Found by importing them in a fresh interpreter: what runs is what counts, optional
    imports included (a static trace misses those and trips on namespace packages)."""
    code = (
        "import json, sys\nbefore = set(sys.modules)\n"  # what the interpreter itself loaded (site hooks)
        + "".join(f"import {entry}\n" for entry in entries)
        + "print(json.dumps({n: getattr(m, '__file__', None) for n, m in list(sys.modules.items())"
        + " if n not in before}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def plan(entries: tuple[str, ...]) -> tuple[list[Path], set[str]]:
    """(project source files, third-party distribution names) the entries need."""
    modules = traced_modules(entries)
    by_top_level = metadata.packages_distributions()
    sources, distributions = set(), set()
    for name, file in modules.items():
        top = name.split(".")[0]
        if top in PROJECT_PACKAGES and file:
            sources.add(Path(file).resolve())
        elif top in by_top_level:
            distributions.update(by_top_level[top])
    for package in {Path(f).parent for f in sources}:  # keep every package importable
        while package != ROOT:
            init = package / "__init__.py"
            if init.exists():
                sources.add(init)
            package = package.parent
    return sorted(sources), distributions - RUNTIME_PROVIDED - OPTIONAL_UNUSED


def copy_distribution(name: str, target: Path) -> None:
    dist = metadata.distribution(name)
    for file in dist.files or []:
        if file.parts[0].endswith((".dist-info", "__pycache__")) or "__pycache__" in file.parts:
            continue
        source = Path(dist.locate_file(file))
        if source.is_file() and not str(file).startswith(".."):
            destination = target / file
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)


def build(name: str, entries: tuple[str, ...], out: Path) -> dict[str, object]:
    sources, distributions = plan(entries)
    staging = Path(tempfile.mkdtemp(prefix=f"lambda-{name}-"))
    try:
        for source in sources:
            destination = staging / source.relative_to(ROOT)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
        for distribution in sorted(distributions):
            copy_distribution(distribution, staging)
        # Lambda's file system is read-only: ship the bytecode, or every cold start compiles it.
        compileall.compile_dir(staging, quiet=2, workers=0)
        archive = out / f"{name}.zip"
        files = sorted(p for p in staging.rglob("*") if p.is_file())
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipped:
            for path in files:
                zipped.write(path, path.relative_to(staging))
        unpacked = sum(p.stat().st_size for p in files)
        import_ms = cold_import_ms(staging, entries[0])
    finally:
        shutil.rmtree(staging)
    return {"function": name, "files": len(files), "zip": archive.stat().st_size, "unpacked": unpacked,
            "import_ms": import_ms, "distributions": sorted(distributions)}


def cold_import_ms(directory: Path, module: str) -> float:
    """Importing the entry module in a fresh interpreter that sees only the artifact (and the
    standard library): what a cold start pays before the first invocation."""
    code = f"import time; t = time.perf_counter(); import {module}; print((time.perf_counter() - t) * 1000)"
    env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(directory), "PYTHONNOUSERSITE": "1"}
    result = subprocess.run([sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, check=True)
    return float(result.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("functions", nargs="*", default=list(FUNCTIONS), help="which (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "lambda")
    args = parser.parse_args(argv)
    unknown = set(args.functions) - set(FUNCTIONS)
    if unknown:
        parser.error(f"unknown function(s): {', '.join(sorted(unknown))}")
    args.out.mkdir(parents=True, exist_ok=True)
    print("| function | files | zip | unpacked | cold import | third-party distributions |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    for name in args.functions:
        row = build(name, FUNCTIONS[name], args.out)
        print(f"| {name} | {row['files']} | {row['zip'] / 2**20:.1f} MiB | {row['unpacked'] / 2**20:.1f} MiB"
              f" | {row['import_ms']:.0f} ms | {', '.join(row['distributions'])} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
