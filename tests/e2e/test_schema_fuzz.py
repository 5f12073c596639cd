"""Schemathesis against the running runtime's OpenAPI document (/schema/openapi.json), as served.

Every operation the document lists is fuzzed (the list is the document's: a new route is fuzzed
without a line here), in three variants, a bounded number of requests each:
- `positive`: schema-valid requests, values as Hypothesis draws them;
- `steered`: schema-valid requests whose values the test steers by field name towards real
  symbols, decimals, mints and existing order ids (so requests get past the first check and
  orders really execute, rest and get cancelled);
- `negative`: requests that violate the schema (a wrong type, a missing required field, a value out
  of range...), which must be refused with a 4xx.
Every answer must pass schemathesis's checks: no 5xx, a documented status code, the documented
content type and headers, a body that conforms to the documented schema (the error body for
refusals), and, for negative requests, a refusal. Every request carries the API key (a missing or
wrong key is tested elsewhere); nothing else in the document is changed. The figures (requests per
operation, variant and status) are printed and left in .artifacts/schema_fuzz.json.
The bugs this file found are pinned by the tests at the end.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_openapi
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from local_runtime.app import create_app
from shared.settings import load_settings
from tests.e2e.runtime import Runtime, private_runtime

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / ".artifacts" / "schema_fuzz.json"
EXAMPLES = 60  # per operation and variant
DOCUMENT = create_app(load_settings({})).openapi_schema.to_schema()
"""The document as the app builds it, for the test list; the served one must be the same."""
OPERATIONS = sorted((method.upper(), path) for path, operations in DOCUMENT["paths"].items() for method in operations)
BASES, QUOTES = ["SOL", "BONK", "JUP"], ["USDC", "USDT", "SOL"]
"""Steered pairs: mostly listed ones, rarely an asset against itself."""
INT32_MAX = 2**31 - 1
DECIMAL = st.from_regex(r"\A[0-9]{1,4}(\.[0-9]{1,6})?\Z")
PRICE = st.from_regex(r"\A(0\.0{0,30}[1-9][0-9]{0,3}|[1-9][0-9]{0,30}(\.[0-9]{1,4})?)\Z")
"""Decimals from 1e-34 to 1e31: a scripted move that far must be refused (422), not break the pools."""
BASE58 = st.from_regex(r"\A[1-9A-HJ-NP-Za-km-z]{43,44}\Z")
STEERED = {
    "baseAsset": st.sampled_from(BASES), "inputMint": st.sampled_from(BASES),
    "quoteAsset": st.sampled_from(QUOTES), "outputMint": st.sampled_from(QUOTES),
    **dict.fromkeys(["amount", "minAmountOut", "limitPrice", "minLiquidity", "maxPrice", "baseAmount",
                     "quoteAmount"], DECIMAL),
    "price": PRICE,
    "baseMint": BASE58,
    "expiresAt": st.integers(-10, 86_400),
}
"""Values by field name (body properties and parameters alike), whatever the operation; `order_id` and
`before` take the ids of real orders (see `steer`). A value replaces a generated one of the same type only."""
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_headers_conformance,
          response_schema_conformance]
VARIANTS = {  # name: (generation mode, steered, extra checks)
    "positive": (GenerationMode.POSITIVE, False, []),
    "steered": (GenerationMode.POSITIVE, True, []),
    "negative": (GenerationMode.NEGATIVE, False, [negative_data_rejection]),
}
FIGURES_SEEN: dict[str, dict] = {}


def negatable(method: str, path: str) -> bool:
    """Whether the operation has anything a request could violate: a body, or a parameter whose schema
    constrains it beyond "any string" (a path segment is any string; the key is always sent)."""
    operation = DOCUMENT["paths"][path][method.lower()]
    constrained = [p for p in operation.get("parameters", []) if p["in"] != "path" and p["schema"] != {"type": "string"}]
    return "requestBody" in operation or bool(constrained)


FUZZED = [(method, path, variant) for method, path in OPERATIONS for variant in VARIANTS
          if variant != "negative" or negatable(method, path)]


@pytest.fixture(scope="module")
def served_schema(runtime: Runtime) -> dict:
    response = httpx.get(f"{runtime.base}/schema/openapi.json", timeout=10)
    assert response.status_code == 200
    return response.json()


@pytest.fixture(scope="module")
def fuzz_schema(runtime: Runtime, served_schema: dict):
    """The served document, loaded for fuzzing as it is."""
    return schemathesis.openapi.from_dict(served_schema)


@pytest.fixture(scope="module")
def order_ids(runtime: Runtime) -> list[str]:
    """Real orders to point ids at: a market order (finishes at once) and a resting limit order (can
    be cancelled once)."""
    market = runtime.post_order({"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                                 "amount": "0.5"})
    limit = runtime.post_order({"type": "limit", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                                "amount": "0.5", "limitPrice": "100000", "expiresAt": 3600})
    assert market.status_code == limit.status_code == 201
    return [market.json()["orderId"], limit.json()["orderId"]]


@pytest.fixture(scope="module", autouse=True)
def figures() -> Iterator[None]:
    """Leaves the figures of the requests the module sent, whichever tests ran."""
    yield
    if FIGURES_SEEN:
        FIGURES.parent.mkdir(exist_ok=True)
        FIGURES.write_text(json.dumps({"operations": len({k.rsplit(" ", 1)[0] for k in FIGURES_SEEN}),
                                       "requests": sum(f["requests"] for f in FIGURES_SEEN.values()),
                                       "by_operation": FIGURES_SEEN}, indent=1) + "\n")


def test_the_served_document_is_the_apps_and_valid_openapi(served_schema: dict) -> None:
    """What the tests here are derived from is what clients get; and it is a valid OpenAPI 3.1 document."""
    assert served_schema == json.loads(json.dumps(DOCUMENT))
    assert served_schema["openapi"].startswith("3.1")
    validate_openapi(served_schema)


def test_every_api_operation_needs_the_key_and_documents_its_refusals(served_schema: dict) -> None:
    assert served_schema["components"]["securitySchemes"]["apiKey"] == {"type": "apiKey", "name": "X-API-Key",
                                                                         "in": "header"}
    for path, operations in served_schema["paths"].items():
        for method, operation in operations.items():
            where = f"{method.upper()} {path}"
            responses = operation["responses"]
            if path.startswith("/api/"):
                assert operation.get("security") == [{"apiKey": []}], where
                assert "401" in responses, where
            assert any(status.startswith("2") for status in responses), where
            for status, response in responses.items():
                if status.startswith(("4", "5")) and path.startswith("/api/"):
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (where, status)
                if status.startswith("2"):
                    assert response["content"]["application/json"]["schema"] not in ({}, {"type": "object"}), \
                        (where, status, "an undescribed body")


def test_every_request_body_field_is_described(served_schema: dict) -> None:
    components = served_schema["components"]["schemas"]

    def structs(schema: dict) -> Iterator[str]:
        if "$ref" in schema:
            yield schema["$ref"].rsplit("/", 1)[-1]
        for branch in schema.get("oneOf", []):
            yield from structs(branch)

    bodies = {name for operations in served_schema["paths"].values() for operation in operations.values()
              if "requestBody" in operation
              for name in structs(operation["requestBody"]["content"]["application/json"]["schema"])}
    assert {"MarketOrderRequest", "LimitOrderRequest", "SniperOrderRequest", "PriceMove", "PoolLaunch"} <= bodies
    for name in bodies:
        component = components[name]
        assert component.get("description") and component.get("examples"), name
        for field, schema in component["properties"].items():
            assert schema.get("description"), f"{name}.{field} has no description"


def test_the_order_body_is_a_one_of_with_type_as_discriminator(served_schema: dict) -> None:
    body = served_schema["paths"]["/api/orders/execute"]["post"]["requestBody"]
    assert body["required"] is True
    orders = body["content"]["application/json"]["schema"]
    while "type" not in orders.get("discriminator", {}).get("propertyName", ""):  # the orders' own oneOf
        orders = next(branch for branch in orders["oneOf"] if "oneOf" in branch)
    refs = {kind: f"#/components/schemas/{kind.title()}OrderRequest" for kind in ("market", "limit", "sniper")}
    assert orders["discriminator"] == {"propertyName": "type", "mapping": refs}
    assert orders["oneOf"] == [{"$ref": ref} for ref in refs.values()]
    for kind, ref in refs.items():
        component = served_schema["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        assert component["properties"]["type"]["enum"] == [kind] and "type" in component["required"]
        assert component["additionalProperties"] is False


def steer(case, data, order_ids: list[str]) -> None:
    """Real values in place of generated ones, by field name (see STEERED)."""
    ids = st.sampled_from([*order_ids, str(uuid.uuid4()), "not-an-id"])
    containers = [case.query, case.path_parameters, case.body]
    for container in containers:
        if not isinstance(container, dict):
            continue
        for name, value in list(container.items()):
            strategy = ids if name in ("order_id", "before") else STEERED.get(name)
            if strategy is None:
                continue
            steered = data.draw(strategy, label=name)
            if isinstance(steered, type(value)) and not isinstance(value, bool):
                container[name] = steered


def only_tolerated_violations(case) -> bool:
    """Whether a negative case breaks the schema only in ways this API tolerates by design: parameters
    it does not know (ignored, as HTTP APIs do: a cache-buster, a newer client's option) and a missing
    `X-API-Key` (every request here carries the key, which makes that part valid again)."""
    mutations = getattr(case.meta.phase.data, "mutations", ())
    return bool(mutations) and all(
        (m.parameter_location.value == "query" and "additionalProperties" in m.keywords)
        or (m.parameter_location.value == "header" and (m.parameter or "").lower() == "x-api-key")
        for m in mutations)


@pytest.mark.parametrize(("method", "path", "variant"), FUZZED, ids=[f"{m} {p} {v}" for m, p, v in FUZZED])
def test_every_answer_conforms_to_the_document(runtime: Runtime, fuzz_schema, order_ids: list[str], method: str,
                                               path: str, variant: str) -> None:
    mode, steered, extra_checks = VARIANTS[variant]
    operation = fuzz_schema[path][method]
    statuses: Counter[int] = Counter()

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(case=operation.as_strategy(generation_mode=mode), data=st.data())
    def one_request(case, data) -> None:
        assume(mode is not GenerationMode.NEGATIVE or not only_tolerated_violations(case))
        if steered:
            steer(case, data, order_ids)
        response = case.call(base_url=runtime.base, headers=runtime.headers, timeout=15)
        statuses[response.status_code] += 1
        case.validate_response(response, checks=[*CHECKS, *extra_checks])

    one_request()
    FIGURES_SEEN[f"{method} {path} {variant}"] = {"requests": statuses.total(),
                                                  "statuses": dict(sorted(statuses.items()))}
    print(method, path, variant, statuses.total(), "requests", sorted(statuses.items()))
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
    with private_runtime(DEX_SIM_ZERO_DELAYS="true", DEX_SIM_DRIFT_INTERVAL_MS="0",
                         DEX_WORKER_CONCURRENCY="20") as server:
        yield server


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
