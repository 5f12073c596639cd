"""The Postman collection (docs/postman_collection.json, v2.1): it covers every operation of the OpenAPI
document and names nothing the engine does not serve (checked without Node.js), and newman runs it green,
top to bottom, against a fresh runtime."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_runtime.app import create_app
from shared.settings import load_settings
from tests.e2e.runtime import Runtime
from tests.node import node_package

ROOT = Path(__file__).resolve().parents[2]
COLLECTION_FILE = ROOT / "docs" / "postman_collection.json"
COLLECTION = json.loads(COLLECTION_FILE.read_text())
APP = create_app(load_settings({}))
DOCUMENT = APP.openapi_schema.to_schema()
SERVED_OUTSIDE_THE_DOCUMENT = {("GET", "/metrics"), ("GET", "/schema/openapi.json"), ("GET", "/schema/asyncapi.json")}
"""Routes the collection covers although the OpenAPI document does not list them (the scrapers' metrics and the
documents themselves)."""
SCHEMA_V2_1 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"


def requests(items: list[dict] = COLLECTION["item"], folder: str = "") -> Iterator[tuple[str, dict]]:
    """Every request of the collection, in run order, with its folder/name."""
    for item in items:
        name = f"{folder}/{item['name']}"
        if "item" in item:
            yield from requests(item["item"], name)
        else:
            yield name, item


def segments(path: str) -> tuple[str, ...]:
    return tuple(segment for segment in path.split("/") if segment)


def is_variable(segment: str) -> bool:
    return segment.startswith(":") or (segment.startswith("{{") and segment.endswith("}}"))


def matches(request_path: tuple[str, ...], route: str) -> bool:
    """A request path is an operation's path when every segment is the same, a path parameter (`{order_id}`,
    `{order_id:str}`) standing for a variable segment (`:orderId`, `{{orderId}}`) and only for one."""
    template = segments(route)
    return len(template) == len(request_path) and all(
        (t.startswith("{") and is_variable(r)) or (not t.startswith("{") and t == r)
        for t, r in zip(template, request_path, strict=True))


def requested() -> list[tuple[str, str, tuple[str, ...]]]:
    """(name, METHOD, path segments) of every request."""
    return [(name, item["request"]["method"].upper(), tuple(item["request"]["url"]["path"]))
            for name, item in requests()]


def documented() -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, operations in DOCUMENT["paths"].items() for method in operations]


def test_every_documented_operation_has_a_request_in_the_collection() -> None:
    sent = requested()
    missing = [f"{method} {path}" for method, path in documented()
               if not any(m == method and matches(p, path) for _, m, p in sent)]
    assert not missing, f"no request in {COLLECTION_FILE.name} for: {missing}"


def test_every_request_in_the_collection_is_an_operation_the_engine_serves() -> None:
    routes = {(method, route.path) for route in APP.routes for method in getattr(route, "methods", ())}
    assert SERVED_OUTSIDE_THE_DOCUMENT <= routes
    known = [*documented(), *SERVED_OUTSIDE_THE_DOCUMENT]
    strangers = [f"{name}: {method} /{'/'.join(path)}" for name, method, path in requested()
                 if not any(m == method and matches(path, route) for m, route in known)]
    assert not strangers, f"requests for operations the OpenAPI document does not have: {strangers}"


def test_the_collection_is_v2_1_with_its_variables_key_bodies_and_tests() -> None:
    assert COLLECTION["info"]["schema"] == SCHEMA_V2_1
    variables = {variable["key"]: variable["value"] for variable in COLLECTION["variable"]}
    assert variables["baseUrl"] == "http://127.0.0.1:8000" and "apiKey" in variables
    assert COLLECTION["auth"]["type"] == "apikey"
    assert {entry["key"]: entry["value"] for entry in COLLECTION["auth"]["apikey"]} == {
        "key": "X-API-Key", "value": "{{apiKey}}", "in": "header"}
    assert [folder["name"] for folder in COLLECTION["item"]] == [
        "Orders", "Quotes", "Jupiter", "Keys", "Simulation", "Markets", "Service"]
    for name, item in requests():
        request = item["request"]
        assert request["url"]["raw"].startswith("{{baseUrl}}/"), name
        if request["method"] == "POST":
            assert request["body"]["mode"] == "raw" and request["body"]["raw"].strip(), name
        tests = [event for event in item["event"] if event["listen"] == "test"]
        assert len(tests) == 1 and "pm.test(" in "\n".join(tests[0]["script"]["exec"]), name
    order_bodies = [item["request"]["body"]["raw"] for _, item in requests()
                    if item["request"]["url"]["path"] == ["api", "orders", "execute"]]
    types = {json.loads(raw).get("type") for raw in order_bodies if "{{quoteResponse}}" not in raw}
    assert {"market", "limit", "sniper"} <= types


@pytest.mark.e2e
def test_newman_runs_the_collection_green_against_a_fresh_runtime(runtime: Runtime, tmp_path: Path) -> None:
    newman = node_package("newman") / "bin" / "newman.js"
    report = tmp_path / "newman.json"
    done = subprocess.run(
        ["node", str(newman), "run", str(COLLECTION_FILE), "--env-var", f"baseUrl={runtime.base}",
         "--env-var", f"apiKey={runtime.api_key}", "--reporters", "cli,json", "--reporter-json-export", str(report),
         "--timeout-request", "10000", "--color", "off", "--disable-unicode"],
        capture_output=True, text=True, timeout=180, check=False)
    run = json.loads(report.read_text())["run"]
    stats = run["stats"]
    print(f"newman: {stats['requests']['total']} requests ({stats['requests']['failed']} failed), "
          f"{stats['assertions']['total']} assertions ({stats['assertions']['failed']} failed), "
          f"{len(run['failures'])} failures")
    failures = [(f["source"].get("name"), f["error"].get("test"), f["error"]["message"]) for f in run["failures"]]
    assert done.returncode == 0 and not failures, (failures, done.stdout[-4000:], done.stderr[-2000:])
    assert stats["requests"]["failed"] == stats["assertions"]["failed"] == 0
    ran = [execution["item"]["name"] for execution in run["executions"] if "response" in execution]
    assert ran == [item["name"] for _, item in requests()]
