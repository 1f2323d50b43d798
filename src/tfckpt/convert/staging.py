"""Output paths of a conversion: refused when they exist (unless forced), and written under a
temporary name beside the final one, renamed into place only when complete, so that a
failed conversion leaves nothing under the final name."""

from __future__ import annotations

import contextlib
import glob
import os
import secrets
from collections.abc import Iterator

from tfckpt.bundle.naming import data_filename, index_filename
from tfckpt.errors import InvalidArgumentError


class OutputExistsError(InvalidArgumentError, FileExistsError):
    """The output of a conversion exists and overwriting was not asked for."""


def checkpoint_files(prefix: str) -> list[str]:
    """The files of a V2 checkpoint at ``prefix`` that exist (index and data shards)."""
    found = glob.glob(glob.escape(prefix) + ".data-?????-of-?????")
    index = index_filename(prefix)
    return sorted([index, *found] if os.path.exists(index) else found)


def check_output(path: str, *, checkpoint: bool, force: bool) -> None:
    """Raises unless ``path`` may be written.

    Raises:
        OutputExistsError: it exists (for a checkpoint: any of its files) and not ``force``.
        InvalidArgumentError: it is a directory.
    """
    if os.path.isdir(path):
        example = os.path.join(path, "ckpt" if checkpoint else "model.safetensors")
        raise InvalidArgumentError(
            f"the output is a directory; pass a {'prefix' if checkpoint else 'file'} inside "
            f"it, e.g. {example!r}",
            path=path,
        )
    existing = checkpoint_files(path) if checkpoint else [path] if os.path.exists(path) else []
    if existing and not force:
        what = "a checkpoint" if checkpoint else "the output file"
        raise OutputExistsError(f"{what} exists there; pass --force to replace it", path=path)


def remove_stale_shards(prefix: str, num_shards: int) -> None:
    """Deletes data files of an earlier checkpoint at ``prefix`` that the one just written
    (with ``num_shards`` shards) does not use."""
    keep = {data_filename(prefix, i, num_shards) for i in range(num_shards)}
    for path in glob.glob(glob.escape(prefix) + ".data-?????-of-?????"):
        if path not in keep:
            with contextlib.suppress(FileNotFoundError):
                os.remove(path)


@contextlib.contextmanager
def staged_file(final_path: str) -> Iterator[str]:
    """Yields a temporary path beside ``final_path``; renames it to ``final_path`` when the
    block succeeds and removes it when it fails.

    Example::

        with staged_file("out.npz") as temporary:
            numpy.savez(temporary, x=x)
    """
    directory, name = os.path.split(os.path.abspath(final_path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{name}.tmp{secrets.token_hex(6)}")
    try:
        yield temporary
        os.replace(temporary, final_path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
