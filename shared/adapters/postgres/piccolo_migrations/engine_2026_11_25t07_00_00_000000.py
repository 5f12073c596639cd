"""Partial indexes for the reconciler: orders moving through the pipeline by age, and resting
orders by expiry and by id (re-arming the trigger index after Redis lost it)."""

from shared.adapters.postgres.ddl_migration import ddl_forwards

ID = "2026-11-25T07:00:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "indexes for stuck orders, overdue expiries and waiting orders"

STATEMENTS = (
    "CREATE INDEX orders_moving_by_age ON orders (updated_at)"
    " WHERE status IN ('pending', 'triggered', 'routing', 'routed', 'building', 'submitted')",
    "CREATE INDEX orders_waiting_by_expiry ON orders (expires_at) WHERE status = 'waiting'",
    "CREATE INDEX orders_waiting_by_id ON orders (id) WHERE status = 'waiting'",
)


forwards = ddl_forwards(ID, DESCRIPTION, STATEMENTS)
