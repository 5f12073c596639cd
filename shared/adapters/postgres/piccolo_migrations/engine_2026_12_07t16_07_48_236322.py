"""The simulated world moves out of the processes into PostgreSQL, shared by all of them:
pairs, pools (one row each, msgpack state, fillfactor 50 so the constant rewrites are HOT
updates) and tokens; the ledger records each swap's mints (for conservation checks); and the
chain's slot counter becomes a sequence (the next migration)."""

from piccolo.apps.migrations.auto.migration_manager import MigrationManager
from piccolo.columns.column_types import Bytea
from piccolo.columns.column_types import Integer
from piccolo.columns.column_types import Varchar
from piccolo.columns.indexes import IndexMethod

ID = "2026-12-07T16:07:48:236322"
VERSION = "1.38.0"
DESCRIPTION = "the shared simulated world: sim_pairs, sim_pools, sim_tokens; ledger mints"


async def forwards():
    manager = MigrationManager(
        migration_id=ID, app_name="engine", description=DESCRIPTION
    )

    manager.add_table(
        class_name="SimToken", tablename="sim_tokens", schema=None, columns=None
    )

    manager.add_table(
        class_name="SimPair", tablename="sim_pairs", schema=None, columns=None
    )

    manager.add_table(
        class_name="SimPool", tablename="sim_pools", schema=None, columns=None
    )

    manager.add_column(
        table_class_name="SimToken",
        tablename="sim_tokens",
        column_name="mint",
        db_column_name="mint",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 44,
            "default": "",
            "null": False,
            "primary_key": True,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="SimToken",
        tablename="sim_tokens",
        column_name="symbol",
        db_column_name="symbol",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 32,
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="SimToken",
        tablename="sim_tokens",
        column_name="decimals",
        db_column_name="decimals",
        column_class_name="Integer",
        column_class=Integer,
        params={
            "default": 0,
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="SimPair",
        tablename="sim_pairs",
        column_name="pair_key",
        db_column_name="pair_key",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 89,
            "default": "",
            "null": False,
            "primary_key": True,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="SimPair",
        tablename="sim_pairs",
        column_name="state",
        db_column_name="state",
        column_class_name="Bytea",
        column_class=Bytea,
        params={
            "default": b"",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="SimPool",
        tablename="sim_pools",
        column_name="pool_key",
        db_column_name="pool_key",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 122,
            "default": "",
            "null": False,
            "primary_key": True,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="SimPool",
        tablename="sim_pools",
        column_name="pair_key",
        db_column_name="pair_key",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 89,
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": True,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="SimPool",
        tablename="sim_pools",
        column_name="venue",
        db_column_name="venue",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 32,
            "default": "",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="SimPool",
        tablename="sim_pools",
        column_name="state",
        db_column_name="state",
        column_class_name="Bytea",
        column_class=Bytea,
        params={
            "default": b"",
            "null": False,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="ChainTransaction",
        tablename="chain_transactions",
        column_name="input_mint",
        db_column_name="input_mint",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 44,
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    manager.add_column(
        table_class_name="ChainTransaction",
        tablename="chain_transactions",
        column_name="output_mint",
        db_column_name="output_mint",
        column_class_name="Varchar",
        column_class=Varchar,
        params={
            "length": 44,
            "default": None,
            "null": True,
            "primary_key": False,
            "unique": False,
            "index": False,
            "index_method": IndexMethod.btree,
            "choices": None,
            "db_column_name": None,
            "secret": False,
        },
        schema=None,
    )

    return manager
