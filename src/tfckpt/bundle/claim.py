"""Claiming a checkpoint prefix for one writer, and tidying what killed writers left there.

Every tfckpt writer of a prefix (:class:`~tfckpt.bundle.writer.BundleWriter`, the merge)
first claims it: it takes the prefix's lock (:mod:`tfckpt.storage.lock`; a second writer
fails with ConcurrentWriteError instead of mixing its files with the first one's), then
puts back an overwrite that a killed writer left half done and removes the temporaries and
set-aside files killed writers left (:mod:`tfckpt.storage.commit` names them).  Only the
prefix's own names are touched: ``<prefix>.index`` and ``<prefix>.data-NNNNN-of-MMMMM``
with tfckpt's reserved suffixes, never another prefix's files or TensorFlow's.
"""

from __future__ import annotations

import glob
import os
import re

from tfckpt.bundle.naming import index_filename
from tfckpt.errors import ConcurrentWriteError, StorageError
from tfckpt.storage.commit import reserved_final, restore_set_aside
from tfckpt.storage.lock import LOCK_SUFFIX, FileLock

# A bundle's file name: the prefix, then the index or a data shard.
_BUNDLE_FILE = re.compile(r"(.+)\.(?:index|data-\d{5}-of-\d{5})")


def claim_prefix(prefix: str, *, wait: float = 0.0) -> FileLock:
    """Locks ``prefix`` for this writer and tidies it when a writer died holding it (every
    writer holds the lock while its temporaries or set-aside files exist, and a dead one
    leaves the lock file); release the lock when done.

    Raises:
        ConcurrentWriteError: another writer holds it (after ``wait`` seconds).
        StorageError: the lock file cannot be made, or tidying failed.
    """
    lock = FileLock.acquire(prefix, wait=wait, what="writer of this checkpoint")
    if not lock.inherited:  # no writer died holding it: nothing can be left to tidy
        return lock
    try:
        tidy_prefix(prefix)
    except BaseException:
        lock.release()
        raise
    return lock


def tidy_prefix(prefix: str) -> None:
    """Puts back an interrupted overwrite of ``prefix`` and removes the temporaries and
    set-aside files killed writers left.  Only for the holder of the prefix's lock.

    Raises:
        StorageError: a rename or removal failed.
    """
    temporaries, set_aside = leftovers(prefix)
    if set_aside:
        restore_set_aside(index_filename(prefix), set_aside)
    for path in temporaries:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise StorageError(
                f"removing a temporary a killed writer left failed: {exc.strerror}",
                path=path,
                errno=exc.errno,
            ) from None


def leftovers(prefix: str) -> tuple[list[str], list[str]]:
    """The temporaries (their paths) and the set-aside files (their *final* paths) of
    ``prefix`` that exist."""
    directory, base = os.path.split(prefix)
    temporaries: list[str] = []
    set_aside: list[str] = []
    for name in _names(directory, base + "."):
        found = reserved_final(name)
        if found is None or _prefix_of(found[0]) != base:
            continue
        final_name, kind = found
        if kind == "temporary":
            temporaries.append(os.path.join(directory, name))
        else:
            set_aside.append(os.path.join(directory, final_name))
    return temporaries, set_aside


def prefixes_with_leftovers(directory: str, name_start: str) -> list[str]:
    """The prefixes in ``directory`` whose base name starts with ``name_start`` and that
    have temporaries, set-aside files or a lock file."""
    found: dict[str, None] = {}
    for name in _names(directory, name_start):
        if name.endswith(LOCK_SUFFIX):
            found[os.path.join(directory, name[: -len(LOCK_SUFFIX)])] = None
            continue
        reserved = reserved_final(name)
        base = _prefix_of(reserved[0]) if reserved is not None else None
        if base is not None:
            found[os.path.join(directory, base)] = None
    return list(found)


def tidy_prefixes(directory: str, name_start: str, *, skip: str = "") -> None:
    """Tidies every prefix of ``directory`` whose base name starts with ``name_start`` (but
    ``skip``) that killed writers left files beside: claimed and released at once (which
    removes a stale lock file too); prefixes being written are left alone."""
    for prefix in prefixes_with_leftovers(directory, name_start):
        if prefix == skip:
            continue
        try:
            claim_prefix(prefix).release()
        except (ConcurrentWriteError, StorageError):
            continue  # being written, or not tidy-able now: a later save tries again


def remove_checkpoint_files(prefix: str) -> bool:
    """Deletes the V2 checkpoint at ``prefix``: its index first (from then on nobody finds
    it), then its data files and whatever killed writers left.  Returns False, deleting
    nothing, when another writer holds the prefix.

    Raises:
        StorageError: a file could not be removed.
    """
    try:
        lock = claim_prefix(prefix)
    except ConcurrentWriteError:
        return False
    with lock:
        escaped = glob.escape(prefix)
        for path in [index_filename(prefix), *glob.glob(escaped + ".data-?????-of-?????")]:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass  # another process deleted it first
            except OSError as exc:
                raise StorageError(
                    f"deleting an old checkpoint's file failed: {exc.strerror}",
                    path=path,
                    errno=exc.errno,
                ) from None
    return True


def _prefix_of(file_name: str) -> str | None:
    """The prefix (base name) of a bundle's file name, or None for other names."""
    match = _BUNDLE_FILE.fullmatch(file_name)
    return match.group(1) if match else None


def _names(directory: str, start: str) -> list[str]:
    try:
        with os.scandir(directory or ".") as entries:
            return [entry.name for entry in entries if entry.name.startswith(start)]
    except (FileNotFoundError, NotADirectoryError):
        return []
