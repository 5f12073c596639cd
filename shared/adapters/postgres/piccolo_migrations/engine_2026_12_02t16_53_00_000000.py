"""HOT status changes: the reconciler's partial indexes move from `orders` to `open_orders`.

Every index on `orders` that named the status or the update time (in its key or its WHERE)
made each status change a non-HOT update: a new row version wherever there was room and a new
entry in every index, the old ones left for VACUUM. Now `orders` keeps only indexes on columns
a status change never touches (the primary key, the client's idempotency key), and its pages
keep 30 % free so a change's new version fits beside the old one.
"""

from shared.adapters.postgres.ddl_migration import ddl_forwards

ID = "2026-12-02T16:53:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "open orders indexed in open_orders; no status index on orders; orders fillfactor 70"

STATEMENTS = (
    "CREATE INDEX open_orders_moving ON open_orders (order_id) WHERE NOT resting",
    "CREATE INDEX open_orders_resting_by_expiry ON open_orders (expires_at) WHERE resting",
    "CREATE INDEX open_orders_resting_by_id ON open_orders (order_id) WHERE resting",
    "INSERT INTO open_orders (order_id, resting, expires_at)"
    " SELECT id, status = 'waiting', expires_at FROM orders"
    " WHERE status NOT IN ('confirmed', 'failed', 'cancelled', 'expired')",
    "DROP INDEX IF EXISTS orders_moving_by_age",
    "DROP INDEX IF EXISTS orders_waiting_by_expiry",
    "DROP INDEX IF EXISTS orders_waiting_by_id",
    "ALTER TABLE orders SET (fillfactor = 70)",
)

forwards = ddl_forwards(ID, DESCRIPTION, STATEMENTS)
