"""Mutations of the large seed (:func:`tests.fuzz.seeds.large_seed`).

A byte flipped or the data file cut inside the 36 MiB tensor or among the 640 small ones:
the tensors hit must fail (the cut ones always, the flipped ones when checksums are
verified), through the parallel and chunked read paths that only large reads take; the
others must read as written.
"""

from __future__ import annotations

import random

from tests.fuzz.editing import BundleEdit
from tests.fuzz.mutant import Mutant
from tests.fuzz.seeds import Seed

KINDS = ("flip in the large tensor", "cut in the large tensor", "flip among the small ones",
         "cut among the small ones")  # fmt: skip


def _extents(edit: BundleEdit) -> list[tuple[str, int, int]]:
    """(name, offset, size) of every tensor, in file order."""
    rows = [(edit.owner(key), e.offset, e.size) for key, e in edit.parsed()]
    return sorted(rows, key=lambda row: row[1])


def mutate(rng: random.Random, seed: Seed, kind: str | None = None) -> Mutant:
    """A flip or a cut (``kind`` of KINDS, random unless given) in the large seed."""
    edit = BundleEdit.of(seed)
    assert edit is not None
    kind = kind or rng.choice(KINDS)
    extents = _extents(edit)
    large = [row for row in extents if row[2] > 1 << 20]
    pool = large if "large tensor" in kind else [row for row in extents if row[2] <= 1 << 20]
    _, offset, size = rng.choice(pool)
    at = offset + rng.randrange(size)
    name = edit.data_name(0)
    data = seed.files[name]
    if kind.startswith("cut"):
        hit = frozenset(n for n, o, s in extents if o + s > at)
        return Mutant(f"{name}: {kind}, at byte {at}", {name: data[:at]}, must_fail=hit)
    flipped = data[:at] + bytes([data[at] ^ 0x20]) + data[at + 1 :]
    (hit,) = [n for n, o, s in extents if o <= at < o + s]
    return Mutant(f"{name}: {kind}, byte {at}", {name: flipped},
                  must_fail_verified=frozenset({hit}), unverified_changed=True)  # fmt: skip
