"""A Python client generated from the served OpenAPI document (openapi-python-client, during the test
run, into a temporary directory: never committed), used as a user would against a running runtime:
submit a market order, read it, list it, read its events; rest a limit order and cancel it; and get
the refusals back as typed error bodies. The generator must not warn: a warning means part of the
document did not make it into the client."""

from __future__ import annotations

import importlib
import subprocess
import sys
import time
import uuid
from pathlib import Path
from types import ModuleType

import httpx
import pytest

from shared.domain.states import TERMINAL_STATUSES
from shared.domain.tokens import SOL, USDC
from tests.e2e.runtime import Runtime

pytestmark = pytest.mark.e2e

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "dex_engine_client"
CONFIG = "post_hooks: []\n"
"""No formatting pass after generating (ruff is not needed to import the code, and it is slow)."""
FAR_ABOVE = "1000000"
"""A sell limit no price reaches: the order rests until cancelled."""


class Generated:
    """The generated package: its models, and its operations by module name (the operationId)."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.models = importlib.import_module(f"{PACKAGE}.models")
        self.client_module = importlib.import_module(f"{PACKAGE}.client")

    def operation(self, name: str) -> ModuleType:
        return importlib.import_module(f"{PACKAGE}.api.default.{name}")

    def client(self, runtime: Runtime, api_key: str | None = None):
        return self.client_module.AuthenticatedClient(
            base_url=runtime.base, token=api_key or runtime.api_key, prefix="", auth_header_name="X-API-Key",
            raise_on_unexpected_status=True, timeout=httpx.Timeout(10))


@pytest.fixture(scope="module")
def generated(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Generated:
    """The client generated, once per module, from the document the runtime serves."""
    work = tmp_path_factory.mktemp("generated_client")
    document = work / "openapi.json"
    document.write_bytes(httpx.get(f"{runtime.base}/schema/openapi.json", timeout=10).raise_for_status().content)
    (work / "config.yaml").write_text(CONFIG)
    done = subprocess.run(
        [str(GENERATOR), "generate", "--path", str(document), "--meta", "none", "--output-path",
         str(work / PACKAGE), "--config", str(work / "config.yaml")],
        capture_output=True, text=True, timeout=120, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    sys.path.insert(0, str(work))
    try:
        return Generated(output)
    finally:
        sys.path.remove(str(work))


@pytest.fixture(scope="module")
def client(generated: Generated, runtime: Runtime):
    with generated.client(runtime) as client:
        yield client


def submit(generated: Generated, client, **fields):
    """POST /api/orders/execute with the generated body model of `fields["type_"]`'s order type."""
    models = generated.models
    model = {"market": models.MarketOrderRequest, "limit": models.LimitOrderRequest}[fields["type_"]]
    kind = {"market": models.MarketOrderRequestType, "limit": models.LimitOrderRequestType}[fields["type_"]]
    body = model(**{**fields, "type_": kind(fields["type_"])})
    return generated.operation("submit_order").sync_detailed(client=client, body=body)


def read_until(generated: Generated, client, order_id: str, wanted: set[str], seconds: float = 10):
    get_order = generated.operation("get_order")
    deadline = time.monotonic() + seconds
    while True:
        order = get_order.sync(order_id, client=client)
        if order.status.value in wanted or time.monotonic() > deadline:
            return order
        time.sleep(0.05)


def test_the_document_generates_a_client_without_warnings(generated: Generated) -> None:
    print(generated.output)
    assert "Warning" not in generated.output, generated.output
    for operation in ("submit_order", "get_order", "list_orders", "get_order_events", "cancel_order"):
        assert callable(generated.operation(operation).sync_detailed)


def test_a_market_order_is_submitted_read_listed_and_its_events_read(generated: Generated, client) -> None:
    models = generated.models
    submitted = submit(generated, client, type_="market", side=models.Side.SELL, base_asset="SOL",
                       quote_asset="USDC", amount="0.5", slippage_bps=100)
    assert submitted.status_code == 201, submitted.content
    accepted = submitted.parsed
    assert isinstance(accepted, models.OrderAccepted) and accepted.status == "pending"

    order = read_until(generated, client, accepted.order_id, TERMINAL_STATUSES)
    assert isinstance(order, models.OrderView)
    assert (order.order_id, order.status, order.type_, order.side) == (
        accepted.order_id, models.Status.CONFIRMED, models.Kind.MARKET, models.Side.SELL)
    assert (order.input_mint, order.output_mint, order.amount_in) == (SOL.mint, USDC.mint, 500_000_000)
    assert order.amount_out > 0 and order.venue in ("raydium", "meteora", "split") and order.tx_signature

    page = generated.operation("list_orders").sync(client=client, limit=50)
    assert isinstance(page, models.OrderPage)
    assert accepted.order_id in [listed.order_id for listed in page.orders]

    events = generated.operation("get_order_events").sync(accepted.order_id, client=client)
    assert all(isinstance(event, models.Event) for event in events)
    assert [event.seq for event in events] == list(range(1, len(events) + 1))
    assert (events[0].status, events[-1].status) == (models.Status.PENDING, models.Status.CONFIRMED)
    assert events[-1].seq == order.last_seq
    later = generated.operation("get_order_events").sync(accepted.order_id, client=client, after=str(events[-2].seq))
    assert [event.seq for event in later] == [events[-1].seq]


def test_a_resting_limit_order_is_cancelled_once(generated: Generated, client) -> None:
    models = generated.models
    submitted = submit(generated, client, type_="limit", side=models.Side.SELL, base_asset="SOL",
                       quote_asset="USDC", amount="0.25", limit_price=FAR_ABOVE, expires_at=3600)
    assert submitted.status_code == 201, submitted.content
    order_id = submitted.parsed.order_id
    resting = read_until(generated, client, order_id, {"waiting"})
    assert (resting.status, resting.limit_price) == (models.Status.WAITING, FAR_ABOVE)
    assert resting.expires_at is not None

    cancel = generated.operation("cancel_order")
    cancelled = cancel.sync_detailed(order_id, client=client)
    assert cancelled.status_code == 200, cancelled.content
    assert isinstance(cancelled.parsed, models.OrderCancelled) and cancelled.parsed.status == "cancelled"
    assert generated.operation("get_order").sync(order_id, client=client).status == models.Status.CANCELLED

    again = cancel.sync_detailed(order_id, client=client)
    assert again.status_code == 409 and isinstance(again.parsed, models.ErrorBody), again.content


def test_refusals_come_back_as_typed_error_bodies(generated: Generated, client, runtime: Runtime) -> None:
    models = generated.models
    bad_amount = submit(generated, client, type_="market", side=models.Side.SELL, base_asset="SOL",
                        quote_asset="USDC", amount="1,5")
    assert bad_amount.status_code == 422 and isinstance(bad_amount.parsed, models.ErrorBody), bad_amount.content
    assert bad_amount.parsed.field == "amount" and "amount" in bad_amount.parsed.error

    unknown = generated.operation("get_order").sync_detailed(str(uuid.uuid4()), client=client)
    assert unknown.status_code == 404 and isinstance(unknown.parsed, models.ErrorBody), unknown.content

    bad_page = generated.operation("list_orders").sync_detailed(client=client, limit=0)
    assert bad_page.status_code == 422 and bad_page.parsed.field == "limit", bad_page.content

    with generated.client(runtime, api_key="dex_not-a-key") as stranger:
        refused = generated.operation("list_orders").sync_detailed(client=stranger)
    assert refused.status_code == 401 and isinstance(refused.parsed, models.ErrorBody), refused.content
    assert refused.parsed.field == "X-API-Key"


def test_jupiters_quote_reads_into_the_quote_model(generated: Generated, client) -> None:
    models = generated.models
    quote = generated.operation("swap_v1_quote_get_swap_quote").sync(
        client=client, input_mint=SOL.mint, output_mint=USDC.mint, amount="1500000000", slippage_bps=50)
    assert isinstance(quote, models.QuoteResponse), quote
    assert (quote.in_amount, quote.swap_mode, quote.slippage_bps) == (
        "1500000000", models.QuoteResponseSwapMode.EXACTIN, 50)
    assert sum(step.percent for step in quote.route_plan) == 100
    assert int(quote.other_amount_threshold) <= int(quote.out_amount)


def test_a_jupiter_quote_executes_through_the_generated_swap_body(generated: Generated, client) -> None:
    models = generated.models
    if not hasattr(models, "QuoteExecution"):
        pytest.skip("the document's POST /api/orders/execute body has no {quoteResponse} branch (QuoteExecution is "
                    "missing from ORDER_BODIES in local_runtime/http_api.py): the generated client cannot send it")
    quote = generated.operation("swap_v1_quote_get_swap_quote").sync(
        client=client, input_mint=SOL.mint, output_mint=USDC.mint, amount="250000000", slippage_bps=100)
    executed = generated.operation("submit_order").sync_detailed(
        client=client, body=models.QuoteExecution(quote_response=quote))
    assert executed.status_code == 201 and isinstance(executed.parsed, models.OrderAccepted), executed.content
    order = read_until(generated, client, executed.parsed.order_id, TERMINAL_STATUSES)
    assert (order.status, order.amount_in) == (models.Status.CONFIRMED, 250_000_000)
    assert order.amount_out >= int(quote.other_amount_threshold)
