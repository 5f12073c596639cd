"""The AWS SAM template: valid for cfn-lint, the queue settings the design depends on, and the order
socket's WebSocket API (routes, integration, permission, stage, who may post to its connections)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from functions.pipeline import QUEUED_STEPS
from cfnlint.decode import decode

from deploy.build import FUNCTIONS

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "template.yaml"
QUEUED = QUEUED_STEPS


@pytest.fixture(scope="module")
def resources() -> dict:
    template, problems = decode(str(TEMPLATE))
    assert not problems
    return template["Resources"]


def test_cfn_lint_finds_nothing():
    cfn_lint = Path(sys.executable).with_name("cfn-lint")  # the console script beside this interpreter
    result = subprocess.run([str(cfn_lint), str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("step", QUEUED)
def test_each_queued_function_has_its_queue_dead_letter_queue_and_partial_batch_failures(resources, step):
    name = step.capitalize()
    function = resources[f"{name}Function"]["Properties"]
    queue = resources[f"{name}Queue"]["Properties"]
    event = function["Events"]["Queue"]["Properties"]
    assert function["Handler"] == f"cloud.steps.{step}"
    assert function["CodeUri"] == f"../dist/lambda/{step}.zip"
    assert event["Queue"] == {"Fn::GetAtt": [f"{name}Queue", "Arn"]}
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 1 <= event["BatchSize"] <= 10 and event["MaximumBatchingWindowInSeconds"] >= 0
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [f"{name}DeadLetterQueue", "Arn"]}
    assert resources[f"{name}DeadLetterQueue"]["Type"] == "AWS::SQS::Queue"
    # The function gives up (order failed) on its last delivery; the timeout leaves room for the step's own.
    step_timeout = int(function["Environment"]["Variables"][f"DEX_{step.upper()}_JOB_TIMEOUT_S"])
    assert function["Timeout"] > step_timeout


def test_every_built_function_is_declared(resources):
    handlers = {r["Properties"]["Handler"] for r in resources.values() if r["Type"] == "AWS::Serverless::Function"}
    assert handlers == {f"cloud.steps.{name}" if entries[0] == "cloud.steps" else f"{entries[0]}.handler"
                        for name, entries in FUNCTIONS.items()}


def _named(resources: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in resources.items() if r["Type"] == kind}


def test_the_order_socket_is_a_websocket_api_routed_by_action(resources):
    api = resources["OrderSocketApi"]["Properties"]
    assert api["ProtocolType"] == "WEBSOCKET" and api["RouteSelectionExpression"] == "$request.body.action"
    routes = {r["Properties"]["RouteKey"]: r["Properties"]
              for r in _named(resources, "AWS::ApiGatewayV2::Route").values()}
    assert set(routes) == {"$connect", "$disconnect", "subscribe", "cancel", "$default"}
    assert routes["$default"]["OperationName"] == "order"


def test_every_socket_route_invokes_the_websocket_function_which_api_gateway_may_call(resources):
    integrations = _named(resources, "AWS::ApiGatewayV2::Integration")
    for route in _named(resources, "AWS::ApiGatewayV2::Route").values():
        target = route["Properties"]["Target"]["Fn::Sub"]
        integration = integrations[target.removeprefix("integrations/${").removesuffix("}")]["Properties"]
        assert route["Properties"]["ApiId"] == integration["ApiId"] == {"Ref": "OrderSocketApi"}
        assert integration["IntegrationType"] == "AWS_PROXY"
        assert "/functions/${SocketFunction.Arn}/invocations" in integration["IntegrationUri"]["Fn::Sub"]
    assert resources["SocketFunction"]["Properties"]["Handler"] == "cloud.ws_handler.handler"
    [permission] = _named(resources, "AWS::Lambda::Permission").values()
    assert permission["Properties"]["FunctionName"] == {"Ref": "SocketFunction"}
    assert permission["Properties"]["Principal"] == "apigateway.amazonaws.com"
    assert permission["Properties"]["SourceArn"]["Fn::Sub"].endswith(":${OrderSocketApi}/*")


def test_the_socket_stage_deploys_every_route(resources):
    stage = resources["SocketStage"]["Properties"]
    assert stage["ApiId"] == {"Ref": "OrderSocketApi"} and stage["DeploymentId"] == {"Ref": "SocketDeployment"}
    assert set(resources["SocketDeployment"]["DependsOn"]) == set(_named(resources, "AWS::ApiGatewayV2::Route"))


def test_every_function_may_post_to_the_connections_of_the_stage_it_is_told_of(resources):
    """Whichever function records an event posts it (the publisher's fan-out): each knows the stage's
    management URL and holds the policy allowing execute-api:ManageConnections on its connections."""
    template, _ = decode(str(TEMPLATE))
    url = template["Globals"]["Function"]["Environment"]["Variables"]["DEX_WS_MANAGEMENT_URL"]["Fn::Sub"]
    assert url.startswith("https://${OrderSocketApi}.execute-api.") and url.endswith("/${SocketStageName}")
    statement = resources["PostToConnectionsPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert [s["Action"] for s in statement] == ["execute-api:ManageConnections"]
    assert statement[0]["Resource"]["Fn::Sub"].endswith(":${OrderSocketApi}/${SocketStageName}/*/@connections/*")
    for function in _named(resources, "AWS::Serverless::Function").values():
        assert {"Ref": "PostToConnectionsPolicy"} in function["Properties"]["Policies"]
