"""The AWS SAM template: valid for cfn-lint, and the queue settings the design depends on."""

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
