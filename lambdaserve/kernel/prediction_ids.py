"""Unique, time-sortable prediction ids (ULID layout: 48-bit milliseconds + 80 random bits).

Ids made in the same millisecond continue from the previous random part (ULID's monotonic
rule), so a batch's ids are unique and sort in row order.
"""

from __future__ import annotations

import base64
import os
import threading
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_FROM_RFC4648 = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", _CROCKFORD)
_RANDOM_BITS = 80
_lock = threading.Lock()
_last_ms = 0
_last_random = 0


def _encode_time(ms: int) -> str:
    chars = []
    for _ in range(10):
        ms, index = divmod(ms, 32)
        chars.append(_CROCKFORD[index])
    return "".join(reversed(chars))


def _reserve(count: int, now_ms: int | None) -> tuple[int, int]:
    """The millisecond and the first of ``count`` consecutive random parts to use."""
    global _last_ms, _last_random
    with _lock:
        ms = int(time.time() * 1000) if now_ms is None else now_ms
        if ms <= _last_ms:
            ms, first = _last_ms, _last_random + 1
        else:
            # The top bit stays clear so increments within a millisecond cannot overflow.
            first = int.from_bytes(os.urandom(10), "big") >> 1
        if first + count >= 1 << _RANDOM_BITS:  # practically never: wait for the next ms
            ms, first = ms + 1, int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms, _last_random = ms, first + count - 1
    return ms, first


def new_prediction_ids(count: int, now_ms: int | None = None) -> list[str]:
    """``count`` 26-character ids, strictly increasing."""
    if count <= 0:
        return []
    ms, first = _reserve(count, now_ms)
    # 10 bytes are exactly 16 base32 characters, so one encode covers the whole batch.
    packed = b"".join((first + i).to_bytes(10, "big") for i in range(count))
    randoms = base64.b32encode(packed).decode().translate(_FROM_RFC4648)
    prefix = _encode_time(ms)
    return [prefix + randoms[i * 16 : (i + 1) * 16] for i in range(count)]


def new_prediction_id(now_ms: int | None = None) -> str:
    return new_prediction_ids(1, now_ms)[0]


def reseed() -> None:
    """Forget the last millisecond and random part (SnapStart's after-restore hook): every
    environment restored from one snapshot starts its ids from fresh randomness, never from
    the snapshot's state."""
    global _last_ms, _last_random
    with _lock:
        _last_ms, _last_random = 0, 0
