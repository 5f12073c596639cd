"""The chaos command, small: 100 orders through a web process and one worker while the worker
is SIGKILLed mid-load, Redis is flushed while it restarts (the jobs it held and the ones queued
meanwhile are gone) and the web process is SIGKILLed and restarted; every acknowledged order
ends exactly once, with all its events, and followed live streams are gapless."""

from __future__ import annotations

import pytest

from loadtest.chaos import ChaosConfig, run_chaos

pytestmark = pytest.mark.e2e


async def test_one_hundred_orders_survive_a_kill_a_flush_and_a_web_restart():
    report = await run_chaos(ChaosConfig(
        orders=100, workers=1, rate=20, redis_db=12, drain_s=40, streams=10, seed=12, quiet=True,
        # One worker, so the kill certainly hits the jobs in progress; the flush 0.1 s later,
        # while it restarts, loses what was queued for it as well.
        schedule=[(0.3, "kill"), (0.32, "flush"), (0.6, "web")],
    ))
    summary = "\n".join([*report.timeline, report.table(), report.details()])
    assert (report.kills, report.flushes, report.web_restarts) == (1, 1, 1), summary
    assert len(report.acknowledged) == report.stored_total == 100, summary  # no retry made a second order
    assert report.not_stored == [], summary
    assert report.stuck == [], summary
    assert report.twice == [], summary
    assert report.missing == [], summary
    assert report.stream_problems == {} and len(report.streams) == 10, summary
    assert report.stalls, summary  # the kill and the flush really left orders for the recovery to finish
    assert report.statuses["confirmed"] == 100, summary
    assert report.passed(), summary
