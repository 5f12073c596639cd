"""Log lines (local_runtime/logs.py): a record as one JSON object, with its order id and fields as keys
and its traceback as a string; stdout and stderr as JSON lines; text stays as it was."""

from __future__ import annotations

import io
import json
import logging
import sys
from decimal import Decimal

from functions.route import RoutingDecision
from local_runtime.logs import (
    LITESTAR_TEXT_FORMAT,
    JsonFormatter,
    JsonLines,
    litestar_formatters,
    uvicorn_log_config,
)


def record(msg, *args, level=logging.INFO, exc_info=None, **extra) -> logging.LogRecord:
    made = logging.LogRecord("engine.test", level, __file__, 1, msg, args, exc_info)
    made.__dict__.update(extra)
    return made


def line(rec: logging.LogRecord) -> dict:
    text = JsonFormatter().format(rec)
    assert "\n" not in text
    return json.loads(text)


def test_a_record_is_one_object_with_time_logger_level_and_message():
    rec = record("hello %s", "world", level=logging.WARNING)
    rec.created = 1_800_000_000.1234
    assert line(rec) == {"ts": "2027-01-15T08:00:00.123Z", "level": "WARNING", "logger": "engine.test",
                         "message": "hello world"}


def test_the_order_id_passed_as_extra_is_the_orderId_key():
    assert line(record("order %s retried", "o-1", order_id="o-1"))["orderId"] == "o-1"
    assert "orderId" not in line(record("nothing about an order"))


def test_the_routing_decision_is_one_object_whose_fields_are_keys_of_the_line():
    decision = RoutingDecision(orderId="o-7", venue="split", expectedAmountOut=2**64 - 1, reason="split 60% / 40%",
                               effectivePrices={"raydium": "151.2", "meteora": "150.9"}, advantageBps=12,
                               legs=[{"venue": "raydium", "sharePct": "60"}, {"venue": "meteora", "sharePct": "40"}])
    got = line(record(decision, order_id="o-7"))
    assert got["message"] == "routed"
    assert got["orderId"] == "o-7" and got["venue"] == "split" and got["advantageBps"] == 12
    assert got["expectedAmountOut"] == 2**64 - 1  # u64 amounts stay exact integers
    assert got["legs"][1] == {"venue": "meteora", "sharePct": "40"}
    assert got["effectivePrices"] == {"raydium": "151.2", "meteora": "150.9"}


def test_the_routing_decision_in_text_is_the_one_readable_line_it_always_was():
    decision = RoutingDecision(orderId="o-7", venue="raydium", advantageBps=3)
    rec = record(decision)
    assert rec.getMessage() == 'routed {"orderId":"o-7","venue":"raydium","advantageBps":3}'
    text = logging.Formatter(LITESTAR_TEXT_FORMAT).format(rec)
    assert text.endswith(' - routed {"orderId":"o-7","venue":"raydium","advantageBps":3}') and "\n" not in text


def test_fields_given_as_extra_become_keys_but_never_replace_the_line_own_keys():
    got = line(record("launched", fields={"venue": "meteora", "level": "nope", "message": "nope", "amount": Decimal("1.5"),
                                          "when": object}))
    assert got["level"] == "INFO" and got["message"] == "launched" and got["venue"] == "meteora"
    assert got["amount"] == "1.5"
    assert got["when"] == str(object)  # anything JSON cannot hold is written as text, the line is kept


def test_an_exception_keeps_its_traceback_as_one_string_field():
    try:
        raise ValueError("boom")
    except ValueError:
        got = line(record("step failed", level=logging.ERROR, exc_info=sys.exc_info()))
    assert got["message"] == "step failed"
    assert got["exception"].startswith("Traceback (most recent call last):")
    assert got["exception"].rstrip().endswith("ValueError: boom")
    assert "test_an_exception_keeps_its_traceback" in got["exception"]


def test_printed_lines_become_json_objects_and_json_lines_pass_as_they_are():
    target = io.StringIO()
    stream = JsonLines(target, "stdout", "INFO")
    print("engine listening on http://127.0.0.1:8000", file=stream)
    stream.write("worker ready: ")
    stream.write("quote, route\n\n")
    ours = JsonFormatter().format(record("as it is", order_id="o-1"))
    print(ours, file=stream)
    stream.write("no newline yet")
    lines = [json.loads(text) for text in target.getvalue().splitlines()]
    assert [(x["logger"], x["level"], x["message"]) for x in lines[:2]] == [
        ("stdout", "INFO", "engine listening on http://127.0.0.1:8000"), ("stdout", "INFO", "worker ready: quote, route")]
    assert target.getvalue().splitlines()[2] == ours
    assert len(lines) == 3  # a blank line is dropped; a partial one waits for its end
    stream.close()
    assert json.loads(target.getvalue().splitlines()[-1])["message"] == "no newline yet"


def test_web_process_formatters_and_uvicorn_config_by_format():
    assert litestar_formatters("text") == {"standard": {"format": LITESTAR_TEXT_FORMAT}}
    assert litestar_formatters("json") == {"standard": {"()": JsonFormatter}}
    assert uvicorn_log_config("json") is None  # uvicorn's records go to the root logger's JSON handler
    assert uvicorn_log_config("text")["loggers"]["uvicorn"]["handlers"] == ["default"]  # uvicorn's own, as before


def test_retries_and_give_ups_name_the_order_of_their_message():
    from types import SimpleNamespace

    from functions.pipeline import log_extra

    assert log_extra(SimpleNamespace(order_id="o-9")) == {"order_id": "o-9"}
    assert log_extra(SimpleNamespace(client_id="dev", submission_key="k")) == {}  # a new order has no id yet
    assert line(record("route o-9 attempt 1 failed", **log_extra(SimpleNamespace(order_id="o-9"))))["orderId"] == "o-9"
