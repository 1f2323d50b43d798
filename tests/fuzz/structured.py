"""Structure-aware mutations: which ones apply to a seed, and picking one.

Bundles (plain or object-based) get entry, header, key, string and slice mutations
(:mod:`~tests.fuzz.bundle_mutations`), table layout mutations of their index
(:mod:`~tests.fuzz.table_mutations`) and, when object-based, graph and NumpyState
mutations (:mod:`~tests.fuzz.object_mutations`); V1 checkpoints get table-of-contents and
value mutations (:mod:`~tests.fuzz.v1_mutations`) and table layout mutations of their
files; every seed may get a hostile state file (:mod:`~tests.fuzz.state_mutations`).
A mutation that does not apply to the seed is retried with another.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable

from tests.fuzz import (
    bundle_mutations,
    object_mutations,
    state_mutations,
    table_mutations,
    tables,
    v1_mutations,
)
from tests.fuzz.editing import BundleEdit
from tests.fuzz.mutant import Mutant
from tests.fuzz.seeds import Seed

SeedMutation = Callable[[random.Random, Seed], Mutant | None]
_ATTEMPTS = 20


def _bundle(mutation: bundle_mutations.Mutation) -> SeedMutation:
    @functools.wraps(mutation)
    def apply(rng: random.Random, seed: Seed) -> Mutant | None:
        edit = BundleEdit.of(seed)
        return None if edit is None else mutation(rng, edit)

    return apply


def _table(rng: random.Random, seed: Seed) -> Mutant | None:
    """A table layout mutation of the index, or of one V1 file."""
    index = seed.index_file()
    name = index or rng.choice(sorted(seed.own))
    data, what, verdict = table_mutations.mutate(
        rng, tables.decode_table(seed.files[name]), is_index=index is not None
    )
    description = f"{name}: {what}"
    if verdict == "fail":
        return Mutant(description, {name: data}, must_fail=frozenset({"open"}))
    if verdict == "changed":
        return Mutant(description, {name: data}, changed=frozenset({"*"}))
    return Mutant(description, {name: data})


def _state(rng: random.Random, seed: Seed) -> Mutant | None:
    return state_mutations.mutate(rng, seed)


def applicable(seed: Seed) -> list[tuple[SeedMutation, int]]:
    """The mutations that may apply to ``seed``, with their weights."""
    out: list[tuple[SeedMutation, int]] = [(_table, 8), (_state, 3)]
    if seed.kind == "v1":
        out.append((v1_mutations.mutate, 25))
        return out
    out += [(_bundle(m), w) for m, w in bundle_mutations.MUTATIONS]
    if seed.kind == "objects":
        out += [(_bundle(m), 2 * w) for m, w in object_mutations.MUTATIONS]
    return out


def mutate(rng: random.Random, seed: Seed) -> Mutant:
    """A structure-aware mutation of ``seed`` (a hostile state file if none applies)."""
    mutations, weights = zip(*applicable(seed))
    for _ in range(_ATTEMPTS):
        mutant = rng.choices(mutations, weights)[0](rng, seed)
        if mutant is not None:
            return mutant
    return state_mutations.mutate(rng, seed)
