"""The operation behind each (section, library) row."""

from __future__ import annotations

from collections.abc import Callable

from ..context import Bench, Ctx

Operation = Callable[[Ctx], Bench]

IMPLS: dict[tuple[str, str], Operation] = {}


def impl(*keys: tuple[str, str]) -> Callable[[Operation], Operation]:
    """Registers the decorated function as the operation of the (section, lib) ``keys``."""

    def register(fn: Operation) -> Operation:
        for key in keys:
            IMPLS[key] = fn
        return fn

    return register
