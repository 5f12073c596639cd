"""Every setting, read from the environment once (by the composition root) into one frozen object."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from functools import lru_cache

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/dex_engine"


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    """The simulated world. Delays in milliseconds; probabilities as per-mille integers.

    The defaults put submit → confirmed at 2.4–2.9 s: slowest quote (180 + 0–60 ms),
    build 300, submit 400, confirm 1,500 + 0–100 ms, then up to a slot (400 ms) until it lands."""

    seed: int = 7
    zero_delays: bool = False
    quote_latency_ms_raydium: int = 120
    quote_latency_ms_meteora: int = 180
    quote_jitter_ms: int = 60
    quote_failure_permille: int = 0
    quote_timeout_ms: int = 1_500
    build_delay_ms: int = 300
    submit_delay_ms: int = 400
    confirm_delay_ms: int = 1_500
    confirm_jitter_ms: int = 100
    slot_ms: int = 400
    """The chain lands transactions in slots, as Solana does (~400 ms each): a transaction confirms
    at the first slot boundary after its confirm delay, in one landing with every other transaction
    of the process due in that slot. Boundaries fall on multiples of this since the Unix epoch, so
    every process shares them. 0 = each transaction lands the moment its own delay ends."""
    chain_failure_permille: int = 0
    drift_interval_ms: int = 1_000
    launch_interval_ms: int = 0
    """Open a random new pool (against SOL) this often; 0 = only on demand (POST /api/sim/launch)."""

    def delay_ms(self, value: int) -> int:
        return 0 if self.zero_delays else value


@dataclass(frozen=True, slots=True)
class Settings:
    redis_url: str = DEFAULT_REDIS_URL
    database_url: str = DEFAULT_DATABASE_URL
    namespace: str = "dex"
    """Prefix of every Redis key and channel, so several engines share one Redis."""
    host: str = "127.0.0.1"
    port: int = 8000
    log_level: str = "INFO"
    log_format: str = "text"
    """"text": human-readable lines; "json": one JSON object per line (logger, level, message, order id)."""
    metrics_dir: str = ""
    """Where the processes of one engine share their Prometheus metrics (multiprocess mode); empty: a
    directory the start command makes for them."""
    saq_ui: bool = False
    """Mount SAQ's own web UI under /saq (development only: it shows and can retry jobs)."""
    worker_concurrency: int = 200
    db_pool_size: int = 10
    redis_pool_size: int = 64
    job_attempts: int = 3
    job_retry_delay_ms: int = 200
    job_heartbeat_s: int = 3
    """A running job's worker renews its heartbeat every quarter of this; a job silent this long
    belonged to a dead process and is delivered again (within a second more)."""
    quote_job_timeout_s: int = 15
    route_job_timeout_s: int = 10
    execute_job_timeout_s: int = 60
    intake_job_timeout_s: int = 10
    trigger_job_timeout_s: int = 10
    expiry_poll_ms: int = 200
    """How often expiries are checked (price triggers run on every price change)."""
    default_slippage_bps: int = 50
    quote_max_age_s: int = 30
    """The oldest quote (by its `contextSlot`) POST /api/orders/execute executes as `quoteResponse`."""
    key_cache_ttl_s: int = 30
    """How long a process trusts an API key it looked up (revocations evict it at once where they
    are heard; a cloud function hears none and uses 0: PostgreSQL on every request)."""
    dev_api_key: str = ""
    """The development key the local runtime registers (client "dev") and prints at start-up;
    empty: a new random key each start."""
    orders_per_minute: int = 100
    """Default per-client rate limit (a key may carry its own)."""
    max_in_flight: int = 10
    """Default per-client orders submitted and not yet finished or resting."""
    max_order_sizes: str = "SOL=20000,USDC=5000000,USDT=5000000,BONK=100000000000,JUP=5000000"
    """Largest order per asset sold, in whole tokens: SYMBOL=amount, comma-separated."""
    ws_max_message_bytes: int = 16_384
    ws_max_sockets_per_client: int = 100
    """Per web process."""
    ws_idle_timeout_s: int = 300
    """A socket with no message from the client and no order in progress is closed after this."""
    queue_backend: str = "saq"
    """How steps reach the next function: "saq" (Redis, local workers) or "sqs" (cloud queues)."""
    sqs_queue_urls: str = ""
    """step=url pairs, comma-separated: trigger, quote, route and execute queues."""
    sqs_endpoint_url: str = ""
    """An SQS endpoint other than AWS's (a local emulator)."""
    ws_management_url: str = ""
    """The API Gateway WebSocket stage's management endpoint (https://{api}.execute-api.{region}.amazonaws.com/{stage}):
    set, every event stored is also posted to the connections following its order; empty: none."""
    batch_max: int = 256
    """Group commit: the most concurrent calls written as one statement, pipeline or queue job
    (orders' status changes, events published, messages per SAQ job); 1 = one at a time."""
    reconcile_interval_s: int = 5
    """How often the reconciler looks in PostgreSQL for stuck orders (1–59 s, or whole minutes)."""
    stall_grace_s: int = 2
    """Slack before an order whose message is no longer in hand counts as stuck (on top of two
    heartbeats), and on top of a step's timeouts × attempts where the transport cannot tell."""
    sim: SimulationSettings = field(default_factory=SimulationSettings)

    def max_order(self, symbol: str) -> Decimal | None:
        """The largest order (whole tokens) selling `symbol`, or None for no per-asset limit."""
        return _order_sizes(self.max_order_sizes).get(symbol.upper())

    def step_timeout_s(self, step: str) -> int:
        """How long one attempt of `step` may take (DEX_<STEP>_JOB_TIMEOUT_S)."""
        return getattr(self, f"{step}_job_timeout_s")

    def step_deadline_s(self, step: str) -> int:
        """How long an order may sit in front of `step` before the reconciler re-drives it: the
        step's every attempt timing out, plus the grace."""
        return self.step_timeout_s(step) * self.job_attempts + self.stall_grace_s

    def stall_after_s(self) -> int:
        """How long an order may sit unchanged before the reconciler asks whether its message is
        still in hand (queued, or running with a live heartbeat)."""
        return self.job_heartbeat_s * 2 + self.stall_grace_s

    def with_changes(self, **changes) -> Settings:
        return replace(self, **changes)


@lru_cache(maxsize=8)
def _order_sizes(text: str) -> dict[str, Decimal]:
    sizes = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        symbol, _, amount = item.partition("=")
        try:
            sizes[symbol.strip().upper()] = Decimal(amount.strip())
        except ArithmeticError:
            raise ValueError(f"setting DEX_MAX_ORDER_SIZES: {item!r} is not SYMBOL=amount") from None
    return sizes


_ENV_PREFIX = "DEX_"
_SIM_PREFIX = "DEX_SIM_"
_TOP_LEVEL_ALIASES = {"redis_url": "REDIS_URL", "database_url": "DATABASE_URL", "port": "PORT", "host": "HOST"}


def _convert(raw: str, example: object, name: str) -> object:
    if isinstance(example, bool):
        lowered = raw.strip().lower()
        if lowered not in {"1", "0", "true", "false", "yes", "no", "on", "off"}:
            raise ValueError(f"setting {name} must be true or false, got {raw!r}")
        return lowered in {"1", "true", "yes", "on"}
    if isinstance(example, int):
        try:
            return int(raw)
        except ValueError:
            raise ValueError(f"setting {name} must be an integer, got {raw!r}") from None
    return raw


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from `environ` (default os.environ): REDIS_URL, DATABASE_URL, PORT, HOST,
    DEX_<FIELD> for the rest and DEX_SIM_<FIELD> for the simulation."""
    env = os.environ if environ is None else environ
    defaults, sim_defaults = Settings(), SimulationSettings()
    sim_values = {}
    for f in fields(SimulationSettings):
        name = _SIM_PREFIX + f.name.upper()
        if name in env:
            sim_values[f.name] = _convert(env[name], getattr(sim_defaults, f.name), name)
    values: dict[str, object] = {"sim": replace(sim_defaults, **sim_values)}
    for f in fields(Settings):
        if f.name == "sim":
            continue
        name = _TOP_LEVEL_ALIASES.get(f.name, _ENV_PREFIX + f.name.upper())
        if name in env:
            values[f.name] = _convert(env[name], getattr(defaults, f.name), name)
    settings = replace(defaults, **values)
    _order_sizes(settings.max_order_sizes)  # a malformed list fails at start-up, not on an order
    if settings.log_format not in ("text", "json"):
        raise ValueError(f"setting DEX_LOG_FORMAT must be text or json, got {settings.log_format!r}")
    if settings.queue_backend not in ("saq", "sqs"):
        raise ValueError(f"setting DEX_QUEUE_BACKEND must be saq or sqs, got {settings.queue_backend!r}")
    return settings
