"""Tokens the engine knows, and exact conversion between decimal strings and base units."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from solders.pubkey import Pubkey

from shared.domain.errors import FieldError

U64_MAX = 2**64 - 1
"""SPL token amounts are u64: nothing larger can exist on chain."""

_DECIMAL_RE = re.compile(r"(?P<int>[0-9]+)(?:\.(?P<frac>[0-9]+))?")
"""Every decimal field of the API: ASCII digits with an optional fraction; no sign, exponent,
space or other character around it (matched whole)."""
MAX_PRICE_DIGITS = 30
_LOOKS_LISTABLE = re.compile(r"[1-9A-HJ-NP-Za-km-z]{32,44}|[A-Za-z0-9]{1,16}")
"""A base58 mint or a plain symbol: anything else cannot name a listed token (no look-up)."""


@dataclass(frozen=True, slots=True)
class Token:
    symbol: str
    mint: str
    decimals: int

    def to_ui(self, base_units: int) -> Decimal:
        """Base units as an exact decimal amount of the token (lamports → SOL)."""
        return Decimal(base_units).scaleb(-self.decimals)

    def format(self, base_units: int) -> str:
        """"1.5" for 1_500_000_000 lamports: exact, no exponent, no trailing zeros."""
        return format_decimal(self.to_ui(base_units))


SOL = Token("SOL", "So11111111111111111111111111111111111111112", 9)
USDC = Token("USDC", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v", 6)
USDT = Token("USDT", "Es9vMFrzaCERmJfrF4H2FYD4KCoNkY11McCe8BenwNYB", 6)
BONK = Token("BONK", "DezXAZ8z7PnrnRJjz3wXBoRgixCa6xjnB7YaB1pPB263", 5)
JUP = Token("JUP", "JUPyiwrYJFskUPiHa7hetR8VUFEUuLQ5x7GFPYZ6cV4N", 6)

KNOWN_TOKENS: tuple[Token, ...] = (SOL, USDC, USDT, BONK, JUP)


def format_decimal(value: Decimal) -> str:
    """A Decimal as plain positional text without trailing zeros (never "1.5E-7")."""
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


class TokenError(FieldError):
    """An asset or amount the engine cannot accept; `field` names what was wrong."""


class TokenSource(Protocol):
    async def find_tokens(self, assets: Iterable[str]) -> list[Token]:
        """Listed tokens whose mint (or symbol, any case) is one of `assets`."""
        ...


class TokenRegistry:
    """Looks tokens up by symbol (case-insensitive) or by mint address. With a `source` (the
    shared market), `ensure` learns tokens listed since (a launch in any process)."""

    def __init__(self, tokens: tuple[Token, ...] = KNOWN_TOKENS, source: TokenSource | None = None) -> None:
        self._by_symbol = {t.symbol.upper(): t for t in tokens}
        self._by_mint = {t.mint: t for t in tokens}
        self._source = source

    def __iter__(self):
        return iter(self._by_mint.values())

    def add(self, token: Token) -> None:
        """List a token (a launch brings a new mint into the market)."""
        self._by_mint[token.mint] = token
        self._by_symbol.setdefault(token.symbol.upper(), token)

    async def ensure(self, *assets: str | None) -> None:
        """Learn any of `assets` (mints or symbols) not known here that the source lists: no I/O
        when every one is known."""
        unknown = [a for a in assets if a and _LOOKS_LISTABLE.fullmatch(a)
                   and a not in self._by_mint and a.upper() not in self._by_symbol]
        if unknown and self._source is not None:
            for token in await self._source.find_tokens(unknown):
                self.add(token)

    def find(self, mint: str) -> Token | None:
        return self._by_mint.get(mint)

    def by_mint(self, mint: str) -> Token:
        return self._by_mint[mint]

    def resolve(self, field: str, asset: str) -> Token:
        token = self._by_mint.get(asset) or self._by_symbol.get(asset.upper())
        if token is None:
            known = ", ".join(sorted(self._by_symbol))
            raise TokenError(field, f"unknown asset {asset[:64]!r}: use a mint address or one of {known}")
        return token


def check_mint(field: str, mint: str) -> str:
    """A well-formed Solana address: base58 that decodes to 32 bytes."""
    try:
        Pubkey.from_string(mint)
    except ValueError:
        raise TokenError(field, f"{field} must be a token symbol or a base58 mint address") from None
    return mint


def _decimal(field: str, text: str, example: str) -> re.Match:
    match = _DECIMAL_RE.fullmatch(text) if len(text) <= 64 else None
    if match is None:
        raise TokenError(field, f"{field} must be a positive decimal string such as \"{example}\"")
    return match


def parse_amount(field: str, text: str, token: Token) -> int:
    """An exact decimal string ("1.5") as base units of `token` (1_500_000_000 lamports).

    Refuses signs, exponents, surrounding spaces, zero, more decimals than the token has, and
    values beyond u64: none of these can be a real SPL amount.
    """
    match = _decimal(field, text, "1.5")
    frac = match["frac"] or ""
    if len(frac) > token.decimals:
        raise TokenError(field, f"{field} has {len(frac)} decimals; {token.symbol} allows at most {token.decimals}")
    base_units = int(match["int"] + frac.ljust(token.decimals, "0"))
    if base_units == 0:
        raise TokenError(field, f"{field} must be greater than zero")
    if base_units > U64_MAX:
        raise TokenError(field, f"{field} exceeds the largest possible {token.symbol} amount")
    return base_units


def parse_price(field: str, text: str) -> Decimal:
    """A positive decimal string such as "180.5" (same rule as amounts; at most 30 significant digits)."""
    _decimal(field, text, "180.5")
    if len(text.replace(".", "").lstrip("0")) > MAX_PRICE_DIGITS:
        raise TokenError(field, f"{field} has more than {MAX_PRICE_DIGITS} significant digits")
    price = Decimal(text)
    if price <= 0:
        raise TokenError(field, f"{field} must be greater than zero")
    return price
