"""The fast base58 encoder agrees with the reference package on every kind of input."""

import random

import base58
import pytest

from shared import b58


@pytest.mark.parametrize("data", [b"", b"\0", b"\0\0\0", b"\0\x01", b"\xff", bytes(range(1, 33)), b"\0" * 5 + b"\x39"])
def test_edge_cases(data):
    assert b58.encode(data) == base58.b58encode(data).decode()


def test_random_inputs_of_every_length():
    rng = random.Random(58)
    for length in range(0, 90):
        for zeros in (0, 1, 3):
            data = b"\0" * zeros + rng.randbytes(length)
            assert b58.encode(data) == base58.b58encode(data).decode()


def test_the_largest_signature_is_88_characters():
    assert len(b58.encode(b"\xff" * 64)) == 88
