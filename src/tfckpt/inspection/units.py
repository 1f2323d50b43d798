"""Numbers for people: byte counts in binary units."""

from __future__ import annotations

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(count: int | None) -> str:
    """``1536`` -> ``'1.5 KiB'``; ``None`` (unknown) -> ``'?'``.

    Example::

        >>> human_bytes(24), human_bytes(1 << 20)
        ('24 B', '1.0 MiB')
    """
    if count is None:
        return "?"
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover
