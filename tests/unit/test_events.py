"""The event envelope on the wire: what a web process relays is what was published."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from shared.events import Event, decode_event, decode_for_relay, encode_event

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
