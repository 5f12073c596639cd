"""The market store kept in this process's memory: one Market and a ledger dict. For the
functions' unit tests and one-process benches; a real deployment shares the PostgreSQL store."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

import msgspec

from shared.domain.chain import Landing, Transaction, land_on
from shared.domain.tokens import Token
from shared.domain.market import Market, PairState, Pool, pair_key

FIRST_SLOT = 300_000_000
_pack = msgspec.msgpack.Encoder()
_pair = msgspec.msgpack.Decoder(PairState)
_pool = msgspec.msgpack.Decoder(Pool)


def _copy(pairs: dict[str, PairState], pools: dict[tuple[str, str], Pool]) -> Market:
    """A detached copy, as the PostgreSQL store decodes one from its rows."""
    return Market({key: _pair.decode(_pack.encode(state)) for key, state in pairs.items()},
                  {key: _pool.decode(_pack.encode(pool)) for key, pool in pools.items()})


class MemoryMarketStore:
    def __init__(self, market: Market | None = None, now_s: Callable[[], float] = time.time) -> None:
        self.market = market or Market.initial()
        self.landed: dict[str, tuple[Transaction, Landing]] = {}
        self._now_s = now_s
        self._slot = FIRST_SLOT
        self.finds = 0
        """Ledger look-ups so far: a test can tell a step asked nothing it did not need."""

    async def load(self, mint_a: str, mint_b: str) -> Market:
        """A snapshot, as the PostgreSQL store's: later changes do not move it, nor does changing it
        change the store."""
        key = pair_key(mint_a, mint_b)
        if key not in self.market.pairs:
            return Market()
        return _copy({key: self.market.pairs[key]},
                     {(venue, k): pool for (venue, k), pool in self.market.pools.items() if k == key})

    async def load_all(self) -> Market:
        return _copy(self.market.pairs, self.market.pools)

    async def modify(self, change: Callable[[Market], object], mints: Iterable[tuple[str, str]] | None = None
                     ) -> object:
        """Nothing else runs in between (one event loop); a change that raises leaves the market as
        it was, as the PostgreSQL store's rolled-back transaction does."""
        before = _copy(self.market.pairs, self.market.pools)
        try:
            return change(self.market)
        except BaseException:
            self.market.pairs.clear()
            self.market.pairs.update(before.pairs)
            self.market.pools.clear()
            self.market.pools.update(before.pools)
            raise

    async def land(self, tx: Transaction) -> Landing:
        if tx.signature in self.landed:
            return self.landed[tx.signature][1]
        self._slot += 1
        landing = land_on(self.market, tx, self._slot, self._now_s())
        self.landed[tx.signature] = (tx, landing)
        return landing

    async def find_landing(self, signature: str) -> Landing | None:
        self.finds += 1
        entry = self.landed.get(signature)
        return None if entry is None else entry[1]

    async def find_tokens(self, assets: Iterable[str]) -> list[Token]:
        wanted = set(assets)
        upper = {asset.upper() for asset in wanted}
        return [t for t in self.market.tokens().values() if t.mint in wanted or t.symbol.upper() in upper]
