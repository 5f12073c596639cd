"""The simulated world's clockwork: price changes fire limit orders, launches fire sniper
orders, time expires resting orders. Each firing is claimed in the Redis index (once, however
many watchers run) and run through the `trigger` function here, whose conditional change
(waiting → triggered) decides against a racing cancel; the next step goes to its queue."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from decimal import ROUND_CEILING, Decimal

import msgspec

from functions import trigger
from shared.adapters.redis_triggers import RedisTriggerIndex, RestingOrder
from shared.context import Clock, Context, Queues
from shared.messages import ExpireRequest, LaunchRefused, TriggerFired
from shared.prices import price_of_base
from shared.tokens import SOL, Token, TokenRegistry, format_decimal
from shared.triggers import Launch, crossed, launch_refusal
from shared.venues.market import VENUES, LaunchPlan, Market
from shared.venues.simulated import SimulatedVenues
from shared.venues.swap import InsufficientLiquidity

log = logging.getLogger("engine.watchers")


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
        log.warning("firing %s here failed (%s: %s); queued for trigger", message.order_id, type(exc).__name__, exc)
        await queues.send(message)
        return True
    if follow_up is None:
        return False
    await queues.send(follow_up)
    return True


class PriceWatcher:
    def __init__(
        self,
        market: Market,
        venues: SimulatedVenues,
        tokens: TokenRegistry,
        index: RedisTriggerIndex,
        queues: Queues,
        clock: Clock,
        fire: Fire,
    ) -> None:
        self._market = market
        self._venues = venues
        self._tokens = tokens
        self._index = index
        self._queues = queues
        self._clock = clock
        self._fire = fire

    def _best_fill(self, order: RestingOrder, venues=VENUES) -> tuple[str, Decimal, object] | None:
        """(venue, price quote-per-base, outcome) of the best single-venue fill for this size now."""
        base, quote = self._tokens.by_mint(order.base_mint), self._tokens.by_mint(order.quote_mint)
        best = None
        for venue in venues:
            if self._market.pool(venue, order.input_mint, order.output_mint) is None:
                continue
            try:
                outcome = self._venues.outcome(venue, order.input_mint, order.output_mint, order.amount_in)
            except InsufficientLiquidity:
                continue
            price = price_of_base(order.side, base, quote, order.amount_in, outcome.amount_out)
            better = best is None or (price > best[1] if order.side == "sell" else price < best[1])
            if better:
                best = (venue, price, outcome)
        return best

    async def prices_changed(self) -> int:
        """Fire every limit order the current prices reach; returns how many fired."""
        fired = 0
        for spec in list(self._market.specs.values()):
            spots = [p for v in VENUES if (p := self._market.spot_price(v, spec.base.mint, spec.quote.mint))]
            if not spots:
                continue
            for side, best_spot in (("sell", max(spots)), ("buy", min(spots))):
                candidates = await self._index.limit_candidates(spec.base.mint, spec.quote.mint, side, best_spot)
                for order in candidates:
                    fill = self._best_fill(order)
                    if fill is None or not crossed(side, order.limit_price, fill[1]):
                        continue
                    if await self._index.claim_limit(order):
                        reason = {"venue": fill[0], "price": format_decimal(fill[1]),
                                  "limitPrice": format_decimal(order.limit_price)}
                        fired += await self._fire(TriggerFired(order.order_id, reason))
        return fired

    async def launch(self, plan: LaunchPlan, quote: Token) -> dict[str, int]:
        """Open the planned pool and show it to the sniper orders waiting for its token."""
        self._tokens.add(plan.base)
        self._market.launch(plan.venue, plan.base, quote, plan.base_amount, plan.quote_amount)
        outcome = await self.launched(plan.venue, plan.base, quote)
        log.info("launched %s", msgspec.json.encode({"venue": plan.venue, "mint": plan.base.mint, **outcome}).decode())
        return outcome

    async def launch_at_random(self) -> None:
        plan = self._market.plan_random_launch(SOL, await self._index.awaited_mints())
        if plan is not None:
            await self.launch(plan, SOL)

    async def launched(self, venue: str, base: Token, quote: Token) -> dict[str, int]:
        """Show a new pool (base/quote) to every sniper order waiting to buy its token with its
        quote token. An order buying the token with another quote asset is not concerned: a
        launch on another pair is ignored, not refused."""
        outcome = {"fired": 0, "refused": 0}
        for order in await self._index.snipers(base.mint):
            if order.quote_mint != quote.mint:
                continue
            fill = self._best_fill(order, venues=(venue,))
            if fill is None:
                refusal, facts = "the new pool cannot fill this size", {}
            else:
                pool = self._market.pool(venue, order.input_mint, order.output_mint)
                impact_bps = int((fill[2].price_impact * 10_000).to_integral_value(rounding=ROUND_CEILING))
                launch = Launch(venue, quote.to_ui(pool.reserve_of(quote.mint)), fill[1], impact_bps)
                refusal = launch_refusal(order.conditions or {}, launch)
                facts = {"venue": venue, "liquidity": format_decimal(launch.liquidity_quote),
                         "price": format_decimal(launch.price), "priceImpactBps": launch.price_impact_bps}
            if refusal is not None:
                await self._queues.send(LaunchRefused(order.order_id, refusal, facts))
                outcome["refused"] += 1
            elif await self._index.claim_sniper(order):
                outcome["fired"] += await self._fire(TriggerFired(order.order_id, {"launch": facts}))
        return outcome

    async def expire_due(self) -> int:
        expired = 0
        for order_id in await self._index.due_expiries(self._clock.now()):
            if await self._index.claim_expiry(order_id):
                await self._queues.send(ExpireRequest(order_id))
                expired += 1
        return expired

    async def run_drift(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            self._market.tick()
            await self._guarded(self.prices_changed)

    async def run_launches(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self._guarded(self.launch_at_random)

    async def run_expiry(self, interval_s: float) -> None:
        while True:
            await asyncio.sleep(interval_s)
            await self._guarded(self.expire_due)

    @staticmethod
    async def _guarded(step) -> None:
        try:
            await step()
        except Exception:  # Redis or a queue hiccup: the next round retries, the watcher lives on
            log.exception("watcher round failed")
