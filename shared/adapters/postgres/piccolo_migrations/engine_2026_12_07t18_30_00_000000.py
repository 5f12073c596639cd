"""A client's recent orders, newest first (`GET /api/orders`, the console's list): an index on
(client_id, id). Order ids are time-ordered UUIDs, so a page is one backward range scan from the
cursor. Neither column changes after insert, so status changes stay HOT updates."""

from shared.adapters.postgres.ddl_migration import ddl_forwards

ID = "2026-12-07T18:30:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "orders_client_recent: a client's orders by id"

STATEMENTS = ("CREATE INDEX IF NOT EXISTS orders_client_recent ON orders (client_id, id)",)

forwards = ddl_forwards(ID, DESCRIPTION, STATEMENTS)
