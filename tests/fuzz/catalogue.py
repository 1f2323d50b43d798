"""The deterministic catalogue of hostile cases CI runs in full.

Random cases reach every kind of damage eventually; the catalogue reaches each one every
run: every special file in place of every file of a few seeds, every hostile state file,
every hostile ``py_state`` value, every object graph change, each structure-aware
mutation a few times on each representative seed, and each damage to the large seed.
Case ``n`` of the catalogue is always the same case.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence

from tests.fuzz import (
    large_mutations,
    object_mutations,
    specials,
    state_mutations,
    structured,
)
from tests.fuzz.editing import BundleEdit
from tests.fuzz.engine import Case
from tests.fuzz.mutant import Mutant
from tests.fuzz.seeds import Seed, large_seed

# Representative seeds: every dtype (both byte orders), Snappy blocks of few entries,
# partitioned tensors, V1 in one and in two files, NumpyState and nested objects, a
# managed directory, a corpus checkpoint written by TensorFlow.
SEEDS = (
    "synthetic/mixed",
    "synthetic/big_endian",
    "synthetic/snappy_small_blocks",
    "synthetic/objects",
    "synthetic/manager",
    "fixtures/partitioned/ckpt",
    "fixtures/v1_format/model.ckpt",
    "fixtures/v1_sharded/model.ckpt",
    "fixtures/objects/nested/ckpt-1",
    "corpus/google-research-t5x/t5x/testdata/mtf_tiny_t5/model.ckpt-0",
)
SPECIAL_SEEDS = ("synthetic/mixed", "synthetic/objects", "fixtures/v1_sharded/model.ckpt")
REPEATS = 2  # runs of each structure-aware mutation on each seed

Entry = tuple[str, str, Callable[[random.Random, Seed], Mutant | None]]  # family, seed, how


def _by_name(seeds: Sequence[Seed]) -> dict[str, Seed]:
    return {seed.name: seed for seed in seeds}


def _specials(seeds: dict[str, Seed]) -> list[Entry]:
    out: list[Entry] = []
    for name in SPECIAL_SEEDS:
        for target in specials.targets(seeds[name]):
            for kind in specials.KINDS:
                out.append(("special", name, functools.partial(_special, name=target, kind=kind)))
    return out


def _special(rng: random.Random, seed: Seed, name: str, kind: str) -> Mutant:
    return specials.mutate(rng, seed, name, kind)


def _states(seeds: dict[str, Seed]) -> list[Entry]:
    seed = "synthetic/manager"
    count = len(state_mutations.kinds(seeds[seed]))
    return [("structure", seed, functools.partial(_state, kind=kind)) for kind in range(count)]


def _state(rng: random.Random, seed: Seed, kind: int) -> Mutant:
    return state_mutations.mutate(rng, seed, kind)


def _on_bundle(
    rng: random.Random, seed: Seed, how: Callable[..., Mutant | None], **kwargs: object
) -> Mutant | None:
    edit = BundleEdit.of(seed)
    return None if edit is None else how(rng, edit, **kwargs)


def _objects() -> list[Entry]:
    out: list[Entry] = []
    for blob in sorted(object_mutations.hostile_blobs()):
        out.append(
            (
                "structure",
                "synthetic/objects",
                functools.partial(_on_bundle, how=object_mutations.py_state, blob=blob),
            )
        )
    for seed in ("synthetic/objects", "fixtures/objects/nested/ckpt-1"):
        for change in range(len(object_mutations.GRAPH_CHANGES)):
            out.append(
                (
                    "structure",
                    seed,
                    functools.partial(_on_bundle, how=object_mutations.graph, change=change),
                )
            )
    return out


# Mutations slow enough (a second or more) to run on one seed only; hostile state files,
# which _states runs every one of, on none.
_ONLY_ON = {"many_slices": "synthetic/mixed", "_state": ""}


def _structured(seeds: dict[str, Seed]) -> list[Entry]:
    out: list[Entry] = []
    for name in SEEDS:
        for mutation, _ in structured.applicable(seeds[name]):
            if _ONLY_ON.get(mutation.__name__, name) == name:
                out += [("structure", name, mutation)] * REPEATS
    return out


def _large() -> list[Entry]:
    return [("large", "synthetic/large", functools.partial(_large_case, kind=kind))
            for kind in large_mutations.KINDS]  # fmt: skip


def _large_case(rng: random.Random, seed: Seed, kind: str) -> Mutant:
    return large_mutations.mutate(rng, seed, kind)


def _seed_table(seeds: tuple[Seed, ...]) -> dict[str, Seed]:
    return {**_by_name(seeds), "synthetic/large": large_seed()}


@functools.cache
def _entries(seeds: tuple[Seed, ...]) -> tuple[Entry, ...]:
    by_name = _by_name(seeds)
    return tuple(
        _specials(by_name) + _states(by_name) + _objects() + _structured(by_name) + _large()
    )


def size(seeds: tuple[Seed, ...]) -> int:
    """The number of cases in the catalogue."""
    return len(_entries(seeds))


def _name(how: Callable[..., object]) -> str:
    inner = how.func if isinstance(how, functools.partial) else how
    return getattr(inner, "__name__", repr(inner))


def case(number: int, seeds: tuple[Seed, ...]) -> Case:
    """Catalogue case ``number`` (where its mutation does not apply to its seed, the seed
    unchanged: every read must give its values)."""
    family, name, how = _entries(seeds)[number]
    seed = _seed_table(seeds)[name]
    rng = random.Random(f"catalogue:{number}")
    mutant = how(rng, seed) or Mutant(f"unchanged ({_name(how)} does not apply)")
    return Case(number, family, seed, mutant, verify=number % 5 != 4)
