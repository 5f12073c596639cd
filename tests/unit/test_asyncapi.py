"""The AsyncAPI document of the WebSockets (local_runtime/asyncapi.py): valid against the official
AsyncAPI 3.0.0 JSON Schema, every reference resolving, and its payload schemas taking exactly what
the engine decodes and sends (the orders the decoder accepts, the events the functions record).

The official schema is `@asyncapi/specs` 6.11.1 (tests/js/package.json): schemas/3.0.0.json, a
draft-07 JSON Schema, checked here with `jsonschema`'s Draft7Validator."""

from __future__ import annotations

import copy
import json
from typing import Any

import msgspec
import pytest
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from functions import execute, intake, quote, route, trigger
from functions.desk import decode_order
from functions.pipeline import give_up
from local_runtime.asyncapi import ASYNCAPI_VERSION, EXAMPLE_ORDER_ID, asyncapi_document, event_data
from local_runtime.ws_api import cannot_open_stream, outage_notice
from shared.domain.errors import InputError
from shared.domain.messages import ExecuteRequest, LimitOrderRequest, MarketOrderRequest, NewOrder, SniperOrderRequest
from shared.domain.states import Status
from shared.settings import Settings
from tests.fakes import fake_context
from tests.node import node_package

SPECS_VERSION = "6.11.1"
"""The `@asyncapi/specs` release pinned in tests/js/package.json."""
DOCUMENT_URI = "urn:dex:asyncapi"
NEW_MINT = "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin"


def official_schema() -> dict[str, Any]:
    package = node_package("@asyncapi/specs")
    assert json.loads((package / "package.json").read_text())["version"] == SPECS_VERSION
    schema = json.loads((package / "schemas" / f"{ASYNCAPI_VERSION}.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema"
    return schema


def spec_errors(document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
            for error in Draft7Validator(official_schema()).iter_errors(document)]


def payload_validator(document: dict[str, Any], message: str) -> Draft7Validator:
    """A validator of `message`'s payload, its references resolved in `document` (formats checked:
    date-time, uuid)."""
    registry = Registry().with_resource(DOCUMENT_URI, Resource.from_contents(document, DRAFT7))
    return Draft7Validator({"$ref": f"{DOCUMENT_URI}#/components/messages/{message}/payload"}, registry=registry,
                           format_checker=Draft7Validator.FORMAT_CHECKER)


def fitting(document: dict[str, Any], operation: str, received: dict[str, Any]) -> list[str]:
    """The messages of `operation` whose payload `received` fits (a well-formed message fits one)."""
    names = [ref["$ref"].rsplit("/", 1)[-1] for ref in document["operations"][operation]["messages"]]
    return [name for name in names if payload_validator(document, name).is_valid(received)]


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document(Settings())


# --- the document itself -------------------------------------------------------------------------

def test_the_document_is_valid_against_the_official_asyncapi_3_0_0_schema(document):
    assert document["asyncapi"] == "3.0.0"
    assert spec_errors(document) == []


@pytest.mark.parametrize(("mistake", "where"), [
    (lambda d: d["components"]["schemas"]["OrderEvent"].update(discriminator={"propertyName": "status"}),
     "components/schemas/OrderEvent"),  # OpenAPI's discriminator, as msgspec writes it
    (lambda d: d["operations"]["placeOrder"].update(action="publish"), "operations/placeOrder"),  # AsyncAPI 2's word
    (lambda d: d["channels"]["stream"]["bindings"]["ws"].update(method="PUT"), "channels/stream"),
    (lambda d: d["components"]["securitySchemes"]["apiKeyQuery"].update(**{"in": "body"}), "components/securitySchemes"),
    (lambda d: d["info"].pop("version"), "info"),
])
def test_a_document_with_a_mistake_is_refused_by_the_official_schema(document, mistake, where):
    broken = copy.deepcopy(document)
    mistake(broken)
    assert any(error.startswith(where) for error in spec_errors(broken))


def references(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [*([node["$ref"]] if isinstance(node.get("$ref"), str) else []),
                *(ref for value in node.values() for ref in references(value))]
    if isinstance(node, list):
        return [ref for value in node for ref in references(value)]
    return []


def test_every_reference_resolves_and_each_operation_uses_its_own_channels_messages(document):
    for ref in references(document):
        assert ref.startswith("#/"), ref
        target = document
        for part in ref[2:].split("/"):
            target = target[part]  # a KeyError names a dangling reference
    for name, operation in document["operations"].items():
        channel = operation["channel"]["$ref"]
        assert all(message["$ref"].startswith(f"{channel}/messages/") for message in operation["messages"]), name


def test_every_status_has_its_data_schema_and_every_close_code_is_listed_in_words(document):
    assert set(event_data(document["components"]["schemas"])) == set(Status)
    codes = {"1000", "1007", "1008", "1009", "1011", "1012", "4500"}
    assert set(document["channels"]["execute"]["x-close-codes"]) == set(document["channels"]["stream"]["x-close-codes"]) \
        == codes
    for channel in document["channels"].values():
        assert all(f"`{code}`" in channel["description"] for code in channel["x-close-codes"])


def test_the_limits_in_the_document_are_the_runtimes_settings():
    settings = Settings(ws_max_message_bytes=1000, ws_idle_timeout_s=7, ws_max_sockets_per_client=3)
    document = asyncapi_document(settings)
    assert "1000 bytes a message" in document["info"]["description"]
    assert "no message for 7 s" in document["channels"]["execute"]["x-close-codes"]["1000"]
    assert "more than 3 open sockets" in document["channels"]["execute"]["x-close-codes"]["1008"]


def test_every_example_fits_its_message(document):
    for name, message in document["components"]["messages"].items():
        assert message["examples"], name
        for example in message["examples"]:
            assert payload_validator(document, name).is_valid(example["payload"]), (name, example)


# --- what comes in: the `order` message is the decoder's schema ------------------------------------

MARKET = {"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "1.5"}
LIMIT = {**MARKET, "type": "limit", "limitPrice": "180.5", "expiresAt": "2026-12-01T00:00:00Z"}
SNIPER = {"type": "sniper", "side": "buy", "baseAsset": NEW_MINT, "quoteAsset": "SOL", "amount": "0.5",
          "minLiquidity": "50", "maxPrice": "0.001", "maxPriceImpactBps": 300, "expiresAt": 600}
ORDERS = [
    MARKET, LIMIT, SNIPER, {**MARKET, "slippageBps": None, "clientOrderId": "mine-1", "minAmountOut": "200"},
    {**MARKET, "type": "stop"}, {**MARKET, "venue": "raydium"}, {k: v for k, v in MARKET.items() if k != "type"},
    {**MARKET, "slippageBps": 10_001}, {**MARKET, "slippageBps": "50"}, {**MARKET, "side": "short"},
    {**MARKET, "amount": ""}, {**MARKET, "clientOrderId": "a\x00b"}, {**LIMIT, "expiresAt": 1.5},
    {k: v for k, v in LIMIT.items() if k != "limitPrice"}, {**SNIPER, "maxPriceImpactBps": -1}, [MARKET], "SOL",
]


def decodes(body: Any) -> bool:
    try:
        decode_order(json.dumps(body))
    except InputError:
        return False
    return True


@pytest.mark.parametrize("body", ORDERS)
def test_the_order_message_takes_exactly_what_the_decoder_takes(document, body):
    assert payload_validator(document, "order").is_valid(body) == decodes(body)


def test_a_cancel_is_the_cancel_message_and_not_an_order(document):
    cancel = {"action": "cancel", "orderId": "00000000-0000-7000-8000-000000000001"}
    assert fitting(document, "cancelOrder", cancel) == ["cancel"]
    assert not payload_validator(document, "order").is_valid(cancel)
    assert not payload_validator(document, "cancel").is_valid({**cancel, "action": "undo"})


# --- what goes out: the events the functions record fit the `event` message -----------------------

def test_an_outage_while_following_is_a_notice_on_both_sockets_and_never_nothing_was_accepted(document):
    """The frames ws_api sends when PostgreSQL goes away under a followed order, or as a stream opens."""
    notice = json.loads(outage_notice(EXAMPLE_ORDER_ID, ConnectionRefusedError()))
    assert fitting(document, "sendOrderEvents", notice) == fitting(document, "sendStream", notice) == ["notice"]
    refused = json.loads(cannot_open_stream(ConnectionRefusedError()))
    assert fitting(document, "sendStream", refused) == ["error"] and refused["status"] == 503
    assert "PostgreSQL is unavailable" in notice["error"] and "PostgreSQL is unavailable" in refused["error"]
    assert "nothing was accepted" not in notice["error"] + refused["error"]


async def run(ctx, message) -> None:
    """`message` through the steps, each one's output into the next (what the queues would do)."""
    steps = {"NewOrder": intake, "QuoteRequest": quote, "RouteRequest": route, "ExecuteRequest": execute,
             "ArmRequest": trigger}
    while message is not None:
        message = await steps[type(message).__name__].handle(message, ctx)


def market(amount: str = "1.5", **extra) -> NewOrder:
    return NewOrder(MarketOrderRequest(side="sell", base_asset="SOL", quote_asset="USDC", amount=amount, **extra),
                    "client-a", f"k-{amount}-{sorted(extra.items())}")


async def with_short_legs(ctx, short: tuple[int, ...]) -> None:
    """A 2,000 SOL sell (a split), the legs in `short` asking one unit more than they give."""
    request: ExecuteRequest = await route.handle(await quote.handle(await intake.handle(market("2000", client_order_id=f"short-{short}"), ctx), ctx),
                                                 ctx)
    legs = [msgspec.structs.replace(leg, min_amount_out=leg.expected_amount_out + 1) if n in short else leg
            for n, leg in enumerate(request.plan.legs)]
    await execute.handle(ExecuteRequest(request.order_id, msgspec.structs.replace(request.plan, legs=legs), "sell"), ctx)


async def recorded_events() -> list[dict[str, Any]]:
    """Every event the functions record on the way to each ending an order can have here."""
    ctx = fake_context()
    await run(ctx, market())  # one venue, confirmed
    await run(ctx, market("2000", client_order_id="split"))  # a split, confirmed
    await with_short_legs(ctx, (1,))  # partially filled
    await with_short_legs(ctx, (0, 1))  # failed at execute
    await run(ctx, market("1", min_amount_out="100000"))  # failed at routing: slippage
    await run(ctx, market("0.000000001"))  # failed at quoting: no_route
    gave_up = await intake.handle(market("3"), ctx)
    await give_up(gave_up, "TimeoutError: quote took too long", 3, ctx)
    limit = await intake.handle(NewOrder(msgspec.convert(LIMIT, LimitOrderRequest), "client-a", "limit"), ctx)
    await trigger.handle(limit, ctx)  # waiting
    await trigger.cancel(limit.order_id, ctx)
    sniper = await intake.handle(NewOrder(msgspec.convert(SNIPER, SniperOrderRequest), "client-a", "sniper"), ctx)
    await trigger.handle(sniper, ctx)
    return [msgspec.to_builtins(event) for event in ctx.publisher.events]


async def test_every_event_the_functions_record_fits_the_event_message(document):
    events = await recorded_events()
    statuses = {event["status"] for event in events}
    assert statuses >= {"pending", "waiting", "routing", "routed", "building", "submitted", "confirmed",
                        "partially_filled", "failed", "cancelled"}
    assert sum(event["status"] == "failed" for event in events) == 4
    assert any("legs" in event["data"] and event["status"] == "routed" for event in events)  # a split was routed
    for event in events:
        assert fitting(document, "sendOrderEvents", event) == ["event"], event


@pytest.mark.parametrize("mistake", [
    lambda e: e.update(seq="6"),
    lambda e: e.update(seq=0),
    lambda e: e.update(status="done"),
    lambda e: e.update(ts="yesterday"),
    lambda e: e.update(orderId="order-1"),
    lambda e: e.update(extra=True),
    lambda e: e["data"].pop("amountOut"),
    lambda e: e["data"].update(amountOut="268411871"),
    lambda e: e["data"].update(note="an undocumented field"),
    lambda e: e.update(status="submitted"),  # a confirmed event's data under another status
])
async def test_an_event_with_a_mistake_fits_no_message(document, mistake):
    confirmed = next(event for event in await recorded_events() if event["status"] == "confirmed")
    assert fitting(document, "sendOrderEvents", confirmed) == ["event"]
    mistake(confirmed)
    assert fitting(document, "sendOrderEvents", confirmed) == []
