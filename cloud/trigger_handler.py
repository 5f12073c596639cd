"""Lambda entry point of `trigger`: an SQS batch in, the results to the next function's queue."""

from cloud.batch import sqs_handler

handler = sqs_handler("trigger")
