"""The PostgreSQL schema, as Piccolo tables. Amounts are Numeric(20, 0): SPL amounts are u64."""

from piccolo.columns import (
    JSONB,
    UUID,
    BigSerial,
    Boolean,
    Bytea,
    Integer,
    Numeric,
    Text,
    Timestamptz,
    Varchar,
)
from piccolo.table import Table

U64 = (20, 0)


class Order(Table, tablename="orders"):
    id = UUID(primary_key=True)
    client_id = Varchar(length=64)
    """Looked up with the idempotency key (the unique index on both)."""
    idempotency_key = Varchar(length=128, null=True, default=None)
    request_hash = Varchar(length=64, null=True, default=None)
    """SHA-256 of the canonical request: the same idempotency key with another body is a conflict."""
    kind = Varchar(length=16)
    side = Varchar(length=4)
    status = Varchar(length=16)
    base_mint = Varchar(length=44)
    quote_mint = Varchar(length=44)
    input_mint = Varchar(length=44)
    output_mint = Varchar(length=44)
    amount_in = Numeric(digits=U64)
    slippage_bps = Integer()
    limit_price = Numeric(null=True, default=None)
    expires_at = Timestamptz(null=True, default=None)
    conditions = JSONB(null=True, default=None)
    min_amount_out = Numeric(digits=U64, null=True, default=None)
    venue = Varchar(length=32, null=True, default=None)
    plan = JSONB(null=True, default=None)
    tx_signature = Varchar(length=88, null=True, default=None)
    amount_out = Numeric(digits=U64, null=True, default=None)
    filled_amount_in = Numeric(digits=U64, null=True, default=None)
    """What the order sold (of `amount_in`): less when only some legs of a split landed."""
    executed_price = Numeric(null=True, default=None)
    failure_reason = Text(null=True, default=None)
    attempts = Integer(default=0)
    last_seq = Integer(default=0)
    created_at = Timestamptz()
    updated_at = Timestamptz()


class OpenOrder(Table, tablename="open_orders"):
    """One row per order not yet in a terminal status, for the reconciler's look-ups: orders
    moving through the pipeline (`resting` false) and resting ones by expiry or id. Kept out
    of `orders` so that no index there mentions the status or the update time: a status change
    then touches no index and is a HOT update (the new row version stays on its page and the
    old one is pruned there, with no VACUUM and no index growth)."""

    order_id = UUID(primary_key=True)
    resting = Boolean(default=False)
    """The order is `waiting` (limit and sniper orders); its expiry is copied here."""
    expires_at = Timestamptz(null=True, default=None)


class OrderEvent(Table, tablename="order_events"):
    """One row per status change; (order_id, seq) is unique and gapless from 1."""

    id = BigSerial(primary_key=True)
    order_id = UUID()
    seq = Integer()
    status = Varchar(length=16)
    payload = JSONB()
    created_at = Timestamptz()


class ChainTransaction(Table, tablename="chain_transactions"):
    """The simulated chain's ledger: a signature lands at most once."""

    signature = Varchar(length=88, primary_key=True)
    order_id = UUID(index=True)
    leg = Integer()
    venue = Varchar(length=32)
    input_mint = Varchar(length=44, null=True, default=None)
    output_mint = Varchar(length=44, null=True, default=None)
    amount_in = Numeric(digits=U64)
    amount_out = Numeric(digits=U64)
    succeeded = Integer()
    error = Text(null=True, default=None)
    slot = Integer()
    landed_at = Timestamptz()


class ApiKey(Table, tablename="api_keys"):
    """A client's API key, stored as its SHA-256 (the key itself is shown once, at creation)."""

    key_hash = Varchar(length=64, primary_key=True)
    client_id = Varchar(length=64, index=True)
    label = Varchar(length=64, default="")
    orders_per_minute = Integer(null=True, default=None)
    """This key's own rate limit; null: the engine's default."""
    max_in_flight = Integer(null=True, default=None)
    created_at = Timestamptz()
    revoked_at = Timestamptz(null=True, default=None)


class SimPair(Table, tablename="sim_pairs"):
    """The simulated world, shared by every process: one row per traded pair, its price state
    (tokens, reference price, venue offsets) as msgpack."""

    pair_key = Varchar(length=89, primary_key=True)
    state = Bytea()


class SimPool(Table, tablename="sim_pools"):
    """One row per pool: its whole state (reserves, or bins and fee memory) as msgpack. Every
    swap, drift tick and launch changes these rows under a row lock."""

    pool_key = Varchar(length=122, primary_key=True)
    """venue:pair_key"""
    pair_key = Varchar(length=89, index=True)
    venue = Varchar(length=32)
    state = Bytea()


class SimToken(Table, tablename="sim_tokens"):
    """Every token some pool trades (the launched ones included), for look-ups by mint or symbol."""

    mint = Varchar(length=44, primary_key=True)
    symbol = Varchar(length=32)
    decimals = Integer()
