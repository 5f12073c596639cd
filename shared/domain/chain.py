"""The simulated chain's rules, as pure code: a swap transaction, its deterministic signature,
and what landing it does to a market (slippage check, pool moved on success)."""

from __future__ import annotations

import hashlib

import msgspec

from solders.signature import Signature
from shared.domain.market import Market
from shared.domain.orders import FailureReason
from shared.domain.swap import InsufficientLiquidity



class ChainUnavailable(Exception):
    """The transaction did not land (e.g. blockhash expired); sending it again is safe."""


class Transaction(msgspec.Struct, frozen=True, rename="camel"):
    signature: str
    order_id: str
    leg: int
    venue: str
    input_mint: str
    output_mint: str
    amount_in: int
    min_amount_out: int


class Landing(msgspec.Struct, frozen=True, rename="camel"):
    signature: str
    succeeded: bool
    amount_out: int
    slot: int
    error: str | None = None


def transaction_signature(order_id: str, leg: int) -> str:
    """A Solana signature (64 bytes, base58), derived from the order and leg as a signed transaction
    would be: the same swap always has the same signature, so it can only land once."""
    return str(Signature(hashlib.sha512(f"swap:{order_id}:{leg}".encode()).digest()))


def land_on(market: Market, tx: Transaction, slot: int, now_s: float) -> Landing:
    """The swap's outcome on `market` now: refused below its minimum (slippage) or when the pool
    cannot fill it; otherwise the pool moves. The caller makes this atomic against every other
    change of the pool, and records the landing so the signature never lands twice."""
    try:
        outcome = market.outcome(tx.venue, tx.input_mint, tx.output_mint, tx.amount_in, now_s)
    except InsufficientLiquidity as exc:
        return Landing(tx.signature, False, 0, slot, f"insufficient liquidity: {exc}")
    if outcome.amount_out < tx.min_amount_out:
        return Landing(tx.signature, False, 0, slot, FailureReason.SLIPPAGE)
    market.outcome(tx.venue, tx.input_mint, tx.output_mint, tx.amount_in, now_s, apply=True)
    return Landing(tx.signature, True, outcome.amount_out, slot)
