"""Measurement prototype of design (B) of issue 16 (not chosen, not product code): the world as one simulator service.

Issue 16 makes the simulated world one shared thing outside the processes that run the
functions, and asks to measure two designs before choosing. (A), the one implemented
(shared/db/market_store.py), keeps the world in PostgreSQL: every quote loads the pair's pools,
every landing is a transaction holding the pools' row locks. (B), this module, is one service
every function calls over the network with a Solana-RPC-like interface (JSON-RPC 2.0 over
HTTP/1.1); it holds the world (a `Market`) in its memory as the single writer, so a swap is
atomic without locks (nothing else runs between pricing it and applying it), and it writes every
landing, with the state of the pool it moved, to PostgreSQL in one group commit before answering,
so a signature lands once even across a restart (the ledger is read back at start-up). It exists
only so that loadtest/bench_world.py can measure both designs under the same load; nothing in the
engine uses it, and it lacks what a real one would need (drift, launches, token look-ups,
authentication, a bounded ledger cache, a standby).

Methods (params by position, as Solana's RPC):

* `getQuote [{"inputMint","outputMint","amount"}]` → `{"slot","quotes":[VenueQuote],
  "failures":[VenueFailure],"curves":[QuoteCurve]}`: every venue's quote and the split curves,
  on the service's state now (the same code the quote function runs on a loaded pair).
* `sendTransaction [Transaction]` (shared.domain.chain.Transaction as JSON) → `Landing`, once it is
  stored. Unlike Solana, which answers with the signature at once and leaves the outcome to
  `getSignatureStatuses`, this answers with the outcome: the engine's execute step waits for it.
* `getSignatureStatuses [[signature, …]]` → `{"context":{"slot"},"value":[null | {"slot",
  "confirmations":null,"err","confirmationStatus"}]}` ("processed": applied, not yet stored;
  "finalized": stored).
* `getSlot []` → the slot now being filled (one slot per group commit).

If a group commit fails, the memory is ahead of the disk and the process exits at once (a
restart reloads the world and the ledger from PostgreSQL; the callers of that batch saw no
answer and may send again: a signature lands once).

    .venv/bin/python -m loadtest.world_service --database-url postgresql://…/db [--port 8899]

The database must hold the schema and a seeded world (PgMarketStore.seed). The client,
`WorldClient`, batches concurrent calls into one JSON-RPC batch request per round trip, as
shared/batching.py's Coalescer batches statements (it is one), with reads and
`sendTransaction` in separate lanes so a quote never waits for a commit.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg
import msgspec

from functions.quote import SPLIT_MIN_SHARE_BPS, SPLIT_STEPS
from shared.adapters.batching import Coalescer
from shared.domain.chain import Landing, Transaction, land_on
from shared.adapters.postgres.market_store import _LEDGER_COLUMNS, PgMarketStore, pool_key
from shared.adapters.postgres.recordsets import recordset, rows_json
from shared.domain.messages import QuoteCurve, VenueFailure, VenueQuote
from shared.domain.market import Market, pair_key
from shared.domain.swap import InsufficientLiquidity

logger = logging.getLogger("world_service")

_pack = msgspec.msgpack.Encoder()
_json = msgspec.json.Encoder()


# ---------------------------------------------------------------- the pure part both designs share


class QuoteAnswer(msgspec.Struct, rename="camel"):
    slot: int
    quotes: list[VenueQuote]
    failures: list[VenueFailure]
    curves: list[QuoteCurve]


def price(market: Market, mint_in: str, mint_out: str, amount_in: int, now_s: float
          ) -> tuple[list[VenueQuote], list[VenueFailure], list[QuoteCurve]]:
    """Every venue's quote and the split curves on `market` (SimulatedVenues.price with every
    delay at zero and no simulated outage): what both designs compute for a quote, (A) in the
    caller's process on the pair it loaded, (B) in the service."""
    quotes: list[VenueQuote] = []
    failures: list[VenueFailure] = []
    for venue in market.venues_of(mint_in, mint_out):
        try:
            quotes.append(market.venue_quote(venue, mint_in, mint_out, amount_in, now_s, 0))
        except InsufficientLiquidity as exc:
            failures.append(VenueFailure(venue, str(exc), retryable=False))
    curves = market.split_curves(mint_in, mint_out, amount_in, now_s, SPLIT_STEPS, SPLIT_MIN_SHARE_BPS,
                                 {quote.venue: True for quote in quotes})
    return quotes, failures, curves


# ---------------------------------------------------------------- the service


class QuoteParams(msgspec.Struct, rename="camel"):
    input_mint: str
    output_mint: str
    amount: int


class _Call(msgspec.Struct):
    method: str
    params: msgspec.Raw = msgspec.Raw(b"[]")
    id: int | str | None | msgspec.UnsetType = msgspec.UNSET
    jsonrpc: str = "2.0"


_calls = msgspec.json.Decoder(list[_Call] | _Call)
_params = msgspec.json.Decoder(list[msgspec.Raw])
_quote_params = msgspec.json.Decoder(QuoteParams)
_transaction = msgspec.json.Decoder(Transaction)
_signatures = msgspec.json.Decoder(list[str])


class RpcFault(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


_LEDGER = "SELECT signature, succeeded, amount_out, slot, error FROM chain_transactions"
_NEXT_SLOT = "SELECT greatest(coalesce((SELECT max(slot) FROM chain_transactions), 0) + 1, nextval('chain_slot'))"
_STORE = f"""
WITH pools AS (
    UPDATE sim_pools AS p SET state = c.state FROM unnest($2::text[], $3::bytea[]) AS c(pool_key, state)
    WHERE p.pool_key = c.pool_key
)
INSERT INTO chain_transactions ({", ".join(name for name, _ in _LEDGER_COLUMNS)})
SELECT * FROM {recordset(_LEDGER_COLUMNS)}
"""
"""A group commit: the pools' states after the batch and its ledger rows, in one statement, as
PgMarketStore writes a landing batch (no ON CONFLICT: the single writer never lands a signature
twice, so a duplicate is a bug and fails the commit)."""


class World:
    """The single writer: the market in memory, every landing by signature, and the group commit
    that stores landings (ledger rows and the pools they moved) before their callers hear of them."""

    def __init__(self, db: asyncpg.Pool, market: Market, landed: dict[str, Landing], slot: int) -> None:
        self._db = db
        self.market = market
        self.landings = landed
        """Every landing applied, stored or not, by signature."""
        self.unstored: dict[str, asyncio.Future[Landing]] = {}
        self.slot = slot
        self._queue: list[tuple[tuple, dict[str, bytes], asyncio.Future[Landing], Landing]] = []
        self._writer: asyncio.Task | None = None
        self.commits = 0

    @classmethod
    async def load(cls, db: asyncpg.Pool) -> World:
        """The world and ledger as PostgreSQL holds them (the first start, or after a restart)."""
        market = await PgMarketStore(db).load_all()
        landed = {r["signature"]: Landing(r["signature"], bool(r["succeeded"]), int(r["amount_out"]), r["slot"],
                                          r["error"]) for r in await db.fetch(_LEDGER)}
        return cls(db, market, landed, await db.fetchval(_NEXT_SLOT))

    def quote(self, params: QuoteParams) -> QuoteAnswer:
        return QuoteAnswer(self.slot, *price(self.market, params.input_mint, params.output_mint, params.amount,
                                             time.time()))

    def send(self, tx: Transaction) -> Awaitable[Landing]:
        """Land `tx` now (once per signature) and give what resolves once it is stored."""
        pending = self.unstored.get(tx.signature)
        if pending is not None:
            return asyncio.shield(pending)
        done = self.landings.get(tx.signature)
        future: asyncio.Future[Landing] = asyncio.get_running_loop().create_future()
        if done is not None:
            future.set_result(done)
            return future
        landing = land_on(self.market, tx, self.slot, time.time())
        pools = {}
        if landing.succeeded:
            key = (tx.venue, pair_key(tx.input_mint, tx.output_mint))
            pools[pool_key(*key)] = _pack.encode(self.market.pools[key])  # its state after this swap
        row = (tx.signature, tx.order_id, tx.leg, tx.venue, tx.input_mint, tx.output_mint, tx.amount_in,
               landing.amount_out, int(landing.succeeded), landing.error, landing.slot, datetime.now(UTC))
        self.landings[tx.signature] = landing
        self.unstored[tx.signature] = future
        self._queue.append((row, pools, future, landing))
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write())
        return asyncio.shield(future)

    async def _write(self) -> None:
        """Group commit: everything applied while the previous batch was being written goes in
        one statement (the pools' states after the batch's last swap on each, with its ledger
        rows), in the order it was applied. A failure leaves the memory ahead of the disk: exit."""
        try:
            await asyncio.sleep(0)  # let this loop turn's callers join
            while self._queue:
                batch, self._queue = self._queue, []
                self.slot += 1  # what lands from now on lands in the next slot
                pools: dict[str, bytes] = {}
                for _, moved, _, _ in batch:
                    pools.update(moved)  # in order: the last state of each pool wins
                try:
                    await self._db.execute(_STORE, rows_json(_LEDGER_COLUMNS, [row for row, *_ in batch]),
                                           list(pools), list(pools.values()))
                except BaseException:
                    logger.exception("group commit failed: the memory is ahead of PostgreSQL; exiting")
                    os._exit(70)
                self.commits += 1
                for row, _, future, landing in batch:
                    del self.unstored[row[0]]
                    future.set_result(landing)
        finally:
            self._writer = None

    def statuses(self, signatures: list[str]) -> dict:
        value = []
        for signature in signatures:
            landing = self.landings.get(signature)
            if landing is None:
                value.append(None)
                continue
            value.append({"slot": landing.slot, "confirmations": None,
                          "err": None if landing.succeeded else {"error": landing.error},
                          "confirmationStatus": "processed" if signature in self.unstored else "finalized"})
        return {"context": {"slot": self.slot}, "value": value}


def _first(params: msgspec.Raw) -> msgspec.Raw:
    try:
        given = _params.decode(params)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise RpcFault(-32602, f"params must be an array: {exc}") from None
    if not given:
        raise RpcFault(-32602, "missing parameter")
    return given[0]


class WorldService:
    """The ASGI app: POST / with one JSON-RPC 2.0 call or a batch; everything else is a 404."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.world: World | None = None
        self._db: asyncpg.Pool | None = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if scope["method"] != "POST" or scope["path"] != "/":
            status, payload = 404, b'{"error":"POST / with JSON-RPC 2.0"}'
        else:
            status, payload = 200, await self.handle(body)
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self._db = await asyncpg.create_pool(self.database_url, min_size=2, max_size=2)
                    self.world = await World.load(self._db)
                except Exception as exc:  # noqa: BLE001 - uvicorn reports it and exits
                    await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._db is not None:
                    await self._db.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def handle(self, body: bytes) -> bytes:
        try:
            calls = _calls.decode(body)
        except msgspec.ValidationError as exc:
            return _json.encode({"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": str(exc)}})
        except msgspec.DecodeError as exc:
            return _json.encode({"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": str(exc)}})
        single = isinstance(calls, _Call)
        batch = [calls] if single else calls
        answers = [self._dispatch(call) for call in batch]  # in order: landings apply in the batch's order
        replies = []
        for call, answer in zip(batch, answers, strict=True):
            if isinstance(answer, Awaitable):
                try:
                    answer = await answer
                except Exception as exc:  # noqa: BLE001 - one call's failure is its own reply
                    answer = RpcFault(-32603, str(exc))
            if call.id is msgspec.UNSET:  # a notification: no reply
                continue
            if isinstance(answer, RpcFault):
                replies.append({"jsonrpc": "2.0", "id": call.id, "error": {"code": answer.code, "message": str(answer)}})
            else:
                replies.append({"jsonrpc": "2.0", "id": call.id, "result": answer})
        if single:
            return _json.encode(replies[0]) if replies else b""
        return _json.encode(replies)

    def _dispatch(self, call: _Call):
        world = self.world
        try:
            if call.method == "getQuote":
                return world.quote(_quote_params.decode(_first(call.params)))
            if call.method == "sendTransaction":
                return world.send(_transaction.decode(_first(call.params)))
            if call.method == "getSignatureStatuses":
                return world.statuses(_signatures.decode(_first(call.params)))
            if call.method == "getSlot":
                return world.slot
            return RpcFault(-32601, f"method not found: {call.method}")
        except RpcFault as fault:
            return fault
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            return RpcFault(-32602, str(exc))
        except Exception as exc:  # noqa: BLE001
            return RpcFault(-32603, f"{type(exc).__name__}: {exc}")


def create_app(database_url: str | None = None) -> WorldService:
    return WorldService(database_url or os.environ["DATABASE_URL"])


# ---------------------------------------------------------------- the client


class RpcError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class _Reply(msgspec.Struct):
    id: int | None = None
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: dict | None = None


_replies = msgspec.json.Decoder(list[_Reply] | _Reply)
_landing = msgspec.json.Decoder(Landing)
_quote_answer = msgspec.json.Decoder(QuoteAnswer)
_int = msgspec.json.Decoder(int)


class _StreamConnection:
    """One keep-alive HTTP/1.1 connection over asyncio streams: POST a body, read the answer
    (Content-Length framing, as the service always sends)."""

    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._head = (f"POST / HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
                      "Content-Length: ").encode()
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> bytes:
        for attempt in (1, 2):  # a keep-alive connection the server closed: once more on a new one
            if self._writer is None:
                self._reader, self._writer = await asyncio.open_connection(self._host, self._port)
            try:
                return await self._exchange(body)
            except (OSError, asyncio.IncompleteReadError):
                await self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, body: bytes) -> bytes:
        self._writer.write(b"%s%d\r\n\r\n%s" % (self._head, len(body), body))
        head = await self._reader.readuntil(b"\r\n\r\n")
        status = head[9:12]
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length is None:
            raise OSError("no Content-Length in the answer")
        payload = await self._reader.readexactly(length)
        if status != b"200":
            raise RpcError(-32000, f"HTTP {status.decode()}: {payload[:200]!r}")
        return payload

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except OSError:
                pass
        self._reader = self._writer = None


class _HttpxConnection:
    """The same over httpx.AsyncClient (one client per lane connection, keep-alive)."""

    def __init__(self, url: str) -> None:
        import httpx

        self._client = httpx.AsyncClient(base_url=url, limits=httpx.Limits(max_connections=1,
                                                                           max_keepalive_connections=1),
                                         timeout=60)

    async def post(self, body: bytes) -> bytes:
        answer = await self._client.post("/", content=body, headers={"Content-Type": "application/json"})
        if answer.status_code != 200:
            raise RpcError(-32000, f"HTTP {answer.status_code}: {answer.content[:200]!r}")
        return answer.content

    async def close(self) -> None:
        await self._client.aclose()


class _Lane:
    """Calls made while a batch request is on the wire travel together in the next one, over
    `connections` keep-alive connections (one batch request on each at a time)."""

    def __init__(self, make, connections: int, max_batch: int) -> None:
        self._idle: asyncio.Queue = asyncio.Queue()
        self._all = [make() for _ in range(connections)]
        for connection in self._all:
            self._idle.put_nowait(connection)
        self.calls = Coalescer(self._flush, max_batch=max_batch, max_in_flight=connections)

    async def _flush(self, calls: list[tuple[str, object]]) -> list[msgspec.Raw | RpcError]:
        body = _json.encode([{"jsonrpc": "2.0", "id": n, "method": method, "params": params}
                             for n, (method, params) in enumerate(calls)])
        connection = await self._idle.get()
        try:
            payload = await connection.post(body)
        finally:
            self._idle.put_nowait(connection)
        replies = _replies.decode(payload)
        if isinstance(replies, _Reply):  # the whole batch was refused
            raise RpcError(replies.error.get("code", -32000), replies.error.get("message", ""))
        by_id = {reply.id: reply for reply in replies}
        return [by_id[n].result if by_id[n].error is None
                else RpcError(by_id[n].error.get("code", -32000), by_id[n].error.get("message", ""))
                for n in range(len(calls))]

    async def close(self) -> None:
        for connection in self._all:
            await connection.close()


class WorldClient:
    """The world service as a function process would call it: concurrent calls batched into
    one JSON-RPC batch request per round trip; reads and `sendTransaction` in separate lanes
    (a batch's answer waits for its slowest call: a quote must not wait for a commit)."""

    def __init__(self, url: str, connections_per_lane: int = 2, max_batch: int = 256,
                 transport: str = "streams") -> None:
        if transport == "streams":
            parts = urlsplit(url)
            make = lambda: _StreamConnection(parts.hostname, parts.port)
        elif transport == "httpx":
            make = lambda: _HttpxConnection(url)
        else:
            raise ValueError(f"unknown transport {transport!r}")
        self._reads = _Lane(make, connections_per_lane, max_batch)
        self._writes = _Lane(make, connections_per_lane, max_batch)

    async def call(self, method: str, params: list, write: bool = False) -> msgspec.Raw:
        answer = await (self._writes if write else self._reads).calls.submit((method, params))
        if isinstance(answer, RpcError):
            raise answer
        return answer

    async def get_quote(self, input_mint: str, output_mint: str, amount: int) -> QuoteAnswer:
        raw = await self.call("getQuote", [{"inputMint": input_mint, "outputMint": output_mint, "amount": amount}])
        return _quote_answer.decode(raw)

    async def send_transaction(self, tx: Transaction) -> Landing:
        return _landing.decode(await self.call("sendTransaction", [tx], write=True))

    async def get_signature_statuses(self, signatures: list[str]) -> dict:
        return msgspec.json.decode(await self.call("getSignatureStatuses", [signatures]))

    async def get_slot(self) -> int:
        return _int.decode(await self.call("getSlot", []))

    async def close(self) -> None:
        await self._reads.close()
        await self._writes.close()


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    uvicorn.run(create_app(args.database_url), host=args.host, port=args.port, loop="uvloop", http="httptools",
                lifespan="on", log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
