"""The `route` artifact on its own: unpacked into an empty virtual environment (no Litestar,
uvicorn or SAQ; only what the Lambda runtime provides, boto3), it imports and handles a
recorded SQS event against real PostgreSQL and Redis, sending its result to SQS (moto)."""

from __future__ import annotations

import json
import subprocess
import uuid
import venv
import zipfile

import boto3
import msgspec
from moto.server import ThreadedMotoServer

from deploy.build import FUNCTIONS, RUNTIME_PROVIDED, build, copy_distribution
from functions import intake, quote
from shared.domain.messages import MarketOrderRequest, NewOrder
from functions.bootstrap import bootstrap
from tests.cloud_events import sqs_event, sqs_record
from tests.e2e.runtime import free_port

HANDLE = """
import importlib.util, json, sys
absent = [name for name in ("litestar", "uvicorn", "saq", "piccolo", "pytest") if importlib.util.find_spec(name)]
assert not absent, f"the artifact's environment should not have {absent}"
import cloud.steps
print(json.dumps(cloud.steps.route(json.load(sys.stdin), None)))
"""


async def test_the_route_artifact_handles_a_recorded_event_in_an_empty_environment(settings, tmp_path):
    row = build("route", FUNCTIONS["route"], tmp_path)
    assert not {"litestar", "uvicorn", "saq", "piccolo"} & set(row["distributions"])
    unpacked = tmp_path / "route"
    with zipfile.ZipFile(tmp_path / "route.zip") as archive:
        archive.extractall(unpacked)
    assert not (unpacked / "local_runtime").exists() and not (unpacked / "functions" / "execute.py").exists()
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    provided = tmp_path / "lambda-runtime"  # what the Lambda Python runtime brings: boto3 and its deps
    for name in RUNTIME_PROVIDED:
        copy_distribution(name, provided)

    world = await bootstrap(settings)
    try:
        request = MarketOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount="1.5")
        quoted = await quote.handle(await intake.handle(NewOrder(request, "c", "k"), world.ctx), world.ctx)
    finally:
        await world.close()
    event = sqs_event(sqs_record(msgspec.json.encode(quoted).decode()))

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{server._port}"
        aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "eu-west-1"}
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="eu-west-1", aws_access_key_id="test",
                           aws_secret_access_key="test")
        execute_queue = sqs.create_queue(QueueName=f"execute-{uuid.uuid4().hex[:6]}")["QueueUrl"]
        result = subprocess.run(
            [str(env_dir / "bin" / "python"), "-c", HANDLE], input=json.dumps(event), capture_output=True, text=True,
            timeout=60, env={
                **aws, "PATH": "/usr/bin:/bin", "PYTHONPATH": f"{unpacked}:{provided}",
                "DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
                "DEX_NAMESPACE": settings.namespace, "DEX_SIM_ZERO_DELAYS": "true",
                "DEX_QUEUE_BACKEND": "sqs", "DEX_SQS_ENDPOINT_URL": endpoint,
                "DEX_SQS_QUEUE_URLS": f"execute={execute_queue}",
            },
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert json.loads(result.stdout.strip().splitlines()[-1]) == {"batchItemFailures": []}
        [sent] = sqs.receive_message(QueueUrl=execute_queue, MaxNumberOfMessages=10)["Messages"]
        plan = json.loads(sent["Body"])
        assert plan["order_id"] == quoted.order_id and plan["plan"]["amountIn"] == 1_500_000_000
    finally:
        server.stop()
