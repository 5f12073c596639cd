"""Schemathesis against the running runtime's OpenAPI (/schema/openapi.json), with the API key.

Every operation gets schema-valid (positive) and schema-violating (negative) requests, a bounded
number each: no answer may be a 5xx (a 503 would mean Redis or PostgreSQL is down, and they are
not), and every answer must be JSON.

The served document does not describe the POST bodies (the handlers read the raw body to give
their own 400/422), so before fuzzing the test adds them from the very msgspec types the handlers
decode, steers string fields towards real symbols, decimals and existing order ids some of the
time (so requests get past the first check), and adds the optional Idempotency-Key header. The
bugs this file found are pinned by the tests at the end.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections import Counter
from collections.abc import Iterator

import httpx
import msgspec
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode

from local_runtime.sim_api import PoolLaunch, PriceMove
from shared.domain.messages import OrderRequest
from tests.conftest import REDIS_URL, _admin, database_url, run_sync
from tests.e2e.runtime import Runtime

pytestmark = pytest.mark.e2e

EXAMPLES = 150  # per operation and variant: 23 fuzzed (operation, variant) pairs × 150 ≈ 3,450 requests
OPERATIONS = [
    ("POST", "/api/orders/execute"),
    ("GET", "/api/orders"),
    ("GET", "/api/orders/{order_id}"),
    ("DELETE", "/api/orders/{order_id}"),
    ("GET", "/api/orders/{order_id}/events"),
    ("GET", "/api/quote"),
    ("POST", "/api/sim/prices"),
    ("POST", "/api/sim/launch"),
    ("GET", "/api/markets"),
    ("GET", "/healthz"),
]
SYMBOLS = ["SOL", "USDC", "USDT", "BONK", "JUP"]
BASES, QUOTES = ["SOL", "BONK", "JUP"], ["USDC", "USDT", "SOL"]
"""Steered pairs: mostly listed ones, rarely an asset against itself (Hypothesis sorts an enum and
favours its first value, so one list for both sides would mostly give BONK/BONK)."""
INT32_MAX = 2**31 - 1
ANY_TEXT = {"type": "string", "minLength": 1, "maxLength": 64}
DECIMAL = {"type": "string", "pattern": r"^[0-9]{1,4}(\.[0-9]{1,6})?$"}
PRICE = {"type": "string", "pattern": r"^(0\.0{0,30}[1-9][0-9]{0,3}|[1-9][0-9]{0,30}(\.[0-9]{1,4})?)$"}
"""Decimals from 1e-34 to 1e31: a scripted move that far must be refused (422), not break the pools."""
BASE58 = {"type": "string", "pattern": r"^[1-9A-HJ-NP-Za-km-z]{43,44}$"}


def nullable(schema: dict) -> dict:
    return {"anyOf": [schema, {"type": "null"}]}


def enrich(document: dict, order_ids: list[str], steered: bool) -> dict:
    """The served document plus what it cannot say (see the module docstring). `steered`: string
    fields take only real symbols, decimals, base58 mints and existing order ids, so requests get
    past the first check (Hypothesis would fold an `anyOf` of such values and any string into
    plain strings); otherwise they are any strings of the right type."""
    doc = copy.deepcopy(document)
    bodies, components = msgspec.json.schema_components(
        [OrderRequest, PriceMove, PoolLaunch], ref_template="#/components/schemas/{name}"
    )
    doc.setdefault("components", {}).setdefault("schemas", {}).update(components)
    for name in ("MarketOrderRequest", "LimitOrderRequest", "SniperOrderRequest"):
        props = components[name]["properties"]
        if steered:
            props["baseAsset"], props["quoteAsset"] = {"enum": BASES}, {"enum": QUOTES}
            props["amount"] = DECIMAL
            for field in ("minAmountOut", "maxPrice", "minLiquidity"):
                if field in props:
                    props[field] = nullable(DECIMAL)
            if "limitPrice" in props:
                props["limitPrice"] = DECIMAL
            if "expiresAt" in props:
                props["expiresAt"] = {"type": "integer", "minimum": -10, "maximum": 86_400}
    move, launch = components["PriceMove"]["properties"], components["PoolLaunch"]["properties"]
    if steered:
        move["price"] = PRICE
        move["baseAsset"], move["quoteAsset"] = {"enum": BASES}, {"enum": QUOTES}
        launch["quoteAsset"] = {"enum": SYMBOLS}
        launch["baseMint"] = BASE58
        launch["baseAmount"] = launch["quoteAmount"] = DECIMAL

    def body(schema: dict) -> dict:
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    paths = doc["paths"]
    paths["/api/orders/execute"]["post"]["requestBody"] = body(bodies[0])
    paths["/api/orders/execute"]["post"].setdefault("parameters", []).append(
        {"name": "Idempotency-Key", "in": "header", "required": False,
         "schema": {"type": "string", "minLength": 1, "maxLength": 140}}
    )
    paths["/api/sim/prices"]["post"]["requestBody"] = body(bodies[1])
    paths["/api/sim/launch"]["post"]["requestBody"] = body(bodies[2])
    for path, operations in paths.items():
        for operation in operations.values():
            # Every request carries the key (a missing or wrong key is tested elsewhere): without
            # this, negative cases would mostly just drop the key and stop at 401.
            operation.pop("security", None)
            for parameter in operation.get("parameters", []):
                if not steered:
                    continue
                if parameter["name"] in ("order_id", "before"):
                    parameter["schema"] = {"enum": [*order_ids, str(uuid.uuid4()), "not-an-id"]}
                if path == "/api/quote" and parameter["name"] in ("inputMint", "outputMint"):
                    parameter["schema"] = {"enum": BASES if parameter["name"] == "inputMint" else QUOTES}
                if path == "/api/quote" and parameter["name"] == "amount":
                    parameter["schema"] = DECIMAL
    doc.pop("security", None)
    return doc


@pytest.fixture(scope="module")
def served_schema(runtime: Runtime) -> dict:
    response = httpx.get(f"{runtime.base}/schema/openapi.json", timeout=10)
    assert response.status_code == 200
    return response.json()


@pytest.fixture(scope="module")
def fuzz_schema(runtime: Runtime, served_schema: dict):
    """Loaded for fuzzing, with a few real orders to point ids at: a market order (finishes at
    once) and a resting limit order (can be cancelled once)."""
    market = runtime.post_order({"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                                 "amount": "0.5"})
    limit = runtime.post_order({"type": "limit", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                                "amount": "0.5", "limitPrice": "100000", "expiresAt": 3600})
    assert market.status_code == limit.status_code == 201
    ids = [market.json()["orderId"], limit.json()["orderId"]]
    return {
        "steered": schemathesis.openapi.from_dict(enrich(served_schema, ids, steered=True)),
        "raw": schemathesis.openapi.from_dict(enrich(served_schema, ids, steered=False)),
    }


def check(case, response) -> None:
    sent = response.request
    request = f"{sent.method} {sent.url} headers={dict(sent.headers)} body={sent.body!r:.300}"
    assert response.status_code < 500, f"{response.status_code} for {request}: {response.text[:300]}"
    content_type = response.headers.get("content-type", [""])[0]  # schemathesis' headers: lower-case name → values
    assert content_type.startswith("application/json"), (request, response.status_code, content_type)
    json.loads(response.content)  # the body really is JSON


def test_the_served_schema_lists_exactly_the_fuzzed_operations(served_schema: dict) -> None:
    served = {(method.upper(), path) for path, ops in served_schema["paths"].items() for method in ops}
    assert served == set(OPERATIONS)
    assert served_schema["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "name": "X-API-Key",
                                                                         "in": "header"}


VARIANTS = {  # name: (schema, generation mode)
    "steered": ("steered", GenerationMode.POSITIVE),
    "positive": ("raw", GenerationMode.POSITIVE),
    "negative": ("raw", GenerationMode.NEGATIVE),
}
NOTHING_TO_SPOIL = {("GET", "/healthz"), ("GET", "/api/orders/{order_id}"), ("DELETE", "/api/orders/{order_id}"),
                    ("GET", "/api/markets")}
"""No parameter a negative case could break: a path segment is any string (and the key is always sent)."""
NOTHING_TO_STEER = {"/healthz", "/api/markets"}
FUZZED = [(method, path, variant) for method, path in OPERATIONS for variant in VARIANTS
          if (variant != "negative" or (method, path) not in NOTHING_TO_SPOIL)
          and (path not in NOTHING_TO_STEER or variant == "positive")]


@pytest.mark.parametrize(("method", "path", "variant"), FUZZED, ids=[f"{m} {p} {v}" for m, p, v in FUZZED])
def test_no_server_error_and_always_json(runtime: Runtime, fuzz_schema, method: str, path: str, variant: str) -> None:
    schema_name, mode = VARIANTS[variant]
    operation = fuzz_schema[schema_name][path][method]
    statuses: Counter[int] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy(generation_mode=mode))
    def one_request(case) -> None:
        response = case.call(base_url=runtime.base, headers=runtime.headers, timeout=15)
        statuses[response.status_code] += 1
        check(case, response)

    one_request()
    print(method, path, variant, sorted(statuses.items()))
    assert httpx.get(f"{runtime.base}/healthz", timeout=10).json()["status"] == "ok"


# --- bugs this file found (fixed since): each pinned by a test ----------------------------------------


def test_events_after_beyond_int32_is_refused(runtime: Runtime) -> None:
    """`after` had no upper bound: asyncpg's DataError 'value out of int32 range' for after >= 2^31
    made a 500 (and closed the /stream socket with 4500)."""
    order_id = runtime.post_order({"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                                   "amount": "0.1"}).json()["orderId"]
    assert runtime.get(f"/api/orders/{order_id}/events?after={INT32_MAX}").status_code == 200
    for after in (INT32_MAX + 1, 2**63, 10**30):
        response = runtime.get(f"/api/orders/{order_id}/events?after={after}")
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "after"


def test_a_control_character_in_client_order_id_is_refused(runtime: Runtime) -> None:
    """A NUL in clientOrderId reached PostgreSQL (CharacterNotInRepertoireError): 500, not 422."""
    for key in ("a\u0000b", "\u0000", "line\nbreak"):
        response = runtime.post_order({"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                                       "amount": "0.1", "clientOrderId": key})
        assert response.status_code == 422, response.text
        assert response.json()["field"] == "clientOrderId"


def test_a_deeply_nested_body_is_refused(runtime: Runtime) -> None:
    """msgspec's RecursionError on an object nested 1,000 deep (6 KB) was not caught: 500."""
    for body in ('{"a":' * 1000 + "1" + "}" * 1000, '{"a":[' * 1000 + "]}" * 1000):
        response = runtime.post_order(body.encode())
        assert response.status_code in (400, 422), response.text
    for path in ("/api/sim/prices", "/api/sim/launch"):
        response = httpx.post(f"{runtime.base}{path}", content=('{"a":' * 1000 + "1" + "}" * 1000).encode(),
                              headers=runtime.headers, timeout=10)
        assert response.status_code in (400, 422), response.text


@pytest.fixture(scope="module")
def scratch_runtime() -> Iterator[Runtime]:
    """A runtime of its own for the tests that break the simulated market (as the module one would stay)."""
    name = f"dex_e2e_{uuid.uuid4().hex[:10]}"
    server = Runtime({
        "REDIS_URL": REDIS_URL, "DATABASE_URL": database_url(name), "DEX_NAMESPACE": f"e2e{uuid.uuid4().hex[:8]}",
        "DEX_SIM_ZERO_DELAYS": "true", "DEX_SIM_DRIFT_INTERVAL_MS": "0", "DEX_WORKER_CONCURRENCY": "20",
    }).start()
    yield server
    server.stop()
    server.forget_namespace()
    run_sync(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_an_extreme_price_move_is_refused_and_the_market_stays_usable(scratch_runtime: Runtime) -> None:
    """A price so small that k // reserve_x was 0 (1e-28 SOL/USDC) was accepted and emptied the
    Raydium pool: the next move divided by zero (500), and since every move reads every pool's spot,
    every later POST /api/sim/prices on any pair was a 500; a price so large that reserve_x was 0
    (1e29) was a 500 at once."""
    move = {"baseAsset": "SOL", "quoteAsset": "USDC"}
    for price in ("0.0000000000000000000000000001", "1" + "0" * 29):
        response = scratch_runtime.post("/api/sim/prices", {**move, "price": price})
        assert response.status_code == 422, response.text
    for pair, price in ((move, "180"), ({"baseAsset": "JUP", "quoteAsset": "USDC"}, "1")):
        response = scratch_runtime.post("/api/sim/prices", {**pair, "price": price})
        assert response.status_code == 200, response.text
    quote = scratch_runtime.get("/api/quote?inputMint=SOL&outputMint=USDC&amount=1")
    assert quote.status_code == 200 and len(quote.json()["venues"]) == 2, quote.text


def test_a_pool_of_a_token_against_itself_is_refused(scratch_runtime: Runtime) -> None:
    """A launch whose baseMint was the quote asset's own mint (BONK against BONK) opened a pool
    trading a token against itself (201)."""
    response = scratch_runtime.post("/api/sim/launch", {
        "venue": "raydium", "baseMint": "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", "quoteAsset": "BONK",
        "baseAmount": "1", "quoteAmount": "1"})
    assert response.status_code == 422, response.text
