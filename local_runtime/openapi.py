"""What the OpenAPI document says beyond what Litestar infers: the error body every refusal has and
the refusals each operation can give (one table, so every route documents them alike); the request
bodies the handlers decode themselves (msgspec's own schema of the very types they decode, with
field descriptions and examples); and a last pass over the served document.

A route whose handler reads its body raw (to answer its own 400/422) declares it with
`dto=json_body(Type, ...), return_dto=None` and takes `data: bytes = b""`: the handler gets the
bytes, the document gets the types' schema (a union of tagged Structs as a `oneOf` with its
discriminator).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterator
from typing import Any, ClassVar

import msgspec
from litestar.dto import AbstractDTO, DTOConfig
from litestar.openapi import OpenAPIConfig
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPI, OpenAPIType, Reference, Schema
from litestar.openapi.spec.discriminator import Discriminator
from litestar.typing import FieldDefinition


class ErrorBody(msgspec.Struct, frozen=True):
    """Every refusal's body: what is wrong, and the request field it is about (null when it is
    about no one field)."""

    error: str
    field: str | None
    retry_after: int | None = msgspec.field(default=None, name="retryAfter")
    """Only on a 429 over a client's limit: seconds to wait, as in `Retry-After`."""


REFUSALS = {
    400: "the body is not JSON",
    401: "no API key, or an unknown or revoked one (`field`: X-API-Key)",
    404: "no such resource for this client",
    409: "a conflict with the resource's state or an earlier request",
    422: "a field is wrong: `field` names it",
    429: "over the client's rate or in-flight limit; `Retry-After` says when to retry",
    503: "Redis or PostgreSQL is unreachable; `Retry-After` says when to retry",
}
"""What each refusal status means, in the words every operation's documentation uses."""
RETRY_AFTER = {"description": "seconds to wait before retrying", "schema": {"type": "string", "pattern": "^[0-9]+$"}}


def refusals(*statuses: int, **descriptions: str) -> dict[int, ResponseSpec]:
    """`responses=` for a route: each status with the error body; `descriptions` (e.g.
    `_409="..."`) override the general wording for this route."""
    return {status: ResponseSpec(ErrorBody, generate_examples=False,
                                 description=descriptions.get(f"_{status}", REFUSALS[status]))
            for status in statuses}


# --- request bodies ------------------------------------------------------------------------------------

DECIMAL_PATTERN = r"^[0-9]+(\.[0-9]+)?$"
DECIMAL_FIELDS = frozenset({"amount", "minAmountOut", "limitPrice", "minLiquidity", "maxPrice", "price",
                            "baseAmount", "quoteAmount"})
"""Every decimal field of the API follows one rule (ASCII digits, an optional fraction, nothing else), checked
by the engine after decoding (a 422 naming the field): the document states it as a pattern."""
FIELD_DOCS = {
    "type": "the order type: `market` executes now, `limit` rests until its price, `sniper` waits for a new "
            "token's pool to launch",
    "side": "`sell` gives baseAsset for quoteAsset, `buy` gives quoteAsset for baseAsset (a sniper order buys)",
    "baseAsset": "the token traded: a symbol (SOL, USDC, USDT, BONK, JUP; any case) or a mint address (for a "
                 "sniper order, the mint of the token not launched yet)",
    "quoteAsset": "the token the base is priced in: a symbol or a mint address",
    "amount": "how much of the token sold (baseAsset for a sell, quoteAsset for a buy): a decimal string, exact in",
    "slippageBps": "the slippage allowed below the expected amount out, in basis points (default 50)",
    "clientOrderId": "the client's own id for the order: resubmitting it returns the same order (a different order "
                     "under it is a 409); 1 to 128 characters, no control characters",
    "minAmountOut": "the least the fill may give, in the token bought (decimal): if no venue can give it, the order "
                    "fails with reason `slippage`",
    "limitPrice": "quote per base: a sell fires when the executable price for its size reaches it or more, a buy at "
                  "it or less; the fill is never worse",
    "expiresAt": "when the order expires: ISO 8601, or seconds from now if under 10^9, else Unix seconds",
    "minLiquidity": "the least depth of the new pool in quoteAsset (decimal)",
    "maxPrice": "the highest acceptable price, quote per base, for this order's size (decimal)",
    "maxPriceImpactBps": "the highest acceptable price impact on the new pool, in basis points",
    "quoteResponse": "a quote from GET /swap/v1/quote, as it came (Jupiter's swap body): executed as quoted, with "
                     "`otherAmountThreshold` as its least amount out; a stale or altered quote is a 422",
    "label": "a name for the key, for you (at most 64 characters, no control characters)",
    "ordersPerMinute": "orders per minute the new key may place: at most the calling key's (left out: the same)",
    "maxInFlight": "orders the new key may have in flight: at most the calling key's (left out: the same)",
}
"""Descriptions of the order fields (shared/domain/messages.py's types), by their JSON name; a field's own
`msgspec.Meta(description=...)` comes first."""
BODY_EXAMPLES = {
    "MarketOrderRequest": [{"type": "market", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC",
                            "amount": "1.5", "slippageBps": 100}],
    "LimitOrderRequest": [{"type": "limit", "side": "sell", "baseAsset": "SOL", "quoteAsset": "USDC", "amount": "2",
                           "limitPrice": "180.5", "expiresAt": 3600}],
    "SniperOrderRequest": [{"type": "sniper", "side": "buy", "baseAsset": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin",
                            "quoteAsset": "SOL", "amount": "0.5", "minLiquidity": "50", "maxPrice": "0.001",
                            "expiresAt": 600}],
    "QuoteExecution": [{"quoteResponse": {
        "inputMint": "So11111111111111111111111111111111111111112", "inAmount": "1500000000",
        "outputMint": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "outAmount": "277861043",
        "otherAmountThreshold": "276471737", "swapMode": "ExactIn", "slippageBps": 50, "platformFee": None,
        "priceImpactPct": "0.0011", "routePlan": [{"swapInfo": {
            "ammKey": "58oQChx4yWmvKdwLLZzBi4ChoCc2fqCUWBkwMihLYQo2", "label": "raydium",
            "inputMint": "So11111111111111111111111111111111111111112",
            "outputMint": "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", "inAmount": "1500000000",
            "outAmount": "277861043", "feeAmount": "3750000",
            "feeMint": "So11111111111111111111111111111111111111112"}, "percent": 100}],
        "contextSlot": 530752783, "timeTaken": 0.0031}}],
    "KeyRequest": [{"label": "trading bot", "ordersPerMinute": 600, "maxInFlight": 50}],
    "PriceMove": [{"baseAsset": "SOL", "quoteAsset": "USDC", "price": "185.25"}],
    "PoolLaunch": [{"venue": "meteora", "baseMint": "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", "symbol": "NEW",
                    "decimals": 6, "quoteAsset": "SOL", "baseAmount": "1000000", "quoteAmount": "100"}],
}
"""Example bodies, by the name of their Struct."""
_STRUCT_KEYS = {"title": "title", "description": "description", "type": "type", "properties": "properties",
                "required": "required", "additionalProperties": "additional_properties"}


class _TaggedTargets(Discriminator):
    """A discriminator whose mapping points at registered components: the paths are read when the document is
    written, after Litestar has named the components."""

    def __init__(self, property_name: str, targets: dict[str, Reference]) -> None:
        super().__init__(property_name=property_name)
        self._targets = targets

    def to_schema(self) -> dict[str, Any]:
        return {"propertyName": self.property_name, "mapping": {tag: ref.ref for tag, ref in self._targets.items()}}


class _BodySchemas:
    """Litestar components for the Structs a handler decodes, from msgspec's JSON schema of them."""

    def __init__(self, creator) -> None:
        self._creator = creator
        self._registry = creator.schema_registry

    def body(self, types: tuple[Any, ...]) -> Schema | Reference:
        schemas = [self.of(body_type) for body_type in types]
        return schemas[0] if len(schemas) == 1 else Schema(one_of=schemas)

    def of(self, body_type: Any) -> Schema | Reference:
        """A Struct as a component; a union of Structs as a `oneOf` (with its discriminator if tagged)."""
        members = typing.get_args(body_type) if typing.get_origin(body_type) in (typing.Union, types.UnionType) else ()
        if not members:
            return self.struct(body_type)
        schema = Schema(one_of=[self.of(member) for member in members])
        infos = [msgspec.inspect.type_info(member) for member in members]
        if all(isinstance(info, msgspec.inspect.StructType) and info.tag_field for info in infos):
            schema.discriminator = _TaggedTargets(infos[0].tag_field, {info.tag: self.struct(info.cls)
                                                                      for info in infos})
        return schema

    def struct(self, struct_type: type) -> Reference:
        field = FieldDefinition.from_annotation(struct_type)
        if (reference := self._registry.get_reference_for_field_definition(field)) is not None:
            return reference
        schema = self._registry.get_schema_for_field_definition(field)  # registered first: a cycle finds it
        _, components = msgspec.json.schema_components([struct_type], ref_template="{name}")
        named = dict(_named_types(msgspec.inspect.type_info(struct_type)))
        own = components[struct_type.__name__]
        unknown = set(own) - set(_STRUCT_KEYS)
        if unknown:
            raise ValueError(f"{struct_type.__name__}: msgspec's schema has {sorted(unknown)}, not carried over")
        for key, attribute in _STRUCT_KEYS.items():
            if key in own:
                setattr(schema, attribute, own[key])
        schema.type = OpenAPIType.OBJECT
        schema.properties = {name: self._described(name, self._linked(prop, named))
                             for name, prop in own.get("properties", {}).items()}
        schema.examples = BODY_EXAMPLES.get(struct_type.__name__)
        return self._registry.get_reference_for_field_definition(field)

    def _linked(self, value: Any, named: dict[str, type]) -> Any:
        """msgspec's `{"$ref": name}` as a reference to the registered component of that type."""
        if isinstance(value, list):
            return [self._linked(item, named) for item in value]
        if not isinstance(value, dict):
            return value
        if "$ref" in value:
            target = named[value["$ref"]]
            if isinstance(target, type) and issubclass(target, msgspec.Struct):
                reference = self.struct(target)
            else:
                reference = self._creator.for_field_definition(FieldDefinition.from_annotation(target))
            reference.description = value.get("description")  # this very object: Litestar renames it later
            return reference
        return {key: self._linked(item, named) for key, item in value.items()}

    @staticmethod
    def _described(name: str, prop: Any) -> Any:
        if name in DECIMAL_FIELDS:
            for branch in _string_branches(prop):
                branch["pattern"] = DECIMAL_PATTERN
        if name == "type" and isinstance(prop, dict) and "enum" in prop:
            prop = {"type": "string", **prop}
        if name in FIELD_DOCS:
            if isinstance(prop, Reference) and not prop.description:
                prop.description = FIELD_DOCS[name]
            elif isinstance(prop, dict) and "description" not in prop:
                prop = {"description": FIELD_DOCS[name], **prop}
        return prop


def _string_branches(prop: Any) -> Iterator[dict]:
    if isinstance(prop, dict):
        if prop.get("type") == "string":
            yield prop
        for branch in prop.get("anyOf", []):
            yield from _string_branches(branch)


def _named_types(info: Any, seen: set | None = None) -> Iterator[tuple[str, type]]:
    """The Structs and Enums in a msgspec type tree, by the names msgspec's schema gives them."""
    seen = set() if seen is None else seen
    inspect = msgspec.inspect
    if isinstance(info, (inspect.StructType, inspect.EnumType)):
        if info.cls in seen:
            return
        seen.add(info.cls)
        yield info.cls.__name__, info.cls
    inner: tuple = ()
    if isinstance(info, inspect.StructType):
        inner = tuple(field.type for field in info.fields)
    elif isinstance(info, inspect.Metadata):
        inner = (info.type,)
    elif isinstance(info, inspect.CollectionType):
        inner = (info.item_type,)
    elif isinstance(info, inspect.TupleType):
        inner = info.item_types
    elif isinstance(info, (inspect.DictType, inspect.FrozenDictType)):
        inner = (info.key_type, info.value_type)
    elif isinstance(info, inspect.UnionType):
        inner = info.types
    for item in inner:
        yield from _named_types(item, seen)


class _RawJSONBody(AbstractDTO[bytes]):
    """The handler receives the body's bytes; the document gets `body_types`' schema."""

    config: ClassVar[DTOConfig] = DTOConfig()
    body_types: ClassVar[tuple[Any, ...]] = ()

    @classmethod
    def generate_field_definitions(cls, model_type: type[Any]) -> Iterator[Any]:
        return iter(())

    @classmethod
    def detect_nested_field(cls, field_definition: FieldDefinition) -> bool:
        return False

    @classmethod
    def create_for_field_definition(cls, field_definition: FieldDefinition, handler_id: str,
                                    backend_cls: Any = None) -> None:
        """Nothing to transfer: the bytes go to the handler as they came."""

    @classmethod
    def create_openapi_schema(cls, field_definition: FieldDefinition, handler_id: str, schema_creator
                              ) -> Schema | Reference:
        return _BodySchemas(schema_creator).body(cls.body_types)

    def decode_bytes(self, value: bytes) -> bytes:
        return value


def json_body(*body_types: Any) -> type[AbstractDTO]:
    """`dto=` for a handler that decodes its body itself: each of `body_types` (a Struct, or a union of
    Structs) is one shape the body may have; several are documented as a `oneOf`."""
    return type("RawJSONBody", (_RawJSONBody,), {"body_types": body_types})


# --- the served document --------------------------------------------------------------------------------


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """The last pass over the document: the 400 Litestar adds to every operation with parameters goes
    (this app answers a bad parameter 422, see `refusals`) unless the route declared one, and every refusal
    that can say when to retry documents `Retry-After`."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if "400" in responses and not _is_error_body(responses["400"]):
                del responses["400"]
            for status in ("429", "503"):
                if status in responses and _is_error_body(responses[status]):
                    responses[status].setdefault("headers", {})["Retry-After"] = RETRY_AFTER
    return document


def _is_error_body(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return schema.get("$ref", "").rsplit("/", 1)[-1] == ErrorBody.__name__


class _FinishedOpenAPI(OpenAPI):
    def to_schema(self) -> dict[str, Any]:
        return finish(super().to_schema())


@dataclasses.dataclass
class FinishedOpenAPIConfig(OpenAPIConfig):
    """Litestar's OpenAPIConfig, the document passed through `finish` when it is written."""

    def to_openapi_schema(self) -> OpenAPI:
        openapi = super().to_openapi_schema()
        return _FinishedOpenAPI(**{f.name: getattr(openapi, f.name) for f in dataclasses.fields(openapi)})
