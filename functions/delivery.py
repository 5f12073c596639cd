"""The one delivery loop, for every transport: a SAQ job or an SQS batch hands over the raw
messages of one step; each is decoded, run with its attempt number and timeout, and its result
sent to the next step's queue, on its own (a failing message never holds back the others);
the transport learns, per message, whether to deliver it again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from enum import Enum
from typing import Any

import msgspec

from functions.pipeline import PIPELINE, RetryLater, log_extra, message_key, run_attempt
from shared.context import Context

log = logging.getLogger("engine.delivery")
Send = Callable[[Any], Awaitable[None]]


class Outcome(Enum):
    DONE = "done"
    """Handled (or given up on, the order failed with the reason): nothing more to do."""
    AGAIN = "again"
    """Deliver it again (a retry with attempts left, or the result could not be sent on)."""
    UNREADABLE = "unreadable"
    """Not a message of this step: it can never run (SQS lets it reach the dead-letter queue)."""


_decoders = {name: msgspec.json.Decoder(step.message_type) for name, step in PIPELINE.items()}


async def deliver(step_name: str, bodies: Sequence[str | bytes], attempts: Sequence[int], ctx: Context,
                  send: Send) -> list[Outcome]:
    """Run `step_name` on each body (delivery number `attempts[i]`) concurrently."""
    step, decoder = PIPELINE[step_name], _decoders[step_name]
    settings = ctx.settings
    timeout = settings.step_timeout_s(step_name)

    async def one(body: str | bytes, attempt: int) -> Outcome:
        try:
            message = decoder.decode(body)
        except msgspec.DecodeError:
            log.error("%s: undecodable message: %.200s", step_name, body)
            return Outcome.UNREADABLE
        try:
            result = await run_attempt(step, message, ctx, attempt, settings.job_attempts, timeout)
        except RetryLater:
            return Outcome.AGAIN
        except Exception:  # giving up failed too (e.g. PostgreSQL down): try again later
            log.exception("%s %s could not give up; retrying", step_name, message_key(message),
                          extra=log_extra(message))
            return Outcome.AGAIN
        if result is not None:
            try:
                await send(result)
            except Exception as exc:  # the step is done; the next delivery sends it on (or the reconciler)
                log.warning("%s %s: next step not sent (%s)", step_name, message_key(message), exc,
                            extra=log_extra(message))
                return Outcome.AGAIN
        return Outcome.DONE

    return list(await asyncio.gather(*(one(body, attempt) for body, attempt in zip(bodies, attempts, strict=True))))
