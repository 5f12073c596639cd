"""Token amounts: exact decimal strings <-> base units, and token look-up."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.domain.tokens import (
    SOL,
    U64_MAX,
    USDC,
    TokenError,
    TokenRegistry,
    format_decimal,
    parse_amount,
    parse_price,
)

# --- parse_amount: accepted --------------------------------------------------------------


def test_one_and_a_half_sol_is_1_5_billion_lamports() -> None:
    # "1" + "5".ljust(9, "0") = "1500000000"
    assert parse_amount("amount", "1.5", SOL) == 1_500_000_000


def test_one_usdc_is_one_million_base_units() -> None:
    # "1" + "".ljust(6, "0") = "1000000"
    assert parse_amount("amount", "1", USDC) == 1_000_000


def test_one_lamport_is_the_smallest_sol_amount() -> None:
    # "0" + "000000001" = 1
    assert parse_amount("amount", "0.000000001", SOL) == 1


@given(number=st.from_regex(r"[1-9][0-9]{0,5}(\.[0-9]{1,6})?", fullmatch=True),
       before=st.text(st.sampled_from(" \t\n\r\x0b\x0c\u00a0\u2003\u3000"), max_size=3),
       after=st.text(st.sampled_from(" \t\n\r\x0b\x0c\u00a0\u2003\u3000"), max_size=3))
def test_amounts_and_prices_refuse_surrounding_whitespace_alike(number: str, before: str, after: str) -> None:
    """One rule for every decimal field: the digits and nothing around them (not even a newline)."""
    assert parse_amount("amount", number, SOL) > 0 and parse_price("limitPrice", number) > 0
    if before or after:
        with pytest.raises(TokenError) as amount_error:
            parse_amount("amount", before + number + after, SOL)
        with pytest.raises(TokenError) as price_error:
            parse_price("limitPrice", before + number + after)
        assert (amount_error.value.field, price_error.value.field) == ("amount", "limitPrice")


def test_leading_zeros_in_the_integer_part_are_accepted() -> None:
    # The regex is ^\d+(\.\d+)?$, so "00.5" is digits, a dot, digits: 0.5 SOL.
    assert parse_amount("amount", "00.5", SOL) == 500_000_000


def test_exactly_u64_max_base_units_is_accepted() -> None:
    # U64_MAX = 18446744073709551615 lamports = 18446744073.709551615 SOL
    assert parse_amount("amount", "18446744073.709551615", SOL) == U64_MAX


def test_full_sol_precision_is_accepted() -> None:
    # 9 decimals is exactly what SOL allows: 1.123456789 SOL = 1_123_456_789 lamports
    assert parse_amount("amount", "1.123456789", SOL) == 1_123_456_789


# --- parse_amount: refused ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "0",  # zero
        "0.0",  # zero with decimals
        "0.000000000",  # zero at full precision
        "-1",  # sign
        "+1",  # sign
        "1e9",  # exponent
        "abc",  # not a number
        "",  # empty
        "   ",  # only whitespace
        "1.",  # regex needs digits after the dot
        ".5",  # regex needs digits before the dot
        "1,5",  # comma decimal separator
        "1 000",  # inner whitespace
        "0x10",  # hex
    ],
)
def test_malformed_or_zero_amounts_are_refused_naming_the_field(text: str) -> None:
    with pytest.raises(TokenError) as caught:
        parse_amount("amount", text, SOL)
    assert caught.value.field == "amount"


def test_more_decimals_than_sol_has_are_refused() -> None:
    # "1.0000000001" has 10 decimals; SOL allows 9.
    with pytest.raises(TokenError) as caught:
        parse_amount("amount", "1.0000000001", SOL)
    assert caught.value.field == "amount"


def test_more_decimals_than_usdc_has_are_refused() -> None:
    # "0.0000001" has 7 decimals; USDC allows 6.
    with pytest.raises(TokenError) as caught:
        parse_amount("quote_amount", "0.0000001", USDC)
    assert caught.value.field == "quote_amount"


def test_one_base_unit_above_u64_max_is_refused() -> None:
    # 18446744073.709551616 SOL = 18446744073709551616 lamports = U64_MAX + 1
    with pytest.raises(TokenError) as caught:
        parse_amount("amount", "18446744073.709551616", SOL)
    assert caught.value.field == "amount"


def test_text_longer_than_64_characters_is_refused() -> None:
    with pytest.raises(TokenError) as caught:
        parse_amount("amount", "1" + "0" * 64, USDC)
    assert caught.value.field == "amount"


# --- parse_price ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("180.5", Decimal("180.5")),
        ("1", Decimal(1)),
        ("0.00000015", Decimal("0.00000015")),
        ("007.50", Decimal("7.5")),
        ("1" * 30, Decimal("1" * 30)),  # 30 significant digits: the most allowed
        ("0.000" + "1" * 30, Decimal("0.000" + "1" * 30)),  # leading zeros are not significant
    ],
)
def test_parse_price_reads_positive_decimal_strings(text: str, expected: Decimal) -> None:
    assert parse_price("limitPrice", text) == expected


@pytest.mark.parametrize(
    "text",  # surrounding whitespace: test_amounts_and_prices_refuse_surrounding_whitespace_alike
    ["", "0", "0.000", "-1", "+1", "1e3", "1E3", ".5", "5.", "1,5", "abc", "NaN", "Infinity", "1" * 31],
)
@pytest.mark.parametrize("field", ["limitPrice", "maxPrice"])
def test_parse_price_errors_name_the_field(text: str, field: str) -> None:
    with pytest.raises(TokenError) as caught:
        parse_price(field, text)
    assert caught.value.field == field
    assert field in caught.value.message


# --- TokenRegistry ------------------------------------------------------------------------


@pytest.mark.parametrize("symbol", ["SOL", "sol", "Sol", "sOl"])
def test_resolve_by_symbol_ignores_case(symbol: str) -> None:
    assert TokenRegistry().resolve("base_asset", symbol) is SOL


def test_resolve_by_mint_address() -> None:
    assert TokenRegistry().resolve("quote_asset", "EPjFWdd5AufqSSqeM2qN1xzybapC8G4wEGGkZwyTDt1v") is USDC


def test_resolve_unknown_asset_raises_token_error_with_the_field() -> None:
    with pytest.raises(TokenError) as caught:
        TokenRegistry().resolve("quote_asset", "DOGE")
    assert caught.value.field == "quote_asset"


def test_by_mint_returns_the_token() -> None:
    assert TokenRegistry().by_mint(SOL.mint) is SOL


# --- formatting ---------------------------------------------------------------------------


def test_format_one_and_a_half_sol() -> None:
    # 1_500_000_000 · 10^-9 = 1.500000000 -> trailing zeros dropped
    assert SOL.format(1_500_000_000) == "1.5"


def test_format_whole_sol_has_no_decimal_point() -> None:
    # 1_000_000_000 · 10^-9 = 1.000000000 -> "1"
    assert SOL.format(1_000_000_000) == "1"


def test_format_one_lamport() -> None:
    assert SOL.format(1) == "0.000000001"


def test_format_zero_is_zero() -> None:
    assert SOL.format(0) == "0"


def test_format_decimal_never_uses_exponent_notation() -> None:
    # 1.5E-7 = 0.00000015
    assert format_decimal(Decimal("1.5E-7")) == "0.00000015"


def test_format_decimal_keeps_zeros_of_a_whole_number() -> None:
    # 1E+2 = 100; the integer's zeros are not "trailing decimals"
    assert format_decimal(Decimal("1E+2")) == "100"


def test_to_ui_is_exact() -> None:
    assert USDC.to_ui(224_403_923) == Decimal("224.403923")


def test_parse_then_format_round_trips() -> None:
    assert SOL.format(parse_amount("amount", "12.000340", SOL)) == "12.00034"


@pytest.mark.parametrize("text", ["١.٥", "１"])
def test_amount_refuses_non_ascii_digits(text):
    with pytest.raises(TokenError) as caught:
        parse_amount("amount", text, SOL)
    assert caught.value.field == "amount"
