"""Settings read from an environment mapping."""

from __future__ import annotations

import pytest

from shared.settings import DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, Settings, SimulationSettings, load_settings


def test_empty_environment_gives_defaults() -> None:
    assert load_settings({}) == Settings()


def test_defaults_point_at_local_services() -> None:
    settings = load_settings({})
    assert (settings.redis_url, settings.database_url, settings.port) == (DEFAULT_REDIS_URL, DEFAULT_DATABASE_URL, 8000)


def test_redis_url_is_read_without_prefix() -> None:
    assert load_settings({"REDIS_URL": "redis://cache:6380/2"}).redis_url == "redis://cache:6380/2"


def test_database_url_is_read_without_prefix() -> None:
    url = "postgresql://app@db:5432/orders"
    assert load_settings({"DATABASE_URL": url}).database_url == url


def test_port_is_read_as_an_integer() -> None:
    assert load_settings({"PORT": "9000"}).port == 9000


def test_host_is_read_without_prefix() -> None:
    assert load_settings({"HOST": "0.0.0.0"}).host == "0.0.0.0"


def test_prefixed_redis_url_is_not_an_alias() -> None:
    assert load_settings({"DEX_REDIS_URL": "redis://other"}).redis_url == DEFAULT_REDIS_URL


def test_worker_concurrency_is_read_as_an_int() -> None:
    value = load_settings({"DEX_WORKER_CONCURRENCY": "5"}).worker_concurrency
    assert value == 5 and type(value) is int


def test_string_setting_is_read_with_prefix() -> None:
    assert load_settings({"DEX_NAMESPACE": "dex-test"}).namespace == "dex-test"


def test_zero_delays_true_sets_sim_flag() -> None:
    assert load_settings({"DEX_SIM_ZERO_DELAYS": "true"}).sim.zero_delays is True


def test_zero_delays_makes_every_delay_zero() -> None:
    assert load_settings({"DEX_SIM_ZERO_DELAYS": "true"}).sim.delay_ms(300) == 0


def test_delays_are_kept_by_default() -> None:
    assert load_settings({}).sim.delay_ms(300) == 300


@pytest.mark.parametrize(("raw", "expected"), [("1", True), ("YES", True), ("on", True), ("0", False), ("off", False)])
def test_boolean_spellings(raw: str, expected: bool) -> None:
    assert load_settings({"DEX_SIM_ZERO_DELAYS": raw}).sim.zero_delays is expected


def test_sim_integer_is_read() -> None:
    assert load_settings({"DEX_SIM_SEED": "42"}).sim == SimulationSettings(seed=42)


def test_bad_integer_raises_value_error_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="DEX_WORKER_CONCURRENCY"):
        load_settings({"DEX_WORKER_CONCURRENCY": "five"})


def test_bad_port_raises_value_error_naming_the_variable() -> None:
    with pytest.raises(ValueError, match=r"\bPORT\b"):
        load_settings({"PORT": "80a"})


def test_bad_sim_integer_raises_value_error_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="DEX_SIM_QUOTE_TIMEOUT_MS"):
        load_settings({"DEX_SIM_QUOTE_TIMEOUT_MS": "1.5"})


def test_bad_boolean_raises_value_error_naming_the_variable() -> None:
    with pytest.raises(ValueError, match="DEX_SIM_ZERO_DELAYS"):
        load_settings({"DEX_SIM_ZERO_DELAYS": "maybe"})


def test_unrelated_variables_are_ignored() -> None:
    assert load_settings({"PATH": "/usr/bin", "DEX_UNKNOWN": "x"}) == Settings()


def test_with_changes_returns_a_modified_copy() -> None:
    settings = Settings()
    changed = settings.with_changes(port=1234)
    assert (changed.port, settings.port) == (1234, 8000)


def test_default_simulated_delays_put_submit_to_confirm_between_2_and_3_seconds():
    sim = SimulationSettings()
    slowest_quote_ms = max(sim.quote_latency_ms_raydium, sim.quote_latency_ms_meteora)
    fixed_ms = sim.build_delay_ms + sim.submit_delay_ms + sim.confirm_delay_ms
    fastest = slowest_quote_ms + fixed_ms
    slowest = slowest_quote_ms + sim.quote_jitter_ms + fixed_ms + sim.confirm_jitter_ms + sim.slot_ms
    assert 2_000 <= fastest <= slowest <= 3_000


def test_maximum_order_sizes_are_read_per_asset() -> None:
    settings = load_settings({"DEX_MAX_ORDER_SIZES": "SOL=10, usdc=2500.5"})
    assert settings.max_order("SOL") == 10
    assert str(settings.max_order("usdc")) == "2500.5"
    assert settings.max_order("JUP") is None


def test_a_malformed_order_size_list_fails_at_start_up() -> None:
    with pytest.raises(ValueError, match="DEX_MAX_ORDER_SIZES"):
        load_settings({"DEX_MAX_ORDER_SIZES": "SOL=lots"})


def test_step_deadlines_cover_every_attempt_timing_out() -> None:
    settings = load_settings({"DEX_EXECUTE_JOB_TIMEOUT_S": "20", "DEX_JOB_ATTEMPTS": "3", "DEX_STALL_GRACE_S": "4"})
    assert settings.step_deadline_s("execute") == 64


def test_an_order_is_asked_about_after_two_heartbeats_and_the_grace() -> None:
    settings = load_settings({"DEX_JOB_HEARTBEAT_S": "3", "DEX_STALL_GRACE_S": "2"})
    assert settings.stall_after_s() == 8
