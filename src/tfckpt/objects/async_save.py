"""Background saves: ``Checkpoint.save/write`` and ``CheckpointManager.save`` with
``asynchronous=True`` (or ``CheckpointOptions(enable_async=True)``).

The call fixes the checkpoint at call time and returns once its values are copied; a
background thread writes that copy with the same :func:`~tfckpt.objects.checkpoint.write_objects`
a synchronous save runs, then records it (state file, save counter, ``max_to_keep``
deletions), as TensorFlow's AsyncCheckpointHelper does
(tensorflow/python/checkpoint/async_checkpoint_helper.py: copy the variables to host
memory, ``save``/``_write`` the copy in a thread, ``sync()`` waits).

**Snapshot.** :class:`Snapshot` walks the object graph at call time (:func:`graph.collect`:
the nodes, their names and the list of ``(checkpoint key, value function)``) and evaluates
every value function then, copying what it returns into memory the save owns: arrays are
copied, NumpyState's ``.npy`` pieces (a header and a view of the array's memory) too;
``bytes``, ``str`` and NumPy scalars are immutable and kept.  The background thread writes
a tree of frozen nodes with the same names, order and sharing, so ``graph.collect`` of it
gives the same TrackableObjectGraph and the same keys.  Copy-on-write is not possible for
NumPy arrays: NumPy has no hook on writes (any view, ``out=`` argument, buffer-protocol
consumer or C extension writes the memory directly), and the operating system's
copy-on-write needs ``fork()`` (unsafe in a threaded process, and process-wide state) or
re-mapping the caller's memory read-only (changing memory the library does not own).  So
the values are copied: a save holds a second copy of the arrays, which is kept after the
save for the next snapshot of the same Checkpoint to copy into (:class:`Buffers`: memory
already mapped copies about twice as fast; TensorFlow keeps its host copies too) and is
released with the Checkpoint.  The copy is pipelined with the write: the background
thread starts writing the first values while the caller copies the next ones, so the total
time is close to a synchronous save, and the caller is blocked for about the copy.

**One save in flight per Checkpoint.** :class:`BackgroundSaves` serializes the saves of
one Checkpoint (and of the managers saving it): a save first waits for the previous one.
An exception of a background save is kept and raised, once and as itself, by the next
``sync()`` or save of that Checkpoint (which then does not save); ``sync()`` with nothing
pending returns at once.

**Threads and interpreter exit.** Each background save runs in its own thread, started by
the save and joined by the next one or by ``sync()``.  The thread is not a daemon: the
interpreter's shutdown joins non-daemon threads before it exits, so a save in flight
completes at exit, without an ``atexit`` hook (process-wide state) and without a thread
that lives between saves.  A process killed during a save leaves the previous checkpoint
current: the files are committed all or none (:mod:`tfckpt.storage.commit`) and the state
file is replaced only after they are complete.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from tfckpt.bundle.write_batch import StringPieces
from tfckpt.objects import graph

# What a job does with the snapshot: write it (write_objects) and record it.
Job = Callable[[Any], None]


class _Abandoned(BaseException):
    """Raised in the background thread when the caller's copy failed: the write stops (its
    temporaries are removed) and the caller raises its own error.  A BaseException so that
    no ``except Exception`` on the way swallows it."""


class Buffers:
    """The memory a snapshot copies into: arrays of the previous snapshot of the same
    Checkpoint, reused when shape and dtype match (their pages are already mapped, which
    makes the copy about twice as fast as into new memory), else new arrays."""

    def __init__(self, spare: list[np.ndarray] | None = None) -> None:
        self._free: dict[tuple[Any, tuple[int, ...]], list[np.ndarray]] = {}
        for array in spare or ():
            self._free.setdefault((array.dtype, array.shape), []).append(array)
        self.used: list[np.ndarray] = []  # what this snapshot copied into, to reuse next

    def own(self, value: Any) -> Any:
        """``value`` as memory the save owns: arrays (and the arrays in StringPieces,
        lists and tuples) copied; ``bytes``, ``str``, numbers and NumPy scalars kept
        (immutable); other objects kept as they are."""
        if isinstance(value, np.ndarray):
            free = self._free.get((value.dtype, value.shape))
            if free:
                copy = free.pop()
                np.copyto(copy, value, casting="no")
            else:
                copy = np.array(value, order="C", copy=True)
            self.used.append(copy)
            return copy
        if type(value) is StringPieces:
            return StringPieces(self.own(piece) for piece in value.pieces)
        if isinstance(value, (bytearray, memoryview)):
            return bytes(value)
        if isinstance(value, (list, tuple)):
            return [self.own(item) for item in value]
        return value


class _Frozen:
    """A node of the snapshot tree: the names, children and attributes of one object of
    the live graph at snapshot time; its values come from the :class:`Snapshot`."""

    __slots__ = ("attributes", "children")

    def __init__(self) -> None:
        self.children: list[tuple[str, _Frozen]] = []
        self.attributes: dict[str, tuple[str, Callable[[], Any]]] = {}

    def _tfckpt_children(self) -> list[tuple[str, Any]]:
        return self.children

    def _tfckpt_attributes(self) -> dict[str, tuple[str, Callable[[], Any]]]:
        return self.attributes


class Snapshot:
    """The object graph of ``root`` and its values, fixed at construction (the graph) and
    by :meth:`fill` (the values, copied in the caller's thread).

    ``root`` is the frozen tree to give ``write_objects``: its value functions return the
    copies, each waiting until :meth:`fill` has made it.  ``overrides`` maps ``id(array)``
    of arrays in the graph to the value to save instead (a save counter's next number);
    ``buffers`` is the memory to copy into.

    Raises:
        InvalidArgumentError: a child cannot be saved (as ``graph.collect``).
    """

    def __init__(
        self, root: Any, overrides: dict[int, Any] | None = None, buffers: Buffers | None = None
    ) -> None:
        overrides = overrides or {}
        self.buffers = buffers or Buffers()
        nodes = graph.collect(root)
        frozen = [_Frozen() for _ in nodes]
        self._functions: list[Callable[[], Any]] = []
        for node, copy in zip(nodes, frozen):
            copy.children = [(name, frozen[child]) for name, child in node.children]
            for name, (full_name, _key, value_fn) in node.attributes.items():
                if id(node.obj) in overrides:
                    value_fn = functools.partial(_constant, overrides[id(node.obj)])
                index = len(self._functions)
                self._functions.append(value_fn)
                copy.attributes[name] = (full_name, functools.partial(self._value, index))
        self.root: Any = frozen[0]
        self._values: list[Any] = [None] * len(self._functions)
        self._filled = 0
        self._failed = False  # the copy failed: the write stops
        self._cancelled = False  # the write stopped: the copy may stop
        self._ready = threading.Condition()

    def fill(self) -> None:
        """Evaluates and copies every value, in the order the write takes them.

        Raises:
            What a value function raises, or MemoryError; the write is abandoned then.
        """
        for index, value_fn in enumerate(self._functions):
            if self._cancelled:
                break
            try:
                value = self.buffers.own(value_fn())
            except BaseException:
                with self._ready:
                    self._failed = True
                    self._ready.notify_all()
                raise
            with self._ready:
                if self._cancelled:
                    break
                self._values[index] = value
                self._filled = index + 1
                self._ready.notify_all()
        self._functions = []

    def cancel(self) -> None:
        """The write has stopped: :meth:`fill` need not copy the rest, and the copies
        made are released."""
        with self._ready:
            self._cancelled = True
            self._values = [None] * len(self._values)

    def _value(self, index: int) -> Any:
        with self._ready:
            self._ready.wait_for(lambda: self._filled > index or self._failed)
            if self._filled <= index:
                raise _Abandoned
            value, self._values[index] = self._values[index], None  # the writer keeps it
        return value


def _constant(value: Any) -> Any:
    return value


class BackgroundSaves:
    """The saves of one Checkpoint: at most one in flight, its error kept for the next
    call.  Every save runs inside :meth:`turn`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # held by a save call from its start to its return
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._spare: list[np.ndarray] = []  # the last snapshot's arrays, for the next one

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        """Waits for the save in flight and raises its error (once; this save then does
        not happen); holds off other saves of the Checkpoint until the block ends."""
        with self._lock:
            self._join()
            self._raise_pending()
            yield

    def sync(self) -> None:
        """Waits for the save in flight; raises its error, once, as it was raised."""
        with self._lock:
            self._join()
            self._raise_pending()

    def wait(self) -> None:
        """Waits for the save in flight without raising its error (left for the next
        ``sync()`` or save)."""
        with self._lock:
            self._join()

    def start(
        self, root: Any, overrides: dict[int, Any], job: Job, done: Callable[[], None], what: str
    ) -> None:
        """Snapshots the graph of ``root`` (:class:`Snapshot`) and runs ``job(snapshot.root)``
        and then ``done()`` in a new thread while this thread copies the values; returns
        once they are copied.  Call inside :meth:`turn`.

        Raises:
            InvalidArgumentError: a child cannot be saved (nothing started).
            What copying raises; the background write is then abandoned and joined, and
            nothing is left in flight.
        """
        spare, self._spare = self._spare, []
        snapshot = Snapshot(root, overrides, Buffers(spare))
        del spare
        thread = threading.Thread(
            target=self._run, args=(snapshot, job, done), name=f"tfckpt save {what}"
        )
        thread.start()
        self._thread = thread
        try:
            snapshot.fill()
        except BaseException:
            self._join()
            self._error = None  # (the thread stored nothing: it was abandoned)
            raise

    def _run(self, snapshot: Snapshot, job: Job, done: Callable[[], None]) -> None:
        try:
            job(snapshot.root)
            done()
        except _Abandoned:
            pass
        except BaseException as exc:
            snapshot.cancel()
            self._error = exc
        finally:
            # The write is over: nothing reads these arrays any more (the next snapshot,
            # which reuses them, starts only after this thread is joined).
            self._spare = snapshot.buffers.used

    def _join(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join()

    def _raise_pending(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            add_note = getattr(error, "add_note", None)  # (Python 3.11+)
            if add_note is not None:
                add_note("(raised by an asynchronous save, reported by the next call)")
            raise error
