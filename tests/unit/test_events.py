"""The event envelope on the wire: what a web process relays is what was published; and the one
reading of `?after=N` every transport shares."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from shared.domain.events import MAX_SEQ, Event, decode_event, decode_for_relay, encode_event, parse_after
from shared.domain.errors import InputError

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


@given(seq=st.integers(1, 2**31 - 1), status=st.sampled_from(["pending", "routing", "confirmed"]),
       data=st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_a_relayed_event_goes_out_exactly_as_it_was_published(seq, status, data):
    event = Event("0193a0c4-7d1e-7000-8000-000000000001", seq, status, "2026-11-25T10:00:00.123Z", data)
    published = encode_event(event)
    relayed = decode_for_relay(published)
    assert (relayed.order_id, relayed.seq, relayed.status) == (event.order_id, seq, status)
    assert encode_event(relayed) == published
    assert decode_event(encode_event(relayed)) == event


ASCII_DIGITS = "0123456789"
after_texts = st.one_of(
    st.text(),  # anything at all, Unicode digits (², ٣, ５) included
    st.text(alphabet=ASCII_DIGITS, max_size=14),  # digits, with leading zeros, around and past MAX_SEQ
    st.integers(-5, MAX_SEQ + 5).map(str),
    st.integers(MAX_SEQ - 3, 10**30).map(str),
    st.tuples(st.text(alphabet=ASCII_DIGITS, min_size=1, max_size=10),
              st.sampled_from([" ", "\n", "+", "-", ".0", "e3", "_0", "\u00b2", "\u0663", "\uff15"]),
              st.booleans()).map(lambda t: t[1] + t[0] if t[2] else t[0] + t[1]),
)


BAD_AFTER = ["²", "٣", "-1", "1e3", " 1", "1.0", "99999999999", "", "1\n", str(MAX_SEQ + 1)]
"""The values the review found or that sit on an edge; tests/e2e/test_bad_input.py sends the same."""


def _with_examples(test):
    for text in [*BAD_AFTER, "0", "007", str(MAX_SEQ), "0" * 5000 + "7"]:
        test = example(text)(test)
    return test


@_with_examples
@given(after_texts)
def test_after_is_ascii_digits_up_to_max_seq_and_anything_else_is_a_422_naming_after(text):
    is_ascii_number = text != "" and all(c in ASCII_DIGITS for c in text)
    if is_ascii_number and int(text.lstrip("0") or "0") <= MAX_SEQ:
        assert parse_after(text) == int(text.lstrip("0") or "0")
        return
    with pytest.raises(InputError) as refused:
        parse_after(text)
    assert (refused.value.status, refused.value.field) == (422, "after")
    assert "after" in refused.value.message


def test_an_absent_after_means_from_the_start():
    assert parse_after(None) == 0
