"""The simulated world in PostgreSQL, shared by every process as a chain's state is: pairs, pools
and tokens in `sim_*` tables, landed transactions in `chain_transactions`.

Reads load a snapshot (the pools are msgpack, a few µs to decode). Every change holds the row
locks of the pools it touches for the length of one transaction, so two processes filling
against the same pool never both use the reserves from before the other's swap: landings are
priced on the locked rows, written with their ledger rows in one statement, and committed
together (a signature that already landed gives back its stored landing, in the same
transaction). Landings and loads of concurrent callers are batched (group commit): one
transaction lands every swap that arrived while the previous one was being written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime

import asyncpg
import msgspec

from shared.adapters.batching import Coalescer
from shared.domain.chain import Landing, Transaction, land_on
from shared.adapters.postgres.recordsets import recordset, rows_json
from shared.domain.tokens import Token
from shared.domain.market import Market, PairState, Pool, pair_key

_pack = msgspec.msgpack.Encoder()
_pair = msgspec.msgpack.Decoder(PairState)
_pool = msgspec.msgpack.Decoder(Pool)
_landed = msgspec.json.Decoder(list[tuple[str, bool, int, int, str | None]])

_LOAD_ALL = """
SELECT p.pair_key, p.state AS pair, o.venue, o.state AS pool
FROM sim_pairs p LEFT JOIN sim_pools o ON o.pair_key = p.pair_key
"""
_LOAD = _LOAD_ALL + " WHERE p.pair_key = ANY($1::text[])"
_LOCK_PAIRS = "SELECT pair_key, state FROM sim_pairs WHERE $1::text[] IS NULL OR pair_key = ANY($1) " \
              "ORDER BY pair_key FOR UPDATE"
_LOCK_POOLS = "SELECT pool_key, pair_key, venue, state FROM sim_pools WHERE $1::text[] IS NULL OR pair_key = ANY($1) " \
              "ORDER BY pool_key FOR UPDATE"
_UPDATE_PAIRS = "UPDATE sim_pairs AS p SET state = i.state FROM unnest($1::text[], $2::bytea[]) AS i(pair_key, state)" \
                " WHERE p.pair_key = i.pair_key"
_UPDATE_POOLS = "UPDATE sim_pools AS p SET state = i.state FROM unnest($1::text[], $2::bytea[]) AS i(pool_key, state)" \
                " WHERE p.pool_key = i.pool_key"
_INSERT = """
WITH pairs AS (
    INSERT INTO sim_pairs (pair_key, state) SELECT * FROM unnest($1::text[], $2::bytea[]) ON CONFLICT DO NOTHING
), tokens AS (
    INSERT INTO sim_tokens (mint, symbol, decimals) SELECT * FROM unnest($7::text[], $8::text[], $9::int[])
    ON CONFLICT DO NOTHING
)
INSERT INTO sim_pools (pool_key, pair_key, venue, state)
SELECT * FROM unnest($3::text[], $4::text[], $5::text[], $6::bytea[]) ON CONFLICT DO NOTHING RETURNING pool_key
"""
"""New pairs, pools and their tokens in one statement (a launch's, or the first process's world)."""
_LOCK_BY_KEY = "SELECT pool_key, pair_key, venue, state, (SELECT nextval('chain_slot')) AS slot FROM sim_pools" \
               " WHERE pool_key = ANY($1) ORDER BY pool_key FOR UPDATE"
_SLOT_AND_LANDED = """
SELECT nextval('chain_slot') AS slot,
       (SELECT coalesce(json_agg(json_build_array(signature, succeeded = 1, amount_out, slot, error)), '[]')
        FROM chain_transactions WHERE signature = ANY($1)) AS landed
"""
"""Read after the pools' locks are held (a new statement, a new snapshot): a landing committed by
whoever held them before is seen."""
_LEDGER_COLUMNS = (
    ("signature", "text"), ("order_id", "uuid"), ("leg", "int"), ("venue", "text"), ("input_mint", "text"),
    ("output_mint", "text"), ("amount_in", "numeric"), ("amount_out", "numeric"), ("succeeded", "int"),
    ("error", "text"), ("slot", "int"), ("landed_at", "timestamptz"),
)
_LAND = f"""
WITH pools AS (
    UPDATE sim_pools AS p SET state = c.state FROM unnest($2::text[], $3::bytea[]) AS c(pool_key, state)
    WHERE p.pool_key = c.pool_key
), landed AS (
    INSERT INTO chain_transactions ({", ".join(name for name, _ in _LEDGER_COLUMNS)})
    SELECT * FROM {recordset(_LEDGER_COLUMNS)} ON CONFLICT (signature) DO NOTHING RETURNING 1
)
SELECT count(*) FROM landed
"""
"""The pools after a batch of swaps and the batch's ledger rows, in one statement; how many rows
were written. Fewer than the batch: another process landed one of these signatures meanwhile on a
pool no lock covered (a venue without a pool), and the batch runs again (see `_land_many`)."""


class _Raced(Exception):
    """A signature of the batch landed elsewhere after the batch read the ledger: roll back, retry."""


def pool_key(venue: str, key: str) -> str:
    return f"{venue}:{key}"


def _market(rows: Iterable[asyncpg.Record]) -> Market:
    market = Market()
    for row in rows:
        if row["pair_key"] not in market.pairs:
            market.pairs[row["pair_key"]] = _pair.decode(row["pair"])
        if row["pool"] is not None:
            market.pools[(row["venue"], row["pair_key"])] = _pool.decode(row["pool"])
    return market


class PgMarketStore:
    def __init__(self, pool: asyncpg.Pool, now_s: Callable[[], float] = time.time, max_batch: int = 256) -> None:
        self._db = pool
        self._now_s = now_s
        self._loads = Coalescer(self._load_many, max_batch=max_batch, max_in_flight=2)
        self._lands = Coalescer(self._land_many, max_batch=max_batch, max_in_flight=1,
                                unique=lambda tx: tx.signature)
        self._finds = Coalescer(self._find_many, max_batch=max_batch, max_in_flight=2)

    async def seed(self, market: Market) -> None:
        """Create the world from `market` where it does not exist yet (every process may call this
        at start-up; the first one's world stays)."""
        async with self._db.acquire() as connection, connection.transaction():
            await self._insert(connection, market, market.pairs, market.pools)

    async def load(self, mint_a: str, mint_b: str) -> Market:
        return await self._loads.submit(pair_key(mint_a, mint_b))

    async def _load_many(self, keys: list[str]) -> list[Market]:
        rows = await self._db.fetch(_LOAD, sorted(set(keys)))
        by_key: dict[str, list[asyncpg.Record]] = {}
        for row in rows:
            by_key.setdefault(row["pair_key"], []).append(row)
        markets = {key: _market(found) for key, found in by_key.items()}
        return [markets.get(key) or Market() for key in keys]

    async def load_all(self) -> Market:
        return _market(await self._db.fetch(_LOAD_ALL))

    async def modify(self, change: Callable[[Market], object], mints: Iterable[tuple[str, str]] | None = None
                     ) -> object:
        keys = None if mints is None else sorted({pair_key(a, b) for a, b in mints})
        async with self._db.acquire() as connection, connection.transaction():
            pairs = {r["pair_key"]: r["state"] for r in await connection.fetch(_LOCK_PAIRS, keys)}
            pools = {(r["venue"], r["pair_key"]): r["state"] for r in await connection.fetch(_LOCK_POOLS, keys)}
            market = Market({key: _pair.decode(raw) for key, raw in pairs.items()},
                            {key: _pool.decode(raw) for key, raw in pools.items()})
            result = change(market)
            await self._write(connection, market, pairs, pools)
        return result

    async def _write(self, connection: asyncpg.Connection, market: Market, pairs: dict[str, bytes],
                     pools: dict[tuple[str, str], bytes]) -> None:
        """Rows that changed are updated, new ones inserted (a pool another process inserted
        meanwhile: ValueError, nothing is written)."""
        changed_pairs = {key: _pack.encode(state) for key, state in market.pairs.items() if key in pairs}
        changed_pairs = {key: raw for key, raw in changed_pairs.items() if raw != pairs[key]}
        changed_pools = {key: _pack.encode(pool) for key, pool in market.pools.items() if key in pools}
        changed_pools = {key: raw for key, raw in changed_pools.items() if raw != pools[key]}
        if changed_pairs:
            await connection.execute(_UPDATE_PAIRS, list(changed_pairs), list(changed_pairs.values()))
        if changed_pools:
            await connection.execute(_UPDATE_POOLS, [pool_key(*key) for key in changed_pools],
                                     list(changed_pools.values()))
        new_pairs = {key: state for key, state in market.pairs.items() if key not in pairs}
        new_pools = {key: pool for key, pool in market.pools.items() if key not in pools}
        if new_pairs or new_pools:
            await self._insert(connection, market, new_pairs, new_pools, strict=True)

    @staticmethod
    async def _insert(connection: asyncpg.Connection, market: Market, pairs: dict[str, PairState],
                      pools: dict[tuple[str, str], Pool], strict: bool = False) -> None:
        keys = [pool_key(*key) for key in pools]
        tokens = {t.mint: t for key in {k for _, k in pools} | set(pairs)
                  for t in (market.pairs[key].base, market.pairs[key].quote)}
        inserted = await connection.fetch(
            _INSERT, list(pairs), [_pack.encode(state) for state in pairs.values()],
            keys, [k for _, k in pools], [v for v, _ in pools], [_pack.encode(pool) for pool in pools.values()],
            list(tokens), [t.symbol for t in tokens.values()], [t.decimals for t in tokens.values()])
        if strict and len(inserted) != len(keys):
            raise ValueError("that venue already has a pool for this pair")

    async def land(self, tx: Transaction) -> Landing:
        return await self._lands.submit(tx)

    async def _land_many(self, txs: list[Transaction]) -> list[Landing]:
        """One transaction: lock the pools these swaps touch, take a slot, read which signatures
        already landed, price each new swap on the locked state in order, write pools and ledger.
        The pools' locks keep two processes from landing one signature twice; a swap on a venue with
        no pool has no lock, so its ledger row's key decides: if another process wrote it first,
        this batch is rolled back and run again, and finds that landing."""
        try:  # the common case: nobody else is landing these signatures
            return await self._land_once(txs, read_ledger=False)
        except _Raced:
            pass
        while True:
            try:
                return await self._land_once(txs, read_ledger=True)
            except _Raced:
                continue

    async def _land_once(self, txs: list[Transaction], read_ledger: bool) -> list[Landing]:
        """Without `read_ledger`, a signature that already landed shows as a conflict on its ledger
        row, which rolls everything back (_Raced): a caller who may resend a landed transaction
        asks `find_landing` first, so that only happens when two deliveries race."""
        keys = sorted({pool_key(tx.venue, pair_key(tx.input_mint, tx.output_mint)) for tx in txs})
        async with self._db.acquire() as connection, connection.transaction():
            rows = await connection.fetch(_LOCK_BY_KEY, keys)
            stored: dict[str, Landing] = {}
            if read_ledger or not rows:
                ledger_now = await connection.fetchrow(_SLOT_AND_LANDED, [tx.signature for tx in txs])
                stored = {sig: Landing(sig, ok, int(out), at_slot, error)
                          for sig, ok, out, at_slot, error in _landed.decode(ledger_now["landed"])}
            slot = rows[0]["slot"] if rows else ledger_now["slot"]
            market = Market(pools={(r["venue"], r["pair_key"]): _pool.decode(r["state"]) for r in rows})
            before = {(r["venue"], r["pair_key"]): r["state"] for r in rows}
            now, landed_at, results, ledger = self._now_s(), datetime.now(UTC), [], []
            for tx in txs:
                if tx.signature in stored:
                    results.append(stored[tx.signature])
                    continue
                landing = land_on(market, tx, slot, now)
                stored[tx.signature] = landing
                results.append(landing)
                ledger.append((tx.signature, tx.order_id, tx.leg, tx.venue, tx.input_mint, tx.output_mint, tx.amount_in,
                               landing.amount_out, int(landing.succeeded), landing.error, slot, landed_at))
            changed = {key: raw for key, pool in market.pools.items() if (raw := _pack.encode(pool)) != before[key]}
            if ledger:
                written = await connection.fetchval(_LAND, rows_json(_LEDGER_COLUMNS, ledger),
                                                    [pool_key(*key) for key in changed], list(changed.values()))
                if written != len(ledger):
                    raise _Raced
        return results

    async def find_landing(self, signature: str) -> Landing | None:
        return await self._finds.submit(signature)

    async def _find_many(self, signatures: list[str]) -> list[Landing | None]:
        rows = await self._db.fetch("SELECT signature, succeeded, amount_out, slot, error FROM chain_transactions"
                                    " WHERE signature = ANY($1::text[])", signatures)
        found = {r["signature"]: Landing(r["signature"], bool(r["succeeded"]), int(r["amount_out"]), r["slot"],
                                         r["error"]) for r in rows}
        return [found.get(signature) for signature in signatures]

    async def find_tokens(self, assets: Iterable[str]) -> list[Token]:
        wanted = list(assets)
        rows = await self._db.fetch("SELECT mint, symbol, decimals FROM sim_tokens"
                                    " WHERE mint = ANY($1::text[]) OR upper(symbol) = ANY($2::text[])",
                                    wanted, [asset.upper() for asset in wanted])
        return [Token(r["symbol"], r["mint"], r["decimals"]) for r in rows]
