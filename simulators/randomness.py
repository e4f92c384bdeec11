"""Independent random streams per (seed, device, purpose).

Every device draws its noise, its reporting jitter and its faults from streams of its own,
derived from the scenario seed and stable names. So the same seed always gives the same
output, and adding a fault to one device, or a device to the registry, does not shift the
noise of any other: two runs differ only where the scenarios differ.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stream(seed: int, *names: str) -> np.random.Generator:
    """A generator seeded from ``seed`` and ``names`` (stable across runs, machines, Pythons).

    ``hash()`` of a string changes with every interpreter start, so the names are hashed with
    SHA-256 instead.
    """
    digest = hashlib.sha256("\x1f".join((str(seed), *names)).encode()).digest()
    words = [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(words)))
