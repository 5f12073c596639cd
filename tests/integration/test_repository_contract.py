"""One contract for the order repository, run on PostgreSQL and on the in-memory fake,
so the fake the unit tests rely on cannot drift from the real thing."""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import asyncpg
import pytest_asyncio

from shared.adapters.postgres import repository as pg_repository
from shared.adapters.postgres.repository import PgOrderRepository
from shared.domain.orders import UPDATABLE_FIELDS, OrderRecord
from shared.domain.states import Status
from tests.fakes import InMemoryOrderRepository

T0 = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def new_order(order_id: str = "018f0000-0000-7000-8000-000000000001", key: str | None = "key-1") -> OrderRecord:
    return OrderRecord(
        id=order_id,
        client_id="client-a",
        idempotency_key=key,
        kind="market",
        side="sell",
        status=Status.PENDING,
        base_mint="So11111111111111111111111111111111111111112",
        quote_mint="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        input_mint="So11111111111111111111111111111111111111112",
        output_mint="EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v",
        amount_in=18_446_744_073_709_551_615,  # u64 max survives the round trip
        slippage_bps=50,
        created_at=T0,
        updated_at=T0,
    )


@pytest_asyncio.fixture(params=["postgres", "memory"])
async def repo(request):
    if request.param == "memory":
        yield InMemoryOrderRepository()
        return
    database = request.getfixturevalue("database")
    pool = await asyncpg.create_pool(database, min_size=1, max_size=4)
    try:
        yield PgOrderRepository(pool)
    finally:
        await pool.close()


async def test_create_stores_order_with_pending_event_seq_1(repo):
    event = await repo.create(new_order(), {"hello": "world"})
    assert (event.seq, event.status, event.data) == (1, "pending", {"hello": "world"})
    stored = await repo.get(new_order().id)
    assert stored.status == Status.PENDING
    assert stored.amount_in == 18_446_744_073_709_551_615
    assert stored.last_seq == 1
    assert await repo.events(stored.id) == [event]


async def test_same_idempotency_key_for_same_client_stores_nothing(repo):
    await repo.create(new_order(), {})
    assert await repo.create(new_order("018f0000-0000-7000-8000-000000000002"), {}) is None
    assert await repo.get("018f0000-0000-7000-8000-000000000002") is None
    assert (await repo.find_by_key("client-a", "key-1")).id == new_order().id


async def test_allowed_transition_appends_next_seq_and_applies_changes(repo):
    order = new_order()
    await repo.create(order, {})
    change = await repo.transition(order.id, Status.ROUTING, T0 + timedelta(seconds=1), {"q": 1}, {})
    assert (change.event.seq, change.event.status) == (2, "routing")
    assert (change.kind, change.created_at) == (order.kind, order.created_at)  # what a terminal change is counted by
    routed = await repo.transition(
        order.id, Status.ROUTED, T0 + timedelta(seconds=2), {}, {"venue": "raydium", "min_amount_out": 5}
    )
    assert routed.event.seq == 3
    stored = await repo.get(order.id)
    assert (stored.status, stored.venue, stored.min_amount_out, stored.last_seq) == (Status.ROUTED, "raydium", 5, 3)


async def test_every_typed_field_survives_exactly(repo):
    """Exact money (u64, long decimals), microseconds, nested JSON and awkward text all
    come back as they went in, and a field outside a change keeps its value."""
    order = replace(
        new_order(), kind="limit", limit_price=Decimal("0.000000001234567890123456789"),
        expires_at=T0 + timedelta(microseconds=123_457), min_amount_out=18_446_744_073_709_551_614,
        conditions={"minLiquidity": "18446744073709551615", "maxPriceImpactBps": 30, "nested": [1, {"a": None}]},
    )
    await repo.create(order, {"text": 'quote " backslash \\ é ✓'})
    await repo.transition(order.id, Status.ROUTING, T0, {}, {})
    plan = {"legs": [{"venue": "meteora", "amountIn": "18446744073709551615", "share": 0.5}]}
    await repo.transition(order.id, Status.ROUTED, T0, {}, {"plan": plan, "venue": "meteora"})
    await repo.transition(order.id, Status.BUILDING, T0, {}, {"attempts": 2})
    await repo.transition(order.id, Status.SUBMITTED, T0, {}, {"tx_signature": "5" * 88})
    await repo.transition(order.id, Status.FAILED, T0 + timedelta(seconds=1), {}, {
        "amount_out": 18_446_744_073_709_551_615, "executed_price": Decimal("123456789.123456789123456789"),
        "failure_reason": "slippage: got < min \"quoted\" ✗",
    })
    stored = await repo.get(order.id)
    assert (stored.limit_price, stored.expires_at, stored.min_amount_out, stored.conditions) == (
        order.limit_price, order.expires_at, order.min_amount_out, order.conditions)
    assert (stored.plan, stored.venue, stored.attempts, stored.tx_signature) == (plan, "meteora", 2, "5" * 88)
    assert (stored.amount_out, stored.executed_price, stored.failure_reason) == (
        18_446_744_073_709_551_615, Decimal("123456789.123456789123456789"), 'slippage: got < min "quoted" ✗')
    assert stored.updated_at == T0 + timedelta(seconds=1)
    assert (await repo.event(order.id, Status.PENDING)).data == {"text": 'quote " backslash \\ é ✓'}


async def test_refused_transition_writes_nothing(repo):
    order = new_order()
    await repo.create(order, {})
    assert await repo.transition(order.id, Status.SUBMITTED, T0, {}, {"tx_signature": "x"}) is None
    stored = await repo.get(order.id)
    assert (stored.status, stored.tx_signature, stored.last_seq) == (Status.PENDING, None, 1)
    assert len(await repo.events(order.id)) == 1


async def test_terminal_orders_accept_no_transition(repo):
    order = new_order()
    await repo.create(order, {})
    await repo.transition(order.id, Status.FAILED, T0, {}, {"failure_reason": "x"})
    for status in Status:
        assert await repo.transition(order.id, status, T0, {}, {}) is None


async def test_events_after_seq_and_by_status(repo):
    order = new_order()
    await repo.create(order, {})
    await repo.transition(order.id, Status.ROUTING, T0, {"n": 2}, {})
    await repo.transition(order.id, Status.ROUTED, T0, {"n": 3}, {})
    assert [e.seq for e in await repo.events(order.id, 1)] == [2, 3]
    assert (await repo.event(order.id, Status.ROUTING)).data == {"n": 2}
    assert await repo.event(order.id, Status.CONFIRMED) is None


async def test_unknown_order_is_none(repo):
    assert await repo.get("018f0000-0000-7000-8000-00000000ffff") is None
    assert await repo.transition("018f0000-0000-7000-8000-00000000ffff", Status.ROUTING, T0, {}, {}) is None


def order_no(n: int, **changes) -> OrderRecord:
    return replace(new_order(f"018f0000-0000-7000-8000-{n:012d}", key=f"key-{n}"), **changes)


async def test_moving_orders_are_found_by_status_and_age_and_leave_when_they_end(repo):
    pending, routing, resting, done = (order_no(n) for n in (1, 2, 3, 4))
    for order in (pending, routing, resting, done):
        await repo.create(order, {})
    await repo.transition(routing.id, Status.ROUTING, T0 - timedelta(seconds=5), {}, {})
    await repo.transition(resting.id, Status.WAITING, T0, {}, {})
    await repo.transition(done.id, Status.CANCELLED, T0, {}, {})
    cutoff = T0 + timedelta(seconds=1)
    everything = frozenset(Status)
    assert [o.id for o in await repo.moving_since(cutoff, 10, everything)] == [routing.id, pending.id]  # oldest first
    assert [o.id for o in await repo.moving_since(cutoff, 10, frozenset({Status.PENDING}))] == [pending.id]
    assert [o.id for o in await repo.moving_since(T0, 10, everything)] == [routing.id]  # changed before T0 only
    assert len(await repo.moving_since(cutoff, 1, everything)) == 1
    await repo.transition(routing.id, Status.FAILED, T0, {}, {"failure_reason": "x"})
    assert [o.id for o in await repo.moving_since(cutoff, 10, everything)] == [pending.id]


async def test_resting_orders_are_found_by_expiry_and_by_id_until_they_fire(repo):
    later, sooner, moving = (order_no(n, kind="limit", expires_at=T0 + timedelta(minutes=m))
                             for n, m in ((7, 30), (8, 10), (9, 20)))
    for order in (later, sooner, moving):
        await repo.create(order, {})
    await repo.transition(later.id, Status.WAITING, T0, {}, {})
    await repo.transition(sooner.id, Status.WAITING, T0, {}, {})
    await repo.transition(sooner.id, Status.WAITING, T0, {"note": "launch refused"}, {})  # waiting -> waiting
    assert [o.id for o in await repo.overdue(T0 + timedelta(minutes=15), 10)] == [sooner.id]
    assert [o.id for o in await repo.overdue(T0 + timedelta(hours=1), 10)] == [sooner.id, later.id]
    assert [o.id for o in await repo.waiting_after(None, 10)] == [later.id, sooner.id]
    assert [o.id for o in await repo.waiting_after(later.id, 10)] == [sooner.id]
    assert await repo.moving_since(T0 + timedelta(seconds=1), 10, frozenset({Status.WAITING})) == []
    await repo.transition(later.id, Status.TRIGGERED, T0, {}, {})
    assert [o.id for o in await repo.waiting_after(None, 10)] == [sooner.id]
    moving_now = await repo.moving_since(T0 + timedelta(seconds=1), 10, frozenset({Status.TRIGGERED, Status.PENDING}))
    assert {o.id for o in moving_now} == {later.id, moving.id}  # both changed at T0: either may come first
    await repo.transition(sooner.id, Status.EXPIRED, T0, {}, {})
    assert await repo.overdue(T0 + timedelta(hours=1), 10) == []


async def test_recent_orders_are_the_clients_own_newest_first_a_page_at_a_time(repo):
    """A page of a client's history: its orders only, newest (highest time-ordered id) first, each
    page starting below the last id of the one before; an unknown cursor is only a position."""
    mine = [order_no(n) for n in (3, 1, 5, 2, 4)]  # created out of order: the id alone orders them
    theirs = order_no(6, client_id="client-b")
    for order in (*mine, theirs):
        await repo.create(order, {})
    await repo.transition(order_no(5).id, Status.ROUTING, T0 + timedelta(minutes=1), {}, {})  # updates don't reorder
    newest_first = [order_no(n).id for n in (5, 4, 3, 2, 1)]
    assert [o.id for o in await repo.recent("client-a", None, 10)] == newest_first
    first = await repo.recent("client-a", None, 2)
    assert [o.id for o in first] == newest_first[:2]
    assert first[0].status == Status.ROUTING  # whole records, as they are now
    second = await repo.recent("client-a", first[-1].id, 2)
    assert [o.id for o in second] == newest_first[2:4]
    assert [o.id for o in await repo.recent("client-a", second[-1].id, 2)] == newest_first[4:]
    assert await repo.recent("client-a", newest_first[-1], 2) == []
    assert [o.id for o in await repo.recent("client-a", theirs.id, 10)] == newest_first  # another client's id
    assert [o.id for o in await repo.recent("client-a", "018f0000-0000-7000-8000-000000000004", 10)] == \
        newest_first[2:]  # a cursor is a position, whatever order it names
    assert [o.id for o in await repo.recent("client-b", None, 10)] == [theirs.id]
    assert await repo.recent("client-c", None, 10) == []


async def test_a_page_of_recent_orders_is_one_index_range_scan(database):
    """The page query walks the (client_id, id) index backwards from the cursor: its cost is the
    page, not the client's history (checked on the plan PostgreSQL picks when it must use an index)."""
    connection = await asyncpg.connect(database)
    try:
        await connection.execute("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in await connection.fetch(
            "EXPLAIN SELECT * FROM orders WHERE client_id = 'c' AND id < 'ffffffff-ffff-ffff-ffff-ffffffffffff'::uuid"
            " ORDER BY id DESC LIMIT 20"))
    finally:
        await connection.close()
    assert "Index Scan Backward using orders_client_recent" in plan, plan
    assert "Sort" not in plan, plan


async def test_a_status_change_reads_orders_by_its_key_whatever_the_tables_size(database):
    """A batch of status changes arrives as JSON rows PostgreSQL guesses at 100: joined on them
    alone, it read the whole `orders` table on every change up to a few thousand orders (the
    plan each connection caches for the statement, made on a fresh database, kept it so).
    Checked on the generic plan, the one a connection ends up caching, at 2,000 orders."""
    connection = await asyncpg.connect(database)
    try:
        await connection.execute("""
            INSERT INTO orders (id, client_id, kind, side, status, base_mint, quote_mint, input_mint, output_mint,
                                amount_in, slippage_bps, attempts, last_seq, created_at, updated_at)
            SELECT gen_random_uuid(), 'c', 'market', 'sell', 'routing', 'b', 'q', 'b', 'q', 1, 50, 0, 2, now(), now()
            FROM generate_series(1, 2000)""")
        await connection.execute("ANALYZE orders")
        await connection.execute("SET plan_cache_mode = force_generic_plan")
        await connection.execute(f"PREPARE change(json) AS {pg_repository._TRANSITION_MANY.replace('$1::json', '$1')}")
        order_id = await connection.fetchval("SELECT id::text FROM orders LIMIT 1")
        rows = f'[{{"id": "{order_id}", "status": "routed", "at": "2026-11-25T12:00:00Z", "sources": "routing",' \
               ' "payload": {}, "mask": 0}]'
        plan = "\n".join(row[0] for row in await connection.fetch(f"EXPLAIN EXECUTE change('{rows}')"))
    finally:
        await connection.close()
    assert "Seq Scan on orders" not in plan, plan


async def test_status_changes_are_hot_updates_no_index_on_orders_covers_a_column_they_write(database):
    """PostgreSQL can keep a changed row on its page, touching no index (a HOT update), only if
    no index names a changed column in its key or its WHERE; the reconciler's look-ups live in
    open_orders for that reason. This keeps a new index on orders from quietly undoing it."""
    written = {"status", "last_seq", "updated_at", *UPDATABLE_FIELDS}
    connection = await asyncpg.connect(database)
    try:
        indexes = await connection.fetch("""
            SELECT i.indexrelid::regclass::text AS name,
                   array(SELECT a.attname FROM pg_attribute a
                         WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)) AS columns,
                   coalesce(pg_get_expr(i.indpred, i.indrelid), '') || ' ' ||
                   coalesce(pg_get_expr(i.indexprs, i.indrelid), '') AS expressions
            FROM pg_index i WHERE i.indrelid = 'orders'::regclass""")
        assert {row["name"] for row in indexes} == {"orders_pkey", "orders_client_idempotency", "orders_client_recent"}
        for row in indexes:
            named = set(row["columns"]) | set(re.findall(r"[a-z_]+", row["expressions"]))
            assert not named & written, f"{row['name']} covers {sorted(named & written)}"
        pool = await asyncpg.create_pool(database, min_size=1, max_size=2)
        repo, order = PgOrderRepository(pool), new_order()
        await repo.create(order, {})
        for status in (Status.ROUTING, Status.ROUTED, Status.BUILDING, Status.SUBMITTED, Status.CONFIRMED):
            await repo.transition(order.id, status, T0, {}, {"venue": "raydium"} if status == Status.ROUTED else {})
        await pool.close()  # a backend's statistics reach pg_stat_user_tables when it ends
        for _ in range(50):
            hot, updates = await connection.fetchrow(
                "SELECT n_tup_hot_upd, n_tup_upd FROM pg_stat_user_tables WHERE relname = 'orders'")
            if updates == 5:
                break
            await asyncio.sleep(0.1)
        assert (hot, updates) == (5, 5)
    finally:
        await connection.close()
