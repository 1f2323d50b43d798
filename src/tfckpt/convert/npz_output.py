"""Writing ``.npz`` archives member by member, without pickle."""

from __future__ import annotations

import zipfile
from collections.abc import Iterable

import numpy as np

from tfckpt.convert.plan import Planned, Progress
from tfckpt.convert.staging import staged_file
from tfckpt.errors import UnsupportedError


def fixed_width_strings(value: np.ndarray, name: str) -> np.ndarray:
    """A string tensor (object array of ``bytes``) as a NumPy fixed-width ``S`` array, which
    ``.npy`` stores without pickle.

    Raises:
        UnsupportedError: an element ends with a NUL byte, which NumPy's fixed-width bytes
            drop when read back (the conversion would not be exact).
    """
    flat = value.reshape(-1).tolist()
    for i, item in enumerate(flat):
        if isinstance(item, str):
            item = flat[i] = item.encode("utf-8")
        if item.endswith(b"\x00"):
            raise UnsupportedError(
                f"element {i} ends with a NUL byte, which NumPy's fixed-width bytes (the only "
                "strings .npy holds without pickle) would drop",
                tensor=name,
            )
    width = max((len(item) for item in flat), default=0)
    return np.array(flat, dtype=f"S{max(width, 1)}").reshape(value.shape)


def npy_ready(value: np.ndarray, name: str) -> np.ndarray:
    """``value`` as ``numpy.save`` can write it with ``allow_pickle=False``."""
    if value.dtype == object:
        return fixed_width_strings(value, name)
    return value


def write_npz(final_path: str, planned: Iterable[Planned], progress: Progress | None) -> None:
    """Writes ``planned`` as the members ``<name>.npy`` of an uncompressed ``.npz``, as
    ``numpy.savez`` does, through a temporary renamed into place at the end.

    Raises:
        UnsupportedError: a value cannot be stored without pickle (nothing is left behind).
    """
    from numpy.lib import format as npy_format

    with (
        staged_file(final_path) as temporary,
        zipfile.ZipFile(temporary, "w", zipfile.ZIP_STORED, allowZip64=True) as archive,
    ):
        for item in planned:
            value = npy_ready(item.read(), item.name)
            with archive.open(item.name + ".npy", "w", force_zip64=True) as member:
                npy_format.write_array(member, value, allow_pickle=False)
            if progress is not None:
                progress(int(value.nbytes))
