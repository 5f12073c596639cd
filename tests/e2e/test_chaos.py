"""The chaos command, small: 100 orders while a worker is SIGKILLed, Redis is flushed and the
web process is killed and restarted; every acknowledged order ends once, with all its events."""

from __future__ import annotations

from loadtest.chaos_monkey import passed, run_chaos, table


async def test_one_hundred_orders_survive_a_kill_a_flush_and_a_web_restart():
    report = await run_chaos(orders=100, workers=2, rate=20, kills=1, flush=True, web_restart=True, redis_db=12,
                             drain_s=60)
    chaos = report["chaos"]
    assert (chaos.kills, chaos.flushes, chaos.web_restarts) == (1, 1, 1)
    assert report["acknowledged"] == report["stored_total"] == 100  # nothing lost, no retry made a second order
    assert report["stuck"] == [] and report["twice"] == [] and report["missing"] == [], table(report)
    assert report["statuses"]["confirmed"] == 100, table(report)
    assert passed(report)
