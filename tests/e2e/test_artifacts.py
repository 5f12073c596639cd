"""Artifacts on their own: each unpacked into an empty virtual environment (no Litestar, uvicorn or
SAQ; only what the Lambda runtime provides, boto3) imports and handles recorded events against real
PostgreSQL and Redis, with SQS and the WebSocket stage's management API played by moto. `route`
takes an SQS batch and sends its result on; `ws` takes a WebSocket session ($connect, a bad message,
an order, $disconnect) and posts its answers to the connection."""

from __future__ import annotations

import json
import subprocess
import uuid
import venv
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import msgspec
import pytest
from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends
from moto.core import DEFAULT_ACCOUNT_ID
from moto.server import ThreadedMotoServer

from deploy.build import FUNCTIONS, RUNTIME_PROVIDED, build, copy_distribution
from functions import intake, quote
from functions.bootstrap import bootstrap
from shared.adapters.postgres.api_keys import PgApiKeys
from shared.domain.messages import MarketOrderRequest, NewOrder
from shared.settings import Settings
from tests.cloud_events import sqs_event, sqs_record, ws_event
from tests.e2e.runtime import free_port

REGION = "eu-west-1"
AWS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}
HANDLE = """
import importlib.util, json, sys
absent = [name for name in ("litestar", "uvicorn", "saq", "piccolo", "pytest") if importlib.util.find_spec(name)]
assert not absent, f"the artifact's environment should not have {{absent}}"
import {module}
print(json.dumps([{module}.{handler}(event, None) for event in json.load(sys.stdin)]))
"""
"""Import the entry module, then hand it each event of the list on stdin: their answers on stdout."""


@pytest.fixture(scope="module")
def lambda_runtime(tmp_path_factory) -> tuple[Path, Path]:
    """(an empty virtual environment's python, what the Lambda Python runtime brings: boto3 and its deps)."""
    root = tmp_path_factory.mktemp("lambda")
    venv.create(root / "venv", with_pip=False)
    for name in RUNTIME_PROVIDED:
        copy_distribution(name, root / "provided")
    return root / "venv" / "bin" / "python", root / "provided"


@pytest.fixture
def aws() -> Iterator[str]:
    """moto in server mode (SQS and the management API): its endpoint."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{server._port}"
    finally:
        server.stop()


def unpacked_artifact(name: str, tmp_path: Path) -> Path:
    row = build(name, FUNCTIONS[name], tmp_path)
    assert not {"litestar", "uvicorn", "saq", "piccolo"} & set(row["distributions"])
    unpacked = tmp_path / name
    with zipfile.ZipFile(tmp_path / f"{name}.zip") as archive:
        archive.extractall(unpacked)
    assert not (unpacked / "local_runtime").exists()
    return unpacked


def run_artifact(unpacked: Path, runtime: tuple[Path, Path], entry: str, events: list[dict], settings: Settings,
                 **env: str) -> list[dict]:
    """The artifact's `entry` (module.function) on each event, in one fresh interpreter (one container)."""
    python, provided = runtime
    module, handler = entry.rsplit(".", 1)
    result = subprocess.run(
        [str(python), "-c", HANDLE.format(module=module, handler=handler)], input=json.dumps(events),
        capture_output=True, text=True, timeout=60, check=False, env={
            **AWS, "PATH": "/usr/bin:/bin", "PYTHONPATH": f"{unpacked}:{provided}",
            "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
            "DEX_NAMESPACE": settings.namespace, "DEX_SIM_ZERO_DELAYS": "true", "DEX_QUEUE_BACKEND": "sqs", **env,
        },
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def sqs_client(endpoint: str):
    return boto3.client("sqs", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test",
                        aws_secret_access_key="test")


async def test_the_route_artifact_handles_a_recorded_event_in_an_empty_environment(settings, tmp_path,
                                                                                   lambda_runtime, aws):
    unpacked = unpacked_artifact("route", tmp_path)
    assert not (unpacked / "functions" / "execute.py").exists()
    world = await bootstrap(settings)
    try:
        request = MarketOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount="1.5")
        quoted = await quote.handle(await intake.handle(NewOrder(request, "c", "k"), world.ctx), world.ctx)
    finally:
        await world.close()
    event = sqs_event(sqs_record(msgspec.json.encode(quoted).decode()))
    sqs = sqs_client(aws)
    execute_queue = sqs.create_queue(QueueName=f"execute-{uuid.uuid4().hex[:6]}")["QueueUrl"]

    answers = run_artifact(unpacked, lambda_runtime, "cloud.steps.route", [event], settings,
                           DEX_SQS_ENDPOINT_URL=aws, DEX_SQS_QUEUE_URLS=f"execute={execute_queue}")

    assert answers == [{"batchItemFailures": []}]
    [sent] = sqs.receive_message(QueueUrl=execute_queue, MaxNumberOfMessages=10)["Messages"]
    plan = json.loads(sent["Body"])
    assert plan["order_id"] == quoted.order_id and plan["plan"]["amountIn"] == 1_500_000_000


async def test_the_ws_artifact_serves_a_socket_session_in_an_empty_environment(settings, tmp_path,
                                                                               lambda_runtime, aws):
    unpacked = unpacked_artifact("ws", tmp_path)
    assert not {"execute.py", "quote.py", "route.py"} & {p.name for p in (unpacked / "functions").iterdir()}
    assert not (unpacked / "cloud" / "http_handler.py").exists()
    world = await bootstrap(settings)
    try:
        key = await PgApiKeys(world.pool).create("alice", datetime.now(UTC))
    finally:
        await world.close()
    sqs = sqs_client(aws)
    queues = {step: sqs.create_queue(QueueName=f"{step}-{uuid.uuid4().hex[:6]}")["QueueUrl"]
              for step in ("quote", "trigger")}
    connection = f"conn{uuid.uuid4().hex[:10]}"
    order = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1.5"}
    session = [ws_event("CONNECT", connection, query={"apiKey": key}), ws_event("MESSAGE", connection, "{not json"),
               ws_event("MESSAGE", connection, json.dumps(order)), ws_event("DISCONNECT", connection)]

    answers = run_artifact(unpacked, lambda_runtime, "cloud.ws_handler.handler", session, settings,
                           DEX_SQS_ENDPOINT_URL=aws, DEX_WS_MANAGEMENT_URL=aws,
                           DEX_SQS_QUEUE_URLS=",".join(f"{step}={url}" for step, url in queues.items()))

    assert answers == [{"statusCode": 200}] * 4
    posted = apigatewaymanagementapi_backends[DEFAULT_ACCOUNT_ID][REGION].connections[connection].data.decode()
    decoder = json.JSONDecoder()
    error, at = decoder.raw_decode(posted)
    pending, at = decoder.raw_decode(posted, at)
    assert at == len(posted)
    assert error["type"] == "error" and error["status"] == 400 and error["error"].startswith("body is not valid JSON")
    assert pending["seq"] == 1 and pending["status"] == "pending" and pending["data"]["amountIn"] == 1_500_000_000
    [sent] = sqs.receive_message(QueueUrl=queues["quote"], MaxNumberOfMessages=10)["Messages"]
    assert json.loads(sent["Body"])["order_id"] == pending["orderId"]
