"""Hostile ``checkpoint`` state files: garbage, giants, odd paths and odd numbers.

The state file has no checksum, so what ``latest_checkpoint`` and ``CheckpointManager``
return may legitimately change; what must hold is that they return or raise a
CheckpointError, quickly, without reading a giant file whole or walking the file system.
"""

from __future__ import annotations

import random
from collections.abc import Callable

from tests.fuzz.mutant import Mutant
from tests.fuzz.seeds import Seed
from tfckpt.checkpoint_state import STATE_FILENAME


def _text(path: str, *more: str) -> bytes:
    lines = [f"model_checkpoint_path: {path}", *more]
    return ("\n".join(lines) + "\n").encode("utf-8", "surrogateescape")


def _quoted(path: str) -> str:
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _hostile_paths(seed: Seed) -> list[str]:
    return [
        _quoted(seed.prefix),
        '"a\\000b"',
        '"' + "x" * 100000 + '"',
        '"/dev/zero"',
        '"/proc/self/mem"',
        '"/*/*/*/*/*/*"',
        '"checkpoint"',
        '""',
        '"."',
        '"/"',
        '"*"',
        '"*/*/*/*/*/*/*/*"',
        f'"{seed.prefix}[0-9"',
        '"\\377\\376"',
        '"../../../../../../../etc/passwd"',
    ]


def _hostile_states(rng: random.Random, seed: Seed) -> dict[str, Callable[[], bytes]]:
    """Named makers of state file contents (made on demand: some are megabytes)."""
    path = rng.choice(_hostile_paths(seed))
    good = _quoted(seed.prefix)
    paths = [f"all_model_checkpoint_paths: {good}"]
    return {
        f"model_checkpoint_path {path[:24]}": lambda: _text(
            path, f"all_model_checkpoint_paths: {path}"
        ),
        "binary garbage": lambda: rng.randbytes(rng.choice((1, 100, 5000))),
        "invalid UTF-8": lambda: b'model_checkpoint_path: "\xff\xfe"\n',
        "a UTF-8 byte order mark": lambda: b"\xef\xbb\xbf" + _text(good),
        "CRLF line ends": lambda: _text(good, *paths).replace(b"\n", b"\r\n"),
        "a NUL byte": lambda: _text(good) + b"\x00",
        "an unknown field": lambda: _text(good, "unknown_field: 1"),
        "the path twice": lambda: _text(good, f"model_checkpoint_path: {good}"),
        "nested braces": lambda: b"a {" * 50000,
        "odd timestamps": lambda: _text(
            good, *paths, "all_model_checkpoint_timestamps: nan", "last_preserved_timestamp: 1e308"
        ),
        "more timestamps than paths": lambda: _text(
            good, *["all_model_checkpoint_timestamps: -inf"] * 9
        ),
        "1.2 MiB of paths": lambda: _text(good, *paths * (1_200_000 // (len(paths[0]) + 1))),
        "half a MiB of timestamps in one list": lambda: _text(
            good, "all_model_checkpoint_timestamps: [" + ",".join(["1"] * 250_000) + "]"
        ),
        "no model_checkpoint_path": lambda: b'all_model_checkpoint_paths: "x"\n',
        "one long line": lambda: b"model_checkpoint_path: " + b"x" * 1_000_000,
    }


def kinds(seed: Seed) -> list[str]:
    """The names of the hostile state files (the first names a random hostile path)."""
    return sorted(_hostile_states(random.Random(0), seed))


def mutate(rng: random.Random, seed: Seed, kind: int | None = None) -> Mutant:
    """The seed's state file (added if it has none) replaced by a hostile one: the
    ``kind``-th of :func:`kinds`, or a random one."""
    states = sorted(_hostile_states(rng, seed).items())
    name, make = states[kind] if kind is not None else rng.choice(states)
    return Mutant(
        f"{STATE_FILENAME}: {name}", {STATE_FILENAME: make()}, changed=frozenset({"state"})
    )
