"""The shared world's DDL Piccolo cannot express: pools' pages keep half free (each swap
rewrites a ~1.5 KB row, kept a HOT update), and the chain's slot counter."""

from shared.adapters.postgres.ddl_migration import ddl_forwards

ID = "2026-12-07T16:08:00:000000"
VERSION = "1.38.0"
DESCRIPTION = "sim_pools fillfactor 50; the chain_slot sequence"

STATEMENTS = (
    "ALTER TABLE sim_pools SET (fillfactor = 50)",
    "CREATE SEQUENCE IF NOT EXISTS chain_slot START 300000001",
)

forwards = ddl_forwards(ID, DESCRIPTION, STATEMENTS)
