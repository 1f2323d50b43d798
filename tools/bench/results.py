"""The rows measured so far, with the workloads' facts, notes, failures and errors."""

from __future__ import annotations

from typing import Any


class Results:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.notes: dict[str, list[str]] = {}
        self.meta: dict[str, dict[str, Any]] = {}
        self.failures: list[str] = []
        self.errors: list[str] = []

    def get(self, wl: str, section: str, lib: str) -> dict[str, Any] | None:
        """The measured row (not a reference copy), or None."""
        for row in self.rows:
            if (
                (row["workload"], row["section"], row["lib"]) == (wl, section, lib)
                and row.get("median") is not None
                and not row.get("reference")
            ):
                return row
        return None

    def median(self, wl: str, section: str, lib: str) -> float | None:
        row = self.get(wl, section, lib)
        return None if row is None else row["median"]
