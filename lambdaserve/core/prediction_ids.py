"""Unique, time-sortable prediction ids (ULID layout: 48-bit milliseconds + 80 random bits)."""

from __future__ import annotations

import os
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
_lock = threading.Lock()
_last_ms = 0
_last_random = 0


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, index = divmod(value, 32)
        chars.append(_ALPHABET[index])
    return "".join(reversed(chars))


def new_prediction_id(now_ms: int | None = None) -> str:
    """A 26-character id; ids made later (or later in the same millisecond) sort after."""
    global _last_ms, _last_random
    with _lock:
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        if ms <= _last_ms:
            ms, random_part = _last_ms, _last_random + 1
        else:
            random_part = int.from_bytes(os.urandom(10), "big") >> 1  # headroom for increments
        _last_ms, _last_random = ms, random_part
    return _encode(ms, 10) + _encode(random_part, 16)


def new_prediction_ids(count: int) -> list[str]:
    return [new_prediction_id() for _ in range(count)]
