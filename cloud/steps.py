"""Lambda entry points of the queued steps, one per step of the pipeline table that runs behind a
queue (`cloud.steps.quote` …): an SQS batch in, each result to the next function's queue."""

from __future__ import annotations

from cloud.batch import sqs_handler
from functions.pipeline import QUEUED_STEPS

globals().update({name: sqs_handler(name) for name in QUEUED_STEPS})
__all__ = list(QUEUED_STEPS)
