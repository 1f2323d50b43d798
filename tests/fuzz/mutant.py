"""What a mutation did to a seed, and what reading the result must give."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Mutant:
    """What a mutation did to a seed and what the reads of the result must give.

    ``files`` replaces files (None deletes one); ``setup`` makes special files in the case
    directory.  ``must_fail`` subjects are invalid: any operation reading one must raise;
    ``must_fail_verified`` likewise when checksums are verified (a wrong checksum);
    ``changed`` subjects may legitimately read differently ("*": everything);
    ``unverified_changed``: reads that verify no checksum (partial reads) may differ.
    """

    description: str
    files: Mapping[str, bytes | None] = field(default_factory=dict)
    setup: Callable[[Path], None] | None = None
    must_fail: frozenset[str] = frozenset()
    must_fail_verified: frozenset[str] = frozenset()
    changed: frozenset[str] = frozenset()
    unverified_changed: bool = False
