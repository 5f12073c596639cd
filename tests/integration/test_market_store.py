"""One contract for the market store (the shared simulated world and its ledger), run on the
PostgreSQL adapter and on the in-memory one the unit tests use, so the fake cannot drift from the
real thing; then what only sharing can break: two processes (two stores on two connection pools)
landing, modifying and seeding the same world at once. PostgreSQL: a fresh migrated database per
test (conftest's `database`); the store needs no Redis."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import asyncpg
import pytest
import pytest_asyncio

from shared.domain.chain import Landing, Transaction, transaction_signature
from shared.domain.orders import FailureReason
from shared.adapters.postgres.market_store import PgMarketStore
from shared.domain.tokens import BONK, JUP, SOL, USDC, USDT, Token
from shared.domain.market import METEORA, RAYDIUM, Market, PairSpec, pair_key
from shared.adapters.sim.memory_store import MemoryMarketStore
from shared.domain.raydium import ConstantProductPool

NOW = 1_800_000_000.0
NEW = Token("NewT", "9xQeWvG816bUx9EPjHmaT23yvVM2ZWbrrpZb9PusVFin", 6)
UNLISTED = "4k3Dyjzvzp8eMZWUXbBCjEvwSkkk59S5iCNLY3QrkX6R"

SOL_USDC = pair_key(SOL.mint, USDC.mint)
# Market.initial()'s Raydium SOL/USDC pool: 10,000 SOL and 1,522,500 USDC (150 +150 bps).
# Selling 1 SOL: fee ceil(10^9 · 25 / 10^4) = 2,500,000; net 997,500,000;
# out = 1,522,500,000,000 · 997,500,000 // (10^13 + 997,500,000) = 151,854,227 (151.854227 USDC).
ONE_SOL_OUT = 151_854_227


@dataclass(frozen=True)
class LedgerRow:
    signature: str
    venue: str
    input_mint: str
    output_mint: str
    amount_in: int
    amount_out: int
    succeeded: bool


@dataclass
class Subject:
    kind: str
    store: PgMarketStore | MemoryMarketStore
    ledger: Callable[[], Awaitable[list[LedgerRow]]]


def memory_subject() -> Subject:
    store = MemoryMarketStore(Market.initial(), now_s=lambda: NOW)

    async def ledger() -> list[LedgerRow]:
        return [LedgerRow(tx.signature, tx.venue, tx.input_mint, tx.output_mint, tx.amount_in, landing.amount_out,
                          landing.succeeded) for tx, landing in store.landed.values()]

    return Subject("memory", store, ledger)


async def pg_ledger(pool: asyncpg.Pool) -> list[LedgerRow]:
    rows = await pool.fetch("SELECT signature, venue, input_mint, output_mint, amount_in, amount_out, succeeded"
                            " FROM chain_transactions")
    return [LedgerRow(r["signature"], r["venue"], r["input_mint"], r["output_mint"], int(r["amount_in"]),
                      int(r["amount_out"]), bool(r["succeeded"])) for r in rows]


@pytest_asyncio.fixture(params=["postgres", "memory"])
async def subject(request):
    if request.param == "memory":
        yield memory_subject()
        return
    pool = await asyncpg.create_pool(request.getfixturevalue("database"), min_size=1, max_size=4)
    try:
        store = PgMarketStore(pool, now_s=lambda: NOW)
        await store.seed(Market.initial())
        yield Subject("postgres", store, lambda: pg_ledger(pool))
    finally:
        await pool.close()


@pytest_asyncio.fixture
async def pools(database):
    """Two connection pools on one database: two processes sharing one world (seeded by the first)."""
    first = await asyncpg.create_pool(database, min_size=1, max_size=4)
    second = await asyncpg.create_pool(database, min_size=1, max_size=4)
    try:
        await PgMarketStore(first).seed(Market.initial())
        yield first, second
    finally:
        await asyncio.gather(first.close(), second.close())


def swap(n: int, venue: str, mint_in: str, mint_out: str, amount_in: int, min_out: int = 0) -> Transaction:
    """Swap number `n` (its order id, hence its signature, follows from n)."""
    order_id = str(uuid.UUID(int=n + 1))
    return Transaction(transaction_signature(order_id, 0), order_id, 0, venue, mint_in, mint_out, amount_in, min_out)


def sell_one_sol(n: int = 1, min_out: int = 0) -> Transaction:
    return swap(n, RAYDIUM, SOL.mint, USDC.mint, 10**9, min_out)


def reserves(market: Market) -> dict[tuple[str, str, str], int]:
    """Every pool's reserve of each of its tokens: (venue, pair key, mint) → base units."""
    return {(venue, key, mint): pool.reserve_of(mint)
            for (venue, key), pool in market.pools.items() for mint in (pool.mint_x, pool.mint_y)}


def net_flows(ledger: list[LedgerRow]) -> Counter:
    """What the ledger says went into (+) and out of (−) each pool, per token."""
    flows: Counter = Counter()
    for row in ledger:
        if row.succeeded:
            key = pair_key(row.input_mint, row.output_mint)
            flows[(row.venue, key, row.input_mint)] += row.amount_in
            flows[(row.venue, key, row.output_mint)] -= row.amount_out
    return flows


async def assert_conserved(before: Market, after: Market, ledger: list[LedgerRow]) -> None:
    """For every pool: reserves after − reserves before = tokens in − tokens out, to the base unit."""
    start, end, flows = reserves(before), reserves(after), net_flows(ledger)
    assert set(start) == set(end)
    moved = {key: end[key] - start[key] for key in start if end[key] != start[key]}
    assert moved == {key: flow for key, flow in flows.items() if flow}


# --- the contract, on both adapters -------------------------------------------------------------


async def test_load_gives_the_pairs_pools_in_either_mint_order_and_nothing_for_an_unknown_pair(subject):
    initial = Market.initial()
    for a, b in ((SOL.mint, USDC.mint), (USDC.mint, SOL.mint)):
        market = await subject.store.load(a, b)
        assert list(market.pairs) == [SOL_USDC]
        assert market.pairs[SOL_USDC] == initial.pairs[SOL_USDC]
        assert market.pools == {(RAYDIUM, SOL_USDC): initial.pools[(RAYDIUM, SOL_USDC)],
                                (METEORA, SOL_USDC): initial.pools[(METEORA, SOL_USDC)]}
    unknown = await subject.store.load(SOL.mint, UNLISTED)
    assert (unknown.pairs, unknown.pools, unknown.has_pair(SOL.mint, UNLISTED)) == ({}, {}, False)
    both = await asyncio.gather(subject.store.load(USDC.mint, SOL.mint), subject.store.load(JUP.mint, USDC.mint),
                                subject.store.load(UNLISTED, SOL.mint))  # one batch on PostgreSQL
    assert [list(m.pairs) for m in both] == [[SOL_USDC], [pair_key(JUP.mint, USDC.mint)], []]


async def test_load_all_gives_every_pair_and_pool(subject):
    initial, market = Market.initial(), await subject.store.load_all()
    assert market.pairs == initial.pairs
    assert market.pools == initial.pools
    assert len(market.pools) == 10


async def test_a_signature_lands_once_and_moves_the_pool_once(subject):
    tx = sell_one_sol()
    first = await subject.store.land(tx)
    assert (first.signature, first.succeeded, first.amount_out, first.error) == (tx.signature, True, ONE_SOL_OUT, None)
    assert await subject.store.land(tx) == first
    assert await subject.store.find_landing(tx.signature) == first
    assert await subject.store.find_landing(sell_one_sol(2).signature) is None
    pool = (await subject.store.load(SOL.mint, USDC.mint)).pools[(RAYDIUM, SOL_USDC)]
    assert (pool.reserve_x, pool.reserve_y) == (10_001_000_000_000, 1_522_500_000_000 - ONE_SOL_OUT)
    assert [(row.signature, row.amount_out) for row in await subject.ledger()] == [(tx.signature, ONE_SOL_OUT)]


async def test_the_same_signature_landed_concurrently_lands_once(subject):
    tx, other = sell_one_sol(1), sell_one_sol(2)
    landings = await asyncio.gather(subject.store.land(tx), subject.store.land(tx), subject.store.land(other),
                                    subject.store.land(tx))
    assert landings[0] == landings[1] == landings[3]
    assert landings[0].amount_out == ONE_SOL_OUT  # whichever of the two swaps came first
    assert {landings[0].amount_out, landings[2].amount_out} == {ONE_SOL_OUT, 151_823_900}
    pool = (await subject.store.load(SOL.mint, USDC.mint)).pools[(RAYDIUM, SOL_USDC)]
    assert pool.reserve_x == 10_002_000_000_000  # two swaps of 1 SOL, not four
    assert pool.reserve_y == 1_522_500_000_000 - ONE_SOL_OUT - 151_823_900
    assert sorted(row.signature for row in await subject.ledger()) == sorted([tx.signature, other.signature])
    assert await asyncio.gather(subject.store.find_landing(tx.signature),
                                subject.store.find_landing(other.signature)) == [landings[0], landings[2]]


async def test_a_swap_below_its_minimum_fails_with_slippage_and_moves_nothing(subject):
    before = await subject.store.load_all()
    refused = await subject.store.land(sell_one_sol(1, min_out=ONE_SOL_OUT + 1))
    assert (refused.succeeded, refused.amount_out, refused.error) == (False, 0, FailureReason.SLIPPAGE)
    assert await subject.store.find_landing(refused.signature) == refused
    assert await subject.store.land(sell_one_sol(1, min_out=ONE_SOL_OUT + 1)) == refused  # refused once, for good
    assert (await subject.store.load_all()).pools == before.pools
    exact = await subject.store.land(sell_one_sol(2, min_out=ONE_SOL_OUT))  # exactly the minimum: lands
    assert (exact.succeeded, exact.amount_out) == (True, ONE_SOL_OUT)


async def test_a_swap_on_a_venue_without_a_pool_fails_without_raising(subject):
    before = await subject.store.load_all()
    no_pair = swap(1, METEORA, SOL.mint, JUP.mint, 10**9)  # nobody trades SOL/JUP
    no_venue = swap(2, "orca", SOL.mint, USDC.mint, 10**9)
    for tx in (no_pair, no_venue):
        landing = await subject.store.land(tx)
        assert (landing.succeeded, landing.amount_out) == (False, 0)
        assert landing.error.startswith("insufficient liquidity")
        assert await subject.store.land(tx) == landing
        assert await subject.store.find_landing(tx.signature) == landing
    assert (await subject.store.load_all()).pools == before.pools


async def test_modify_returns_the_changes_result_and_set_price_moves_what_load_sees(subject):
    def move(market: Market) -> str:
        market.set_price(SOL.mint, USDC.mint, Decimal(160), RAYDIUM)
        return "moved"

    assert await subject.store.modify(move, [(USDC.mint, SOL.mint)]) == "moved"
    market = await subject.store.load(SOL.mint, USDC.mint)
    state = market.pairs[SOL_USDC]
    assert (state.reference, state.offsets_bps) == (Decimal(160), {RAYDIUM: 0, METEORA: -150})
    assert abs(market.spot_price(RAYDIUM, SOL.mint, USDC.mint) - 160) < Decimal("1e-9")
    initial = Market.initial()
    assert market.pools[(METEORA, SOL_USDC)] == initial.pools[(METEORA, SOL_USDC)]  # one venue only
    pool = market.pools[(RAYDIUM, SOL_USDC)]
    k = 10**13 * 1_522_500_000_000
    assert k - pool.reserve_x * pool.reserve_y < pool.reserve_x  # the same k, bar rounding
    others = await subject.store.load_all()
    assert {key: p for key, p in others.pools.items() if key[1] != SOL_USDC} == {
        key: p for key, p in initial.pools.items() if key[1] != SOL_USDC}

    # every pair (mints None), and what a later landing prices on
    assert await subject.store.modify(lambda m: m.set_price(JUP.mint, USDC.mint, Decimal(1))) is None
    jup = await subject.store.load(JUP.mint, USDC.mint)
    assert abs(jup.spot_price(RAYDIUM, JUP.mint, USDC.mint) - 1) < Decimal("1e-9")
    expected = pool.quote(SOL.mint, 10**9).amount_out
    assert (await subject.store.land(sell_one_sol())).amount_out == expected > ONE_SOL_OUT  # at 160, not 152.25


async def test_a_change_that_raises_writes_nothing(subject):
    before = await subject.store.load_all()

    def half_done(market: Market) -> None:
        market.set_price(SOL.mint, USDC.mint, Decimal(300))  # moves the pair and both pools …
        market.launch(RAYDIUM, NEW, SOL, 10**12, 10**11)  # … adds one …
        raise RuntimeError("… then fails")

    with pytest.raises(RuntimeError):
        await subject.store.modify(half_done)
    after = await subject.store.load_all()
    assert (after.pairs, after.pools) == (before.pairs, before.pools)
    assert await subject.store.find_tokens([NEW.mint]) == []
    landing = await subject.store.land(sell_one_sol())
    assert landing.amount_out == ONE_SOL_OUT  # priced on the untouched pool


async def test_a_loaded_market_is_a_snapshot(subject):
    """What a caller loaded does not move under it (a quote priced on a snapshot stays the quote
    of that snapshot), nor does anything the caller does to it reach the store."""
    one, everything = await subject.store.load(SOL.mint, USDC.mint), await subject.store.load_all()
    await subject.store.land(sell_one_sol())
    await subject.store.modify(lambda m: m.set_price(SOL.mint, USDC.mint, Decimal(170)), [(SOL.mint, USDC.mint)])
    initial = Market.initial()
    assert one.pools[(RAYDIUM, SOL_USDC)] == initial.pools[(RAYDIUM, SOL_USDC)]
    assert everything.pools == initial.pools and everything.pairs == initial.pairs
    stored = await subject.store.load_all()
    assert stored.pairs[SOL_USDC].reference == Decimal(170)
    scratch, everything = await subject.store.load(SOL.mint, USDC.mint), await subject.store.load_all()
    scratch.set_price(SOL.mint, USDC.mint, Decimal(1))
    scratch.outcome(RAYDIUM, SOL.mint, USDC.mint, 10**12, NOW, apply=True)
    everything.launch(METEORA, NEW, SOL, 10**12, 10**11)
    everything.pools[(METEORA, SOL_USDC)].amounts_x[0] += 1
    reloaded = await subject.store.load_all()
    assert (reloaded.pairs, reloaded.pools) == (stored.pairs, stored.pools)
    assert (METEORA, pair_key(NEW.mint, SOL.mint)) not in reloaded.pools
    assert abs(reloaded.spot_price(RAYDIUM, SOL.mint, USDC.mint) - 170) < Decimal("1e-9")


async def test_launch_adds_a_pair_a_pool_and_its_token(subject):
    # 1,000,000 NewT against 100 SOL: 0.0001 SOL per NewT
    pool = await subject.store.modify(lambda m: m.launch(RAYDIUM, NEW, SOL, 10**12, 10**11), [(NEW.mint, SOL.mint)])
    assert pool == ConstantProductPool(NEW.mint, SOL.mint, 10**12, 10**11)
    key = pair_key(NEW.mint, SOL.mint)
    market = await subject.store.load(SOL.mint, NEW.mint)
    assert market.pools == {(RAYDIUM, key): pool}
    assert (market.pairs[key].base, market.pairs[key].quote, market.pairs[key].reference) == (
        NEW, SOL, Decimal("0.0001"))
    assert market.spot_price(RAYDIUM, NEW.mint, SOL.mint) == Decimal("0.0001")
    for assets in ([NEW.mint], ["NEWT"], ["newt"], ["nEwT", NEW.mint]):
        assert await subject.store.find_tokens(assets) == [NEW]
    assert sorted(await subject.store.find_tokens(["sol", USDC.mint, "bonk", "unknown", UNLISTED]),
                  key=lambda t: t.symbol) == [BONK, SOL, USDC]
    assert (await subject.store.load_all()).pairs.keys() == Market.initial().pairs.keys() | {key}

    # the pool trades: selling 10,000 NewT (10^10): fee 25,000,000, net 9,975,000,000,
    # out = 10^11 · 9,975,000,000 // (10^12 + 9,975,000,000) = 987,648,209 lamports
    landing = await subject.store.land(swap(1, RAYDIUM, NEW.mint, SOL.mint, 10**10))
    assert (landing.succeeded, landing.amount_out) == (True, 987_648_209)
    # the other venue may open a pool on the same pair: the pair's state stays
    await subject.store.modify(lambda m: m.launch(METEORA, NEW, SOL, 10**12, 10**11), [(NEW.mint, SOL.mint)])
    market = await subject.store.load(NEW.mint, SOL.mint)
    assert set(market.pools) == {(RAYDIUM, key), (METEORA, key)}
    assert market.pairs[key].reference == Decimal("0.0001")


async def test_launching_the_same_venue_and_pair_twice_raises_and_writes_nothing(subject):
    key = pair_key(NEW.mint, SOL.mint)
    await subject.store.modify(lambda m: m.launch(RAYDIUM, NEW, SOL, 10**12, 10**11), [(NEW.mint, SOL.mint)])
    before = await subject.store.load_all()
    for mints in ([(NEW.mint, SOL.mint)], None):
        with pytest.raises(ValueError):
            await subject.store.modify(lambda m: m.launch(RAYDIUM, NEW, SOL, 5 * 10**12, 10**9), mints)
    after = await subject.store.load_all()
    assert (after.pairs, after.pools) == (before.pairs, before.pools)
    assert after.pools[(RAYDIUM, key)] == ConstantProductPool(NEW.mint, SOL.mint, 10**12, 10**11)
    assert await subject.store.find_tokens([NEW.mint]) == [NEW]


async def test_reserves_change_by_exactly_the_ledgers_net_flows(subject):
    """Many swaps both ways on several pools of both kinds, concurrently (batched on PostgreSQL),
    a few refused: every pool's reserves moved by exactly what the ledger says went in and out."""
    rng = random.Random(7)
    pairs = ((SOL, USDC), (SOL, USDT), (USDT, USDC), (JUP, USDC), (BONK, SOL))
    txs = []
    for n in range(120):
        base, quote = pairs[n % len(pairs)]
        sell = rng.random() < 0.5
        token_in, token_out = (base, quote) if sell else (quote, base)
        whole = {SOL: 3, USDC: 400, USDT: 400, JUP: 500, BONK: 20_000_000}[token_in]
        amount = rng.randint(1, whole * 10**token_in.decimals)
        txs.append(swap(n, (RAYDIUM, METEORA)[n // len(pairs) % 2], token_in.mint, token_out.mint, amount,
                        min_out=2**63 if n % 17 == 0 else 0))  # every 17th refused
    before = await subject.store.load_all()
    landings = await asyncio.gather(*(subject.store.land(tx) for tx in txs))
    assert sum(not landing.succeeded for landing in landings) == 8
    assert {landing.error for landing in landings if not landing.succeeded} == {FailureReason.SLIPPAGE}
    ledger = await subject.ledger()
    assert sorted(row.signature for row in ledger) == sorted(tx.signature for tx in txs)
    assert {row.signature: row.amount_out for row in ledger} == {
        tx.signature: landing.amount_out for tx, landing in zip(txs, landings)}
    await assert_conserved(before, await subject.store.load_all(), ledger)
    assert len({key[:2] for key in net_flows(ledger)}) == 10  # every pool moved


# --- the fake against the real thing ------------------------------------------------------------


async def test_both_adapters_give_the_same_landings_and_pools_for_the_same_swaps(database):
    pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
    try:
        real = PgMarketStore(pool, now_s=lambda: NOW)
        await real.seed(Market.initial())
        fake = MemoryMarketStore(Market.initial(), now_s=lambda: NOW)
        rng = random.Random(3)
        for n in range(40):
            venue = (RAYDIUM, METEORA)[n % 2]
            sell = rng.random() < 0.5
            mint_in, mint_out = (SOL.mint, USDC.mint) if sell else (USDC.mint, SOL.mint)
            amount = rng.randint(1, 50 * 10**9) if sell else rng.randint(1, 7_000 * 10**6)
            tx = swap(n, venue, mint_in, mint_out, amount)
            a, b = await real.land(tx), await fake.land(tx)
            assert (a.succeeded, a.amount_out, a.error) == (b.succeeded, b.amount_out, b.error)
        assert (await real.load_all()).pools == (await fake.load_all()).pools
    finally:
        await pool.close()


# --- sharing: PostgreSQL only -------------------------------------------------------------------


async def test_two_processes_landing_concurrently_lose_nothing_and_land_each_signature_once(pools):
    """Two stores on two connection pools land 600 small swaps both ways on the same four pools at
    once, 100 of them sent by both (a retry racing the first send)."""
    first, second = PgMarketStore(pools[0], now_s=lambda: NOW), PgMarketStore(pools[1], now_s=lambda: NOW)
    rng = random.Random(11)
    txs = []
    for n in range(600):
        venue = (RAYDIUM, METEORA)[rng.random() < 0.5]
        base, quote = ((SOL, USDC), (JUP, USDC))[rng.random() < 0.5]
        sell = rng.random() < 0.5
        token_in, token_out = (base, quote) if sell else (quote, base)
        txs.append(swap(n, venue, token_in.mint, token_out.mint, rng.randint(1, 2 * 10**token_in.decimals)))
    own_first, own_second, both = txs[:250], txs[250:500], txs[500:]
    before = await first.load_all()

    async def send(store: PgMarketStore, batch: list[Transaction]) -> dict[str, Landing]:
        landings = await asyncio.gather(*(store.land(tx) for tx in batch))
        return {tx.signature: landing for tx, landing in zip(batch, landings)}

    mixed = rng.sample(own_first + both, k=350), rng.sample(own_second + both, k=350)
    by_first, by_second = await asyncio.gather(send(first, mixed[0]), send(second, mixed[1]))
    assert all(by_first[tx.signature] == by_second[tx.signature] for tx in both)  # the same landing for both
    assert all(landing.succeeded for landing in (by_first | by_second).values())
    ledger = await pg_ledger(pools[0])
    assert Counter(row.signature for row in ledger) == Counter(tx.signature for tx in txs)  # once each
    assert {row.signature: row.amount_out for row in ledger} == {
        sig: landing.amount_out for sig, landing in (by_first | by_second).items()}
    await assert_conserved(before, await second.load_all(), ledger)
    assert len({key[:2] for key in net_flows(ledger)}) == 4
    assert first._lands.batches < 250 and second._lands.batches < 250  # they were batched


async def test_a_modify_racing_landings_from_another_process_loses_no_update(pools):
    """One process lands swaps on Raydium SOL/USDC while the other moves prices with modifies over
    every pair (they lock the landings' pools too) and over SOL/USDC itself (Meteora only): each
    landing stays in the final state, and the moved pools end exactly where the last move put them."""
    lander, mover = PgMarketStore(pools[0], now_s=lambda: NOW), PgMarketStore(pools[1], now_s=lambda: NOW)
    before = await lander.load_all()
    rng = random.Random(5)
    txs = [swap(n, RAYDIUM, *((SOL.mint, USDC.mint) if rng.random() < 0.5 else (USDC.mint, SOL.mint)),
                rng.randint(1, 10**8)) for n in range(200)]

    async def land_in_waves() -> list[Landing]:
        landings = []
        for wave in range(0, len(txs), 20):
            landings += await asyncio.gather(*(lander.land(tx) for tx in txs[wave:wave + 20]))
        return landings

    async def move() -> None:
        for n in range(20):
            price = Decimal(1) + Decimal(n) / 100
            await mover.modify(lambda m, p=price: m.set_price(JUP.mint, USDC.mint, p))  # every pair locked
            await mover.modify(lambda m, p=price: m.set_price(SOL.mint, USDC.mint, 140 + 10 * p, METEORA),
                               [(SOL.mint, USDC.mint)])
            await asyncio.sleep(0)

    landings, _ = await asyncio.gather(land_in_waves(), move())
    assert all(landing.succeeded for landing in landings)
    after = await mover.load_all()
    ledger = await pg_ledger(pools[0])
    assert Counter(row.signature for row in ledger) == Counter(tx.signature for tx in txs)
    raydium = {k: v for k, v in reserves(after).items() if k[:2] == (RAYDIUM, SOL_USDC)}
    flows = net_flows(ledger)
    assert raydium == {k: v + flows[k] for k, v in reserves(before).items() if k[:2] == (RAYDIUM, SOL_USDC)}
    expected = Market.initial()
    for n in range(20):  # each set_price rounds a constant-product pool's reserves: replay them all
        expected.set_price(JUP.mint, USDC.mint, Decimal(1) + Decimal(n) / 100)
    expected.set_price(SOL.mint, USDC.mint, Decimal("151.9"), METEORA)
    assert after.pools[(METEORA, SOL_USDC)] == expected.pools[(METEORA, SOL_USDC)]
    jup = pair_key(JUP.mint, USDC.mint)
    assert {k: after.pools[k] for k in ((RAYDIUM, jup), (METEORA, jup))} == {
        k: expected.pools[k] for k in ((RAYDIUM, jup), (METEORA, jup))}
    assert after.pairs[SOL_USDC].offsets_bps == {RAYDIUM: 150, METEORA: 0}
    assert after.pairs[SOL_USDC].reference == Decimal("151.9")
    untouched = [key for key in after.pools if key[1] not in (SOL_USDC, jup)]
    assert {k: after.pools[k] for k in untouched} == {k: before.pools[k] for k in untouched}


async def test_two_processes_launching_the_same_pool_one_wins(pools):
    first, second = PgMarketStore(pools[0]), PgMarketStore(pools[1])

    def launch(quote_amount: int) -> Callable[[Market], object]:
        return lambda m: m.launch(RAYDIUM, NEW, SOL, 10**12, quote_amount)

    results = await asyncio.gather(first.modify(launch(10**11), [(NEW.mint, SOL.mint)]),
                                   second.modify(launch(2 * 10**11), [(NEW.mint, SOL.mint)]), return_exceptions=True)
    assert sorted(type(result).__name__ for result in results) == ["ConstantProductPool", "ValueError"]
    winner = next(result for result in results if isinstance(result, ConstantProductPool))
    market = await second.load(NEW.mint, SOL.mint)
    assert market.pools == {(RAYDIUM, pair_key(NEW.mint, SOL.mint)): winner}
    # the winner's price, 0.0001 or 0.0002 SOL per NewT (10^11 or 2·10^11 lamports for 10^12 units)
    assert market.pairs[pair_key(NEW.mint, SOL.mint)].reference == Decimal(winner.reserve_y // 10**11) / 10_000


async def test_the_same_signature_sent_by_two_processes_to_a_venue_without_a_pool_lands_once(pools):
    """No pool row to lock: the ledger alone keeps the signature from landing twice (neither
    sender gets an error; both get the one stored landing). One swap at a time: a batch of several
    that fails is retried swap by swap, which would hide the race."""
    first, second = PgMarketStore(pools[0]), PgMarketStore(pools[1])
    txs = [swap(n, METEORA, SOL.mint, JUP.mint, 10**9) for n in range(30)]
    for tx in txs:
        a, b = await asyncio.gather(first.land(tx), second.land(tx))
        assert a == b
        assert not a.succeeded and a.error.startswith("insufficient liquidity")
    assert Counter(row.signature for row in await pg_ledger(pools[0])) == Counter(tx.signature for tx in txs)


async def test_seed_is_idempotent(database):
    pool = await asyncpg.create_pool(database, min_size=1, max_size=4)
    other = await asyncpg.create_pool(database, min_size=1, max_size=4)
    try:
        first, second = PgMarketStore(pool, now_s=lambda: NOW), PgMarketStore(other, now_s=lambda: NOW)
        assert (await first.load_all()).pairs == {}  # a fresh database holds no world
        # two processes starting at once, with different worlds: one of them is the world, whole
        moved = Market.initial()
        moved.set_price(SOL.mint, USDC.mint, Decimal(99))
        await asyncio.gather(first.seed(Market.initial()), second.seed(moved))
        world = await first.load_all()
        assert (world.pairs, world.pools) in ((Market.initial().pairs, Market.initial().pools),
                                              (moved.pairs, moved.pools))
        landing = await first.land(sell_one_sol())
        assert landing.amount_out == world.pools[(RAYDIUM, SOL_USDC)].quote(SOL.mint, 10**9).amount_out
        await first.modify(lambda m: m.launch(RAYDIUM, NEW, SOL, 10**12, 10**11), [(NEW.mint, SOL.mint)])
        now = await first.load_all()
        tokens = await pool.fetch("SELECT mint, symbol, decimals FROM sim_tokens ORDER BY mint")

        # seeding again, with another world: other prices, NewT renamed with other reserves, one pair more
        again = Market.initial()
        again.set_price(SOL.mint, USDC.mint, Decimal(200))
        again.launch(RAYDIUM, Token("OTHER", NEW.mint, 9), SOL, 10**15, 10**9)
        extra = Market.initial((PairSpec(Token("XTRA", UNLISTED, 6), USDC, Decimal(2), 1_000, 1, 100, 5),))
        again.pairs.update(extra.pairs)
        again.pools.update(extra.pools)
        await second.seed(again)
        await first.seed(Market.initial())
        after = await first.load_all()
        extra_key = pair_key(UNLISTED, USDC.mint)
        assert {k: v for k, v in after.pairs.items() if k != extra_key} == now.pairs
        assert {k: v for k, v in after.pools.items() if k[1] != extra_key} == now.pools
        assert {k: v for k, v in after.pools.items() if k[1] == extra_key} == extra.pools  # only the new is added
        assert await first.find_tokens([NEW.mint]) == [NEW]  # not renamed OTHER
        assert await first.find_landing(landing.signature) == landing
        assert await first.land(sell_one_sol()) == landing
        assert [tuple(t) for t in await pool.fetch("SELECT mint, symbol, decimals FROM sim_tokens ORDER BY mint")
                if t["mint"] != UNLISTED] == [tuple(t) for t in tokens]
    finally:
        await asyncio.gather(pool.close(), other.close())
