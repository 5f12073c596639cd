"""The simulated world's clockwork: price changes fire limit orders, launches fire sniper
orders, time expires resting orders. Each firing is claimed in the Redis index (once, however
many watchers run) and run through the `trigger` function here, whose conditional change
(waiting → triggered) decides against a racing cancel; the next step goes to its queue.

The market itself is shared (PostgreSQL): any process may move a price or launch a pool through
the sim API and evaluate what that fires. Exactly one process at a time — the holder of the
market lease — drives the market on its own: price drift, random launches and expiry checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from decimal import ROUND_CEILING, Decimal

import msgspec

from functions import trigger
from shared.context import Context
from shared.domain.market import VENUES, LaunchPlan, Market
from shared.domain.messages import ExpireRequest, LaunchRefused, TriggerFired
from shared.domain.prices import price_of_base
from shared.domain.resting import Launch, RestingOrder, crossed, launch_refusal
from shared.domain.swap import InsufficientLiquidity, SwapOutcome
from shared.domain.tokens import SOL, Token, TokenRegistry, format_decimal
from shared.ports import Clock, Lease, MarketStore, Queues, RestingIndex
from shared.settings import SimulationSettings

log = logging.getLogger("engine.market")
LEASE_TTL_MS = 3_000
LEASE_RENEW_S = 1.0
"""The driver renews its lease every second; when it dies, the lease lapses within 3 s and the
next contender's attempt (at most a second later) takes it over: under 5 s in all."""
LAUNCH_BATCH = 64
"""Sniper orders shown a launch at once: their writes share group commits and queue jobs."""

Fire = Callable[[TriggerFired], Awaitable[bool]]
"""Hands a claimed order over to fire: True if it fired."""


async def fire_now(ctx: Context, queues: Queues, message: TriggerFired) -> bool:
    """Run `trigger` on a claimed order here and now, so the caller learns whether it really
    fired: its conditional change (waiting → triggered) decides against a racing cancel or
    expiry (False). The next step goes to its queue. Should the step fail here (PostgreSQL
    away), the message goes to `trigger`'s queue instead, whose retries take over."""
    try:
        follow_up = await trigger.handle(message, ctx)
    except Exception as exc:
        log.warning("firing %s here failed (%s: %s); queued for trigger", message.order_id, type(exc).__name__, exc,
                    extra={"order_id": message.order_id})
        await queues.send(message)
        return True
    if follow_up is None:
        return False
    await queues.send(follow_up)
    return True


class PriceWatcher:
    def __init__(
        self,
        store: MarketStore,
        tokens: TokenRegistry,
        index: RestingIndex,
        queues: Queues,
        clock: Clock,
        fire: Fire,
        rng: random.Random,
        now_s: Callable[[], float],
    ) -> None:
        self._store = store
        self._tokens = tokens
        self._index = index
        self._queues = queues
        self._clock = clock
        self._fire = fire
        self._rng = rng
        self._now_s = now_s

    def _best_fill(self, market: Market, order: RestingOrder, venues=VENUES
                   ) -> tuple[str, Decimal, SwapOutcome] | None:
        """(venue, price quote-per-base, outcome) of the best single-venue fill for this size now."""
        state = market.pair(order.base_mint, order.quote_mint)
        best = None
        for venue in venues:
            try:
                outcome = market.outcome(venue, order.input_mint, order.output_mint, order.amount_in, self._now_s())
            except InsufficientLiquidity:
                continue
            price = price_of_base(order.side, state.base, state.quote, order.amount_in, outcome.amount_out)
            better = best is None or (price > best[1] if order.side == "sell" else price < best[1])
            if better:
                best = (venue, price, outcome)
        return best

    async def prices_changed(self, market: Market | None = None) -> int:
        """Fire every limit order the prices (of `market`, or loaded now) reach; returns how many fired."""
        market = market or await self._store.load_all()
        fired = 0
        for state in list(market.pairs.values()):
            spots = [p for v in VENUES if (p := market.spot_price(v, state.base.mint, state.quote.mint))]
            if not spots:
                continue
            for side, best_spot in (("sell", max(spots)), ("buy", min(spots))):
                candidates = await self._index.limit_candidates(state.base.mint, state.quote.mint, side, best_spot)
                for order in candidates:
                    fill = self._best_fill(market, order)
                    if fill is None or not crossed(side, order.limit_price, fill[1]):
                        continue
                    if await self._index.claim_limit(order):
                        reason = {"venue": fill[0], "price": format_decimal(fill[1]),
                                  "limitPrice": format_decimal(order.limit_price)}
                        fired += await self._fire(TriggerFired(order.order_id, reason))
        return fired

    async def move_price(self, base: Token, quote: Token, price: Decimal, venue: str | None) -> tuple[Market, int]:
        """A scripted market move on the shared market, then the limit orders it fires."""

        def move(market: Market) -> Market:
            market.set_price(base.mint, quote.mint, price, venue)
            return market

        moved = await self._store.modify(move, [(base.mint, quote.mint)])
        return moved, await self.prices_changed(moved)

    async def drift(self) -> int:
        """One drift step of every pair, then the limit orders it fires."""

        def tick(market: Market) -> Market:
            market.tick(self._rng)
            return market

        return await self.prices_changed(await self._store.modify(tick))

    async def launch(self, plan: LaunchPlan, quote: Token) -> dict[str, int]:
        """Open the planned pool on the shared market and show it to the sniper orders waiting for
        its token (ValueError if that venue already has a pool for the pair)."""
        market = await self._store.modify(
            lambda m: (m.launch(plan.venue, plan.base, quote, plan.base_amount, plan.quote_amount), m)[1],
            [(plan.base.mint, quote.mint)])
        self._tokens.add(plan.base)
        outcome = await self.launched(market, plan.venue, plan.base, quote)
        log.info("launched %s", msgspec.json.encode({"venue": plan.venue, "mint": plan.base.mint, **outcome}).decode())
        return outcome

    async def launch_at_random(self) -> None:
        market = await self._store.load_all()
        plan = market.plan_random_launch(self._rng, SOL, await self._index.awaited_mints())
        if plan is not None:
            with contextlib.suppress(ValueError):  # launched elsewhere meanwhile
                await self.launch(plan, SOL)

    async def launched(self, market: Market, venue: str, base: Token, quote: Token) -> dict[str, int]:
        """Show a new pool (base/quote) to every sniper order waiting to buy its token with its
        quote token, in batches doubling up to LAUNCH_BATCH: a batch's orders are read, claimed,
        `trigger`-ed and sent on together, and the first order is read and fires alone, before the
        others are even read (reading 1,000 waiting orders first took 5–8 ms). An order buying the
        token with another quote asset is not concerned: a launch on another pair is ignored, not
        refused."""
        outcome = {"fired": 0, "refused": 0}
        waiting = await self._index.sniper_ids(base.mint)
        start, size = 0, 1
        while start < len(waiting):  # batches of 1, 2, 4 … LAUNCH_BATCH
            batch, start, size = waiting[start:start + size], start + size, min(2 * size, LAUNCH_BATCH)
            concerned = [order for order in await self._index.resting(batch) if order.quote_mint == quote.mint]
            for kind, count in await asyncio.gather(*(self._show_launch(market, venue, quote, order)
                                                      for order in concerned)):
                outcome[kind] += count
        return outcome

    async def _show_launch(self, market: Market, venue: str, quote: Token, order: RestingOrder) -> tuple[str, int]:
        """One sniper order's answer to the launch: ("refused", 1), or ("fired", 1 if it fired)."""
        fill = self._best_fill(market, order, venues=(venue,))
        if fill is None:
            refusal, facts = "the new pool cannot fill this size", {}
        else:
            pool = market.pool(venue, order.input_mint, order.output_mint)
            impact_bps = int((fill[2].price_impact * 10_000).to_integral_value(rounding=ROUND_CEILING))
            launch = Launch(venue, quote.to_ui(pool.reserve_of(quote.mint)), fill[1], impact_bps)
            refusal = launch_refusal(order.conditions or {}, launch)
            facts = {"venue": venue, "liquidity": format_decimal(launch.liquidity_quote),
                     "price": format_decimal(launch.price), "priceImpactBps": launch.price_impact_bps}
        if refusal is not None:
            await self._queues.send(LaunchRefused(order.order_id, refusal, facts))
            return "refused", 1
        if not await self._index.claim_sniper(order):
            return "fired", 0
        return "fired", int(await self._fire(TriggerFired(order.order_id, {"launch": facts})))

    async def expire_due(self) -> int:
        expired = 0
        for order_id in await self._index.due_expiries(self._clock.now()):
            if await self._index.claim_expiry(order_id):
                await self._queues.send(ExpireRequest(order_id))
                expired += 1
        return expired


class MarketDriver:
    """Drives the market from the one process that holds the lease: drift ticks (firing the limit
    orders each crosses), random launches, expiry checks. Every engine process runs one and
    contends for the lease every second; the holder renews it, so its duties move to another
    process within 5 s of its death, and to none while Redis is away."""

    def __init__(self, lease: Lease, watcher: PriceWatcher, sim: SimulationSettings, expiry_poll_s: float,
                 renew_s: float = LEASE_RENEW_S) -> None:
        self._lease = lease
        self._watcher = watcher
        self._sim = sim
        self._expiry_poll_s = expiry_poll_s
        self._renew_s = renew_s
        self._duties: list[asyncio.Task] = []
        self.leading = False

    async def run(self) -> None:
        while True:
            try:
                leading = await self._lease.hold()
            except Exception as exc:  # Redis away: nobody can be sure to lead; stop until it is back
                log.warning("market lease unreachable (%s)", type(exc).__name__)
                leading = False
            if leading != self.leading:
                log.info("%s the market drive (%s)", "took over" if leading else "gave up", self._lease.holder)
                self._start_duties() if leading else await self._stop_duties()
                self.leading = leading
            await asyncio.sleep(self._renew_s)

    async def drive_once(self) -> dict[str, int]:
        """One round of the duties, if this holder can take the lease (a scheduled function, which
        cannot keep the loop running): a drift tick and the limit orders it fires, and the
        expiries due. Nothing when another process holds the lease."""
        if not await self._lease.hold():
            return {"drifted": 0, "fired": 0, "expired": 0}
        fired = await self._watcher.drift() if self._sim.drift_interval_ms > 0 else 0
        return {"drifted": int(self._sim.drift_interval_ms > 0), "fired": fired,
                "expired": await self._watcher.expire_due()}

    def _start_duties(self) -> None:
        if self._sim.drift_interval_ms > 0:
            self._duties.append(asyncio.create_task(self._every(self._sim.drift_interval_ms / 1000, self._watcher.drift)))
        if self._sim.launch_interval_ms > 0:
            self._duties.append(asyncio.create_task(
                self._every(self._sim.launch_interval_ms / 1000, self._watcher.launch_at_random)))
        self._duties.append(asyncio.create_task(self._every(self._expiry_poll_s, self._watcher.expire_due)))

    async def _stop_duties(self) -> None:
        for task in self._duties:
            task.cancel()
        await asyncio.gather(*self._duties, return_exceptions=True)
        self._duties = []

    @staticmethod
    async def _every(interval_s: float, step: Callable[[], Awaitable[object]]) -> None:
        while True:
            await asyncio.sleep(interval_s)
            try:
                await step()
            except Exception:  # Redis, PostgreSQL or a queue hiccup: the next round retries, the driver lives on
                log.exception("market driver round failed")

    async def close(self) -> None:
        await self._stop_duties()
        if self.leading:
            with contextlib.suppress(Exception):
                await self._lease.release()  # hand over at once instead of after the lease lapses
