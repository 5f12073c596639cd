"""PostgreSQL: the order repository, the shared market store, API keys, the schema (Piccolo tables and migrations), upkeep."""
