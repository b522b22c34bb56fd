"""Time-ordered UUIDs (version 7 layout) for events and tasks.

Ids that start with the millisecond timestamp append to the store's primary-key index
instead of scattering across it, which makes inserts several times faster than with
random ``uuid4`` keys, and they still de-duplicate globally on the server.
"""

from __future__ import annotations

import os
import time
import uuid

_new = object.__new__
_set = object.__setattr__
_VERSION_VARIANT = (0x7 << 76) | (0x2 << 62)
_RAND_MASK = (1 << 74) - 1


def uuid7() -> uuid.UUID:
    """Return a new UUID whose first 48 bits are the Unix time in milliseconds."""
    rand = int.from_bytes(os.urandom(10), "big") & _RAND_MASK
    # 12 random bits go after the version nibble, 62 after the variant bits.
    value = (
        (time.time_ns() // 1_000_000) << 80
        | _VERSION_VARIANT
        | (rand >> 62) << 64
        | (rand & ((1 << 62) - 1))
    )
    # Skip UUID.__init__'s argument parsing: the value is already a valid 128-bit int.
    u = _new(uuid.UUID)
    _set(u, "int", value)
    _set(u, "is_safe", uuid.SafeUUID.unknown)
    return u
