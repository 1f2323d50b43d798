"""``tfckpt.Checkpoint``: TensorFlow's object-based checkpoints without TensorFlow.

Mirrors ``tf.train.Checkpoint`` (tensorflow/python/checkpoint/checkpoint.py): children are
tracked in sorted keyword order and then in order of attachment; ``save()`` numbers
checkpoints with a ``save_counter`` (an int64 stored as a variable under
``save_counter/.ATTRIBUTES/VARIABLE_VALUE``) and updates the ``checkpoint`` state file;
``write()`` does neither; ``restore()``/``read()`` match values through the object graph.
``Checkpoint(root=obj)`` makes ``obj`` the graph's root, as in TensorFlow.  With
``asynchronous=True`` (or ``CheckpointOptions(enable_async=True)``) a save returns once the
values are copied and is written in the background (:mod:`tfckpt.objects.async_save`).

Saving replaces files all or none (:mod:`tfckpt.storage.commit`): a crash leaves the old
checkpoint or the new one; ``durable=True`` also makes it survive a power loss before the
state file names it.  Restoring reads and checks every value before assigning any
(:mod:`tfckpt.objects.restore`): a failed restore changes nothing.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import os
import posixpath
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, cast

import numpy as np

from tfckpt.bundle.claim import remove_checkpoint_files, tidy_prefixes
from tfckpt.bundle.naming import index_filename
from tfckpt.bundle.sharding import MaxShardSizePolicy
from tfckpt.bundle.writer import BundleWriter
from tfckpt.checkpoint_state import check_state_path, read_state, state_lock, write_state
from tfckpt.errors import CheckpointError, InvalidArgumentError, UnsupportedError
from tfckpt.objects import graph, trackable
from tfckpt.objects.async_save import BackgroundSaves
from tfckpt.objects.keys import OBJECT_GRAPH_KEY, SAVE_COUNTER, VARIABLE_VALUE
from tfckpt.objects.restore import InitializationOnlyStatus, LoadStatus
from tfckpt.objects.restore_entry import restore_objects
from tfckpt.paths import checkpoint_format
from tfckpt.reader import load_checkpoint
from tfckpt.storage.location import is_url, locate

if TYPE_CHECKING:
    from tfckpt.storage.remote import RemoteStorage

_Where = TypeVar("_Where")
_Where_contra = TypeVar("_Where_contra", contravariant=True)


class Binder(Protocol[_Where_contra]):
    """What a restore defers to a child attached later: ``bind(child, where)`` restores it.

    ``where`` is a node id of the object graph (:class:`~tfckpt.objects.restore.
    Restoration`) or, for a name-based checkpoint, the path of names the child would have
    (:class:`~tfckpt.objects.name_based.NameBasedRestoration`)."""

    def bind(self, obj: Any, where: _Where_contra, /) -> None: ...

# How long Checkpoint.save waits for another writer of the state file (a CheckpointManager
# saving in the same directory holds it throughout its save).
_STATE_WAIT_SECONDS = 10.0


def write_objects(
    root: Any,
    file_prefix: str | os.PathLike[str],
    *,
    durable: bool = False,
    max_shard_size: int | None = None,
    num_shards: int | None = None,
    fs: Any = None,
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Writes the object graph under ``root`` and its values as a V2 checkpoint.

    Values are written in TensorFlow's order, the object graph last, so ``max_shard_size``
    (bytes) gives the data files ``tf.train.Checkpoint.write`` writes with
    ``CheckpointOptions(experimental_sharding_callback=MaxShardSizePolicy(max_shard_size))``
    (the graph joins the last shard, counted as 0 bytes, as in TF); ``num_shards`` spreads
    whole values over that many data files (:mod:`tfckpt.bundle.sharding`).
    ``file_prefix`` may be an fsspec URL (``storage_options`` go to fsspec) or a path on the
    fsspec filesystem ``fs``: the files are streamed there, data first, index last
    (:mod:`tfckpt.storage.remote_commit`).

    Example::

        write_objects(Checkpoint(w=np.ones((1024, 1024))), "/tmp/ckpt", max_shard_size=1 << 20)
        write_objects(Checkpoint(w=np.ones(3)), "s3://bucket/run/ckpt")

    Raises:
        As :class:`~tfckpt.bundle.writer.BundleWriter`.
    """
    nodes = graph.collect(root)
    proto = graph.to_proto(nodes)
    with BundleWriter(
        file_prefix,
        durable=durable,
        max_shard_size=max_shard_size,
        num_shards=num_shards,
        fs=fs,
        storage_options=storage_options,
    ) as writer:
        writer.add_many(
            (key, value_fn())
            for node in nodes
            for _full_name, key, value_fn in node.attributes.values()
        )
        writer.add(OBJECT_GRAPH_KEY, proto.SerializeToString(deterministic=True))
    return os.fspath(file_prefix)


class SaveLocation:
    """Where saves write: the local file system or a store, resolved once from what the
    caller passed (a path or URL, ``fs``, ``storage_options``, as
    :func:`tfckpt.storage.location.locate` takes them).

    Paths stay in the caller's form (URLs stay URLs) and are handed on with :attr:`options`
    to the writers, the state file and the readers; what only exists locally (prefix locks,
    temporaries to tidy, ``os.path`` arithmetic) is done on local paths only.

    Raises:
        UnsupportedError: a URL whose fsspec backend is not installed.
        InvalidArgumentError: ``storage_options`` with a local path, or both ``fs`` and
            ``storage_options``.

    Example::

        where = SaveLocation("s3://bucket/run", None, {"anon": False})
        where.join(where.path, "ckpt")  # "s3://bucket/run/ckpt"
    """

    def __init__(
        self, path: str | os.PathLike[str], fs: Any, storage_options: Mapping[str, Any] | None
    ) -> None:
        given = os.fspath(path)
        self.storage, located = locate(given, fs=fs, storage_options=storage_options)
        self.remote = self.storage.remote
        # Remotely the located form is the caller's without a trailing slash.
        self.path = located if self.remote else given
        self.fs = fs
        self.storage_options = storage_options

    @property
    def options(self) -> dict[str, Any]:
        """``fs`` and ``storage_options``, for the functions that take them."""
        return {"fs": self.fs, "storage_options": self.storage_options}

    def local(self, path: str) -> str:
        """``path`` on the local file system (a ``file://`` URL stripped).  Local only."""
        if self.fs is None and not self.storage_options and not is_url(path):
            return path
        return locate(path, fs=self.fs, storage_options=self.storage_options)[1]

    def dirname(self, path: str) -> str:
        """The directory of ``path`` (its ``checkpoint`` state file's)."""
        if not self.remote:
            return os.path.dirname(path) or "."
        if "://" in path:
            scheme, rest = path.split("://", 1)
            return f"{scheme}://{posixpath.dirname(rest)}"
        return posixpath.dirname(path)

    def basename(self, path: str) -> str:
        return os.path.basename(path) if not self.remote else posixpath.basename(path)

    def join(self, directory: str, name: str) -> str:
        return os.path.join(directory, name) if not self.remote else posixpath.join(directory, name)

    def relative(self, path: str, directory: str) -> str:
        """``path`` relative to ``directory`` when it is inside, as the state file keeps it
        (remotely a path elsewhere is kept as it is)."""
        if not self.remote:
            return os.path.relpath(path, directory)
        home = directory if directory.endswith("/") else directory + "/"
        return path[len(home) :] if path.startswith(home) else path

    def same(self, a: str, b: str) -> bool:
        """Whether ``a`` and ``b`` name the same checkpoint."""
        if not self.remote:
            return os.path.abspath(self.local(a)) == os.path.abspath(self.local(b))
        store = self._store
        return _normal(store.fs_path(a)) == _normal(store.fs_path(b))

    def inside(self, directory: str, path: str) -> bool:
        """Whether the checkpoint ``path`` is in ``directory`` or below (``..`` resolved;
        locally symbolic links too); remotely a path on another store is not."""
        if not self.remote:
            home = os.path.realpath(self.local(directory))
            where = os.path.realpath(os.path.dirname(self.local(path)) or ".")
            return os.path.commonpath([home, where]) == home
        store = self._store
        if not path.startswith(store.prefix) or is_url(path) != is_url(directory):
            return False
        home = _normal(store.fs_path(directory))
        where = _normal(posixpath.dirname(store.fs_path(path)))
        return posixpath.commonpath([home, where]) == home

    @property
    def _store(self) -> RemoteStorage:
        return cast("RemoteStorage", self.storage)

    def exists(self, prefix: str) -> bool:
        """Whether a checkpoint (V2 index, or V1 files) is at ``prefix``; remotely one
        request (a HEAD of the index) for a V2 checkpoint."""
        if not self.remote:
            return checkpoint_format(self.local(prefix)) is not None
        return checkpoint_format(prefix, self.storage) is not None

    def remove_checkpoint(self, prefix: str) -> bool:
        """Deletes the V2 checkpoint at ``prefix``, its index first (from then on nobody
        finds it), then its data files; False, deleting nothing, when another local writer
        holds it.  Remotely: one listing of the data files, then one DELETE per object.

        Raises:
            StorageError: a file or object could not be deleted (those before it are).
        """
        if not self.remote:
            return remove_checkpoint_files(self.local(prefix))
        from tfckpt.storage.remote_commit import remove_objects  # (imports fsspec)

        data = self.storage.glob_files(glob.escape(prefix) + ".data-?????-of-?????")
        remove_objects(
            self.storage,
            [index_filename(prefix), *data],
            doing="deleting a checkpoint's object",
        )
        return True

    def tidy(self, directory: str, name_start: str, *, skip: str) -> None:
        """Tidies what killed local writers left beside the checkpoints named
        ``name_start...`` (:func:`tfckpt.bundle.claim.tidy_prefixes`).  Nothing remotely:
        object stores keep no temporaries (an unfinished upload is never an object), and
        without locks nothing tells a killed writer's leftovers from a live one's."""
        if not self.remote:
            tidy_prefixes(self.local(directory), name_start, skip=self.local(skip))


def _normal(fs_path: str) -> str:
    return posixpath.normpath("/" + fs_path.lstrip("/"))


def _discard_unrecorded(where: SaveLocation, directory: str, path: str) -> None:
    """Removes the checkpoint a save wrote when it could not be recorded in the state file,
    unless the state file names it already (it replaced the latest checkpoint); best
    effort, the save's own error is the one to report."""
    with contextlib.suppress(OSError, CheckpointError):
        state = read_state(directory, **where.options)
        named = state.model_checkpoint_path if state is not None else None
        if named is None or not where.same(named, path):
            where.remove_checkpoint(path)


class Checkpoint:
    """Groups NumPy arrays, NumpyState objects, dicts/lists of them and other Checkpoints.

    ``Checkpoint(model=..., optimizer=...)`` as in TensorFlow.  Arrays are saved as
    TensorFlow variables and restored in place; NumpyState attributes are re-created.

    ``Checkpoint(root=obj, **kwargs)`` (or ``Checkpoint(obj)``) makes ``obj`` the root of
    the object graph, as ``tf.train.Checkpoint(root=...)`` does: ``obj``'s children are
    saved under their own names (``v/...``, not ``root/v/...``), followed by the keyword
    arguments ``obj`` does not already have, a ``root`` reference to ``obj`` itself and
    ``save_counter``, all children of ``obj``'s node (tensorflow/python/checkpoint/
    checkpoint.py: ``attached_dependencies``).  When ``obj`` has a save counter (a
    Checkpoint that has one), it is the one used.  Restoring matches ``obj`` to the
    checkpoint's root.

    Raises:
        InvalidArgumentError: a value is not checkpointable, or a keyword argument names
            a different object than ``obj``'s child of that name.

    Example::

        state = {"w": np.zeros(3, np.float32)}
        checkpoint = Checkpoint(root=state)
        checkpoint.write("/tmp/ckpt")  # key "w/.ATTRIBUTES/VARIABLE_VALUE"
    """

    # Set through object.__setattr__ (this class's __setattr__ tracks public names only).
    _children: dict[str, Any]  # tracked children, in order of attachment
    _save_counter: np.ndarray | None  # the int64 counter, created on first access
    _deferred: dict[str, list[Callable[[Any], None]]]  # restorations awaiting a child
    _root: Any  # the object given as root=, or None
    _graph_root: Any  # node 0 of the graph this Checkpoint saves: self or an _AttachedRoot
    _saves: BackgroundSaves  # the save in flight, if any

    def __init__(self, root: Any = None, **kwargs: Any) -> None:
        object.__setattr__(self, "_children", {})
        object.__setattr__(self, "_save_counter", None)
        object.__setattr__(self, "_deferred", {})
        object.__setattr__(self, "_root", None)
        object.__setattr__(self, "_graph_root", self)
        object.__setattr__(self, "_saves", BackgroundSaves())
        if root is not None:
            trackable.check_child(root, "Checkpoint root")
            counter = trackable.lookup(root, SAVE_COUNTER, set())
            if isinstance(counter, np.ndarray):  # TF: root._lookup_dependency("save_counter")
                object.__setattr__(self, "_save_counter", counter)
            object.__setattr__(self, "_root", root)
            object.__setattr__(self, "_graph_root", _AttachedRoot(self, root))
            kwargs["root"] = root  # TensorFlow sets it as an attribute too
        for name, value in sorted(kwargs.items(), key=lambda item: item[0]):
            setattr(self, name, value)

    # -- children -------------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_"):
            object.__setattr__(self, name, value)
            return
        if name == SAVE_COUNTER:
            raise AttributeError("save_counter is managed by the Checkpoint")
        trackable.check_child(value, f"Checkpoint attribute {name!r}")
        if self._root is not None:
            own = trackable.lookup(self._root, name, set())
            if own is not None and own is not value:
                raise InvalidArgumentError(
                    f"cannot attach {name!r} to a Checkpoint whose root already has a "
                    f"different child {name!r}"
                )
        self._children[name] = value
        object.__setattr__(self, name, value)
        for bind in self._deferred.pop(name, []):
            bind(value)  # deferred restoration on attach

    def __delattr__(self, name: str) -> None:
        self._children.pop(name, None)
        object.__delattr__(self, name)

    @property
    def save_counter(self) -> int:
        """The number of completed ``save()`` calls (restored with the checkpoint); created
        on access, as in TensorFlow, so a later ``write()`` stores it.  An asynchronous save
        increments it when it completes."""
        return int(self._counter()[()])

    def _counter(self) -> np.ndarray:
        counter = self._save_counter
        if counter is None:
            counter = np.zeros((), np.int64)
            object.__setattr__(self, "_save_counter", counter)
            # A counter in a checkpoint read before it existed is restored now (TF creates
            # it lazily too, and deferred restoration fills it in).
            for bind in self._deferred.pop(SAVE_COUNTER, []):
                bind(counter)
        return counter

    def _tfckpt_children(self) -> list[tuple[str, Any]]:
        children = list(self._children.items())
        if self._save_counter is not None and (
            self._root is None or self._save_counter is not self._root_counter()
        ):
            children.append((SAVE_COUNTER, self._save_counter))
        return children

    def _root_counter(self) -> Any:
        return trackable.lookup(self._root, SAVE_COUNTER, set())

    def _tfckpt_lookup(self, name: str, attributes: set[str]) -> Any:
        if name == SAVE_COUNTER:
            return self._save_counter  # None until created: restored when it is
        return self._children.get(name)

    def _tfckpt_defer(self, name: str, restoration: Binder[_Where], where: _Where) -> None:
        """Restores the child ``name`` when it is attached: ``restoration.bind(child,
        where)``, ``where`` being a node id (object-based) or a path of names (name-based,
        :mod:`tfckpt.objects.name_based`)."""

        def bind(child: Any) -> None:
            restoration.bind(child, where)

        self._deferred.setdefault(name, []).append(bind)

    # -- saving ---------------------------------------------------------------------------

    def write(
        self,
        file_prefix: str | os.PathLike[str],
        options: Any = None,
        *,
        durable: bool = False,
        asynchronous: bool = False,
        fs: Any = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> str:
        """Writes a checkpoint at exactly ``file_prefix``; no counter, no state file.

        A checkpoint already there is replaced all or none.  ``durable=True`` fsyncs the
        files and the directory before the write completes.  ``options`` is a
        CheckpointOptions: ``enable_async`` (or ``asynchronous=True``) writes in the
        background, ``experimental_sharding_callback=MaxShardSizePolicy(n)`` limits the
        data files to ``n`` bytes as TensorFlow does, ``experimental_io_device`` is ignored.

        Asynchronously, the call returns once the values are copied (later changes to the
        arrays are not saved); :meth:`sync` waits for the write and raises its error.

        ``file_prefix`` may be an fsspec URL (``s3://``, ``gs://``, ``memory://``...;
        ``storage_options`` go to fsspec: credentials, endpoints) or a path on the fsspec
        filesystem ``fs``: the files are streamed to the store, the data objects finished
        before the index appears (:mod:`tfckpt.storage.remote_commit` says what is atomic
        on each store; ``durable`` changes nothing there).  Object stores have no locks:
        one writer per prefix is the caller's job.

        Raises:
            ConcurrentWriteError: another writer is writing ``file_prefix`` (locally).
            StorageError: writing failed (``errno`` says why: ``EACCES`` for a store
                refusing access, ``ENOENT`` for a missing bucket), naming the file or
                object; what was there is unchanged (on a store, a checkpoint it replaced
                may be gone: the message says so).
            InvalidArgumentError: a value cannot be saved; ``storage_options`` with a
                local path, or both ``fs`` and ``storage_options``.
            UnsupportedError: a sharding callback other than MaxShardSizePolicy; a URL
                whose fsspec backend is not installed.
            CheckpointError: (asynchronously) the error of the previous asynchronous
                save, if it failed; this save's own errors come from :meth:`sync` or the
                next save instead.

        Example::

            path = checkpoint.write("/tmp/ckpt/model", asynchronous=True)
            checkpoint.sync()
            checkpoint.write("gs://bucket/run/model", storage_options={"token": "cloud"})
        """
        background, max_shard_size = self._save_settings(options, asynchronous)
        path = os.fspath(file_prefix)
        where = SaveLocation(path, fs, storage_options)  # (a bad target raises now)

        def job(source: Any) -> None:
            write_objects(
                source, path, durable=durable, max_shard_size=max_shard_size, **where.options
            )

        with self._saves.turn():
            self._run_save(job, background, None, path)
        return path

    def save(
        self,
        file_prefix: str | os.PathLike[str],
        options: Any = None,
        *,
        durable: bool = False,
        asynchronous: bool = False,
        fs: Any = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> str:
        """Writes ``<file_prefix>-<n>`` with the incremented save counter and records it in
        the directory's ``checkpoint`` state file; returns the path.

        ``durable=True`` makes the checkpoint durable (fsync of its files and directory)
        before the state file names it, and the state file after.  ``options`` and
        ``asynchronous`` as for :meth:`write`.  Asynchronously, the path is returned at
        once (as TensorFlow does); the save counter and the state file change when the
        checkpoint is complete, so ``latest_checkpoint`` names the previous one until then
        (:meth:`sync` waits).

        ``file_prefix`` may be an fsspec URL or a path on the fsspec filesystem ``fs``, as
        for :meth:`write`: the data objects, then the index, then the state file are
        written there, each only after the one before is complete, so a reader of the
        state file (:func:`tfckpt.latest_checkpoint`) never finds a checkpoint that is not
        whole.  There is no state-file lock on a store (one writer per directory is the
        caller's job).

        Raises:
            ConcurrentWriteError: another writer is writing the prefix, or holds the state
                file for longer than 10 seconds (a CheckpointManager saving there; local
                only).
            StorageError: writing failed (naming the file or object: ``errno`` says why),
                or the state file's path is a directory; the counter and the state file
                are unchanged, and a checkpoint written whose state file could not be
                written is deleted again.
            InvalidArgumentError: a value cannot be saved; ``fs``/``storage_options`` as
                for :meth:`write`.
            Asynchronously, as for :meth:`write`.

        Example::

            path = checkpoint.save("/tmp/ckpt/model")  # "/tmp/ckpt/model-1"
            path = checkpoint.save("s3://bucket/run/model")  # "s3://bucket/run/model-2"
            tfckpt.latest_checkpoint("s3://bucket/run")  # "s3://bucket/run/model-2"
        """
        background, max_shard_size = self._save_settings(options, asynchronous)
        where = SaveLocation(file_prefix, fs, storage_options)
        prefix = where.path
        with self._saves.turn():
            number = self.save_counter + 1
            path = f"{prefix}-{number}"
            directory = where.dirname(path)
            check_state_path(directory, **where.options)

            def job(source: Any) -> None:
                write_objects(
                    source, path, durable=durable, max_shard_size=max_shard_size, **where.options
                )
                # The index is published: only now may the state file name the checkpoint.
                try:
                    relative = where.relative(path, directory)
                    with state_lock(directory, wait=_STATE_WAIT_SECONDS, **where.options):
                        write_state(
                            directory, relative, [relative], durable=durable, **where.options
                        )
                except BaseException:
                    _discard_unrecorded(where, directory, path)
                    raise
                # What killed saves left beside the earlier checkpoints of this name (this
                # one's own leftovers were tidied by its writer).
                where.tidy(directory, where.basename(prefix) + "-", skip=path)

            self._run_save(job, background, number, path)
        return path

    def sync(self) -> None:
        """Waits for an asynchronous save in flight; returns at once when there is none.

        Raises:
            CheckpointError: the exception the asynchronous save raised (once, as it was
                raised: a ConcurrentWriteError, StorageError, InvalidArgumentError...).

        Example::

            checkpoint.save("/tmp/ckpt/model", asynchronous=True)
            checkpoint.sync()  # the checkpoint is complete and named by the state file
        """
        self._saves.sync()

    @staticmethod
    def _save_settings(options: Any, asynchronous: bool) -> tuple[bool, int | None]:
        """Whether to save in the background and the data files' size limit, from a
        CheckpointOptions (read by attribute: the object layer does not import
        tfckpt.compat) and the ``asynchronous`` keyword.

        Raises:
            UnsupportedError: a sharding callback other than MaxShardSizePolicy.
        """
        if options is None:
            return bool(asynchronous), None
        background = bool(
            asynchronous
            or getattr(options, "enable_async", False)
            or getattr(options, "experimental_enable_async_checkpoint", False)
        )
        callback = getattr(options, "experimental_sharding_callback", None)
        if callback is None:
            return background, None
        if not isinstance(callback, MaxShardSizePolicy):
            raise UnsupportedError(
                f"tfckpt saves with MaxShardSizePolicy sharding only, not {type(callback).__name__}"
            )
        return background, callback.max_shard_size

    def _run_save(
        self, job: Callable[[Any], None], background: bool, number: int | None, what: str
    ) -> None:
        """Runs ``job`` (write, then record) on this Checkpoint's graph: now on the live
        objects, or in the background on a snapshot taken now.  ``number`` is the save
        counter's value once the save is complete (None: unchanged).  Call inside
        ``self._saves.turn()``.

        Synchronously the counter holds ``number`` while the job writes, and gets its old
        value back if the job fails.  Asynchronously the snapshot holds ``number`` and the
        live counter takes it once the job succeeded.
        """
        counter = self._counter() if number is not None else None
        root = self._graph_root
        if not background:
            if counter is None:
                job(root)
                return
            previous = int(counter[()])
            counter[()] = number
            try:
                job(root)
            except BaseException:
                counter[()] = previous
                raise
            return
        overrides = {} if counter is None else {id(counter): np.array(number, np.int64)}

        def done() -> None:
            if counter is not None:
                counter[()] = number

        self._saves.start(root, overrides, job, done, what)

    # -- restoring ------------------------------------------------------------------------

    def read(
        self,
        save_path: str | os.PathLike[str],
        options: Any = None,
        *,
        fs: Any = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> LoadStatus:
        """Restores values matched through the object graph (no save counter creation).

        ``save_path`` may be an fsspec URL or, with ``fs``, a path on an fsspec filesystem
        (see :func:`tfckpt.load_checkpoint` for ``fs`` and ``storage_options``).  An
        asynchronous save in flight is waited for first (its error is left for
        :meth:`sync`), as TensorFlow does.
        """
        self._saves.wait()
        with load_checkpoint(save_path, fs=fs, storage_options=storage_options) as reader:
            return restore_objects(reader, self._graph_root)

    def restore(
        self,
        save_path: str | os.PathLike[str] | None,
        options: Any = None,
        *,
        fs: Any = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> LoadStatus | InitializationOnlyStatus:
        """Restores a checkpoint (prefix, directory with a state file, or SavedModel; an
        fsspec URL, or a path on the fsspec filesystem ``fs``, as for :meth:`read`).

        ``restore(None)`` does nothing and returns a status whose assertions fail, as in
        TensorFlow.  Values for children attached later are restored when attached.
        """
        if save_path is None:
            return InitializationOnlyStatus()
        status = self.read(save_path, options, fs=fs, storage_options=storage_options)
        self._counter()
        return status

    def __repr__(self) -> str:
        return f"Checkpoint({', '.join(self._children)})"


class _AttachedRoot:
    """Node 0 of the graph of ``Checkpoint(root=obj)``: ``obj`` itself (its values, its
    children, its restore hooks), with the Checkpoint's other children attached after
    ``obj``'s own, as TensorFlow's ``ObjectGraphView(root, attached_dependencies=...)``
    does: the keyword arguments in sorted order (``root`` among them, a reference to node
    0), children attached later, then ``save_counter``.  A child of ``obj``'s own wins over
    an attached one of the same name."""

    __slots__ = ("_checkpoint", "obj")

    def __init__(self, checkpoint: Checkpoint, obj: Any) -> None:
        self._checkpoint = checkpoint
        self.obj = obj

    def _attached(self, name: str, value: Any) -> Any:
        return self if name == "root" and value is self.obj else value

    def _tfckpt_children(self) -> list[tuple[str, Any]]:
        own = trackable.children(self.obj)
        names = {name for name, _ in own}
        children = list(own)
        for name, value in self._checkpoint._children.items():
            if name not in names:
                children.append((name, self._attached(name, value)))
        counter = self._checkpoint._save_counter
        if counter is not None and SAVE_COUNTER not in names:
            children.append((SAVE_COUNTER, counter))
        return children

    def _tfckpt_lookup(self, name: str, attributes: set[str]) -> Any:
        child = trackable.lookup(self.obj, name, attributes)
        if child is not None:
            return child
        if name == SAVE_COUNTER:
            return self._checkpoint._save_counter  # None until created: restored when it is
        value = self._checkpoint._children.get(name)
        return None if value is None else self._attached(name, value)

    def _tfckpt_defer(self, name: str, restoration: Binder[_Where], where: _Where) -> None:
        defer = getattr(self.obj, "_tfckpt_defer", None)
        if defer is not None and name != SAVE_COUNTER:
            defer(name, restoration, where)  # obj may attach it; the first to attach wins
        self._checkpoint._tfckpt_defer(name, restoration, where)

    def _tfckpt_attributes(self) -> dict[str, tuple[str, Callable[[], Any]]]:
        obj = self.obj
        if isinstance(obj, np.ndarray):
            return {VARIABLE_VALUE: ("", lambda: obj)}
        getter = getattr(obj, "_tfckpt_attributes", None)
        return {} if getter is None else dict(getter())

    @property
    def _tfckpt_bytes_attributes(self) -> tuple[str, ...]:
        return tuple(getattr(self.obj, "_tfckpt_bytes_attributes", ()))

    def _tfckpt_restorable_attributes(self) -> tuple[str, ...]:
        obj = self.obj
        if isinstance(obj, np.ndarray):
            return (VARIABLE_VALUE,)
        return tuple(getattr(obj, "_tfckpt_restorable_attributes", tuple)())

    def _tfckpt_prepare_restore(
        self, attribute: str, value: Any, path: str | None = None, key: str | None = None
    ) -> Callable[[], None]:
        obj = self.obj
        if isinstance(obj, np.ndarray):
            return _prepare_array_restore(obj, value, path, key)
        prepare = getattr(obj, "_tfckpt_prepare_restore", None)
        if prepare is not None:
            return cast("Callable[[], None]", prepare(attribute, value, path, key))
        return functools.partial(obj._tfckpt_restore, attribute, value, path, key)


def _prepare_array_restore(
    target: np.ndarray, value: Any, path: str | None, key: str | None
) -> Callable[[], None]:
    """The in-place restore of an array that is a Checkpoint's root, checked now (dtype,
    shape, writability, as ``restore.checked_value`` checks other arrays)."""
    value = np.asarray(value)
    found = None
    if value.dtype != target.dtype:
        found = f"the checkpoint holds {value.dtype} but the array has dtype {target.dtype}"
    elif value.shape != target.shape:
        found = (
            f"the checkpoint holds shape {list(value.shape)} but the array has shape "
            f"{list(target.shape)}"
        )
    elif not target.flags.writeable:
        found = "the array to restore into is read-only"
    if found is not None:
        raise InvalidArgumentError(found, path=path, tensor=key)

    def apply() -> None:
        target[...] = value

    return apply
