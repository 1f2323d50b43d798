"""The issue's goals for tfckpt, as a table of rows, and how each is judged from a run.

Rows are named ``"section/lib"`` within the goal's workload.  A ``Faster`` goal is the
peer's time over tfckpt's (>= ``times``); its ceiling is the ratio tfckpt would reach at a
raw hardware-limit row, so goals this machine cannot reach stand out.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .results import Results

MIB = 1 << 20

Target = dict[str, Any]


class Ceiling(NamedTuple):
    """A raw row (``label``, ``row``), or ``row=None``: the raw write that does what
    tfckpt's default save does (with or without fsync) in ``section``."""

    label: str
    row: str | None = None
    section: str = "save"


READ_FRESH = Ceiling("readinto+CRC, fresh buffer", "read/raw_readinto_crc_fresh")
RESTORE_FRESH = Ceiling("readinto+CRC, fresh buffer", "ns_restore/raw_readinto_crc_fresh")
MMAP_CRC = Ceiling("mmap+CRC", "read_zc/raw_mmap_crc")
WRITE = Ceiling("write")
NS_WRITE = Ceiling("write", section="ns_save")


class _Run:
    """Looks up a run's medians by workload and ``"section/lib"``."""

    def __init__(self, res: Results, tfckpt_fsyncs: bool) -> None:
        self.res = res
        self.tfckpt_fsyncs = tfckpt_fsyncs

    def time(self, wl: str, row: str) -> float | None:
        section, lib = row.split("/")
        return self.res.median(wl, section, lib)

    def fastest(self, wl: str, rows: tuple[str, ...]) -> float | None:
        found = [t for t in (self.time(wl, row) for row in rows) if t is not None]
        return min(found) if found else None

    def ceiling(self, wl: str, ceiling: Ceiling) -> tuple[str, float | None]:
        if ceiling.row is not None:
            return ceiling.label, self.time(wl, ceiling.row)
        if self.tfckpt_fsyncs:
            return "write+fsync", self.time(wl, f"{ceiling.section}/raw_write_fsync")
        return "write, no fsync", self.time(wl, f"{ceiling.section}/raw_write")


def _ratio(num: float | None, den: float | None) -> float | None:
    if num is None or den is None or den == 0:
        return None
    return num / den


class Faster(NamedTuple):
    """tfckpt's ``ours`` row at least ``times`` faster than the fastest ``peers`` row."""

    target: str
    wl: str
    ours: str
    peers: tuple[str, ...]
    times: float
    peer_name: str
    ceiling: Ceiling

    def judge(self, run: _Run, imports: dict[str, Any] | None) -> Target:
        peer = run.fastest(self.wl, self.peers)
        value = _ratio(peer, run.time(self.wl, self.ours))
        floor_name, floor = run.ceiling(self.wl, self.ceiling)
        shown = "-" if value is None else f"{value:.2f}x"
        ceiling = _ratio(peer, floor)
        if value is not None and ceiling is not None:
            shown += f"  [raw-limit ceiling {ceiling:.2f}x: {floor_name}]"
        return {
            "target": self.target,
            "goal": f">= {self.times:g}x",
            "value": value,
            "ceiling": ceiling,
            "shown": shown,
            "met": None if value is None else value >= self.times,
            "why": None
            if value is not None
            else f"not measured: no {self.peer_name} or tfckpt row",
        }


class AtMost(NamedTuple):
    """tfckpt's ``ours`` time over the ``other`` row's at most ``ratio`` (``also``: a second
    row whose ratio is shown beside it)."""

    target: str
    wl: str
    ours: str
    other: str
    ratio: float
    also: tuple[str, str] | None = None  # (description, row)

    def judge(self, run: _Run, imports: dict[str, Any] | None) -> Target:
        ours = run.time(self.wl, self.ours)
        value = _ratio(ours, run.time(self.wl, self.other))
        shown = "-" if value is None else f"{value:.2f}x"
        if value is not None and self.also is not None:
            also = _ratio(ours, run.time(self.wl, self.also[1]))
            shown += "" if also is None else f" (vs {self.also[0]}: {also:.2f}x)"
        return {
            "target": self.target,
            "goal": f"<= {self.ratio:g}x",
            "value": value,
            "shown": shown,
            "met": None if value is None else value <= self.ratio,
            "why": None if value is not None else "not measured",
        }


class Reported(NamedTuple):
    """No goal: the ``ours`` row's time over the ``other`` row's, printed for the record."""

    target: str
    wl: str
    ours: str
    other: str

    def judge(self, run: _Run, imports: dict[str, Any] | None) -> Target:
        value = _ratio(run.time(self.wl, self.ours), run.time(self.wl, self.other))
        return {
            "target": self.target,
            "goal": "(reported)",
            "value": value,
            "shown": "-" if value is None else f"{value:.2f}x",
            "met": None,
            "info": True,
            "why": None if value is not None else "not measured",
        }


class PeakRss(NamedTuple):
    """The row's whole-process peak RSS at most ``per_data`` x the workload's data
    + ``extra_mib``."""

    target: str
    wl: str
    row: str
    per_data: float
    extra_mib: float

    def judge(self, run: _Run, imports: dict[str, Any] | None) -> Target:
        section, lib = self.row.split("/")
        row = run.res.get(self.wl, section, lib)
        meta = run.res.meta.get(self.wl)
        if row is None or meta is None:
            data = "data" if self.per_data == 1 else f"{self.per_data:g} x data"
            return {
                "target": self.target,
                "goal": f"<= {data} + {self.extra_mib:g} MiB",
                "value": None,
                "shown": "-",
                "met": None,
                "why": "not measured",
            }
        peak = row["peak_kib"] / 1024
        limit = self.per_data * (meta["nbytes"] / MIB) + self.extra_mib
        return {
            "target": self.target,
            "goal": f"<= {limit:,.0f} MiB",
            "value": peak,
            "shown": f"{peak:,.0f} MiB",
            "met": peak <= limit,
            "why": None,
        }


class ImportTime(NamedTuple):
    """``import tfckpt`` in a fresh interpreter (minus bare startup) at most ``seconds``."""

    target: str
    seconds: float

    def judge(self, run: _Run, imports: dict[str, Any] | None) -> Target:
        value = None if imports is None else imports.get("tfckpt")
        return {
            "target": self.target,
            "goal": f"<= {self.seconds:g} s",
            "value": value,
            "shown": "-" if value is None else f"{value:.3f} s",
            "met": None if value is None else value <= self.seconds,
            "why": None if value is not None else "not measured",
        }


SAFETENSORS_READS = ("read/safetensors_load_file", "read/safetensors_get_tensor")

# fmt: off
GOALS: tuple[Faster | AtMost | Reported | PeakRss | ImportTime, ...] = (
    # W1 reads
    Faster("W1 read owned: tfckpt vs TF get_tensor loop",
           "W1", "read/tfckpt", ("read/tf",), 2, "TF", READ_FRESH),
    Faster("W1 read owned: tfckpt vs safetensors (faster of load_file/get_tensor)",
           "W1", "read/tfckpt", SAFETENSORS_READS, 1.2, "safetensors", READ_FRESH),
    AtMost("W1 read owned: tfckpt within 1.15x of readinto+CRC (preallocated buffer)",
           "W1", "read/tfckpt", "read/raw_readinto_crc", 1.15,
           also=("fresh-buffer readinto+CRC", "read/raw_readinto_crc_fresh")),
    Faster("W1 zero-copy read with CRC: tfckpt vs TF get_tensor loop",
           "W1", "read_zc/tfckpt", ("read/tf",), 7, "TF", MMAP_CRC),
    # W2
    Faster("W2 read all: tfckpt vs TF get_tensor loop",
           "W2", "read/tfckpt", ("read/tf",), 8, "TF", READ_FRESH),
    Faster("W2 read all: tfckpt vs safetensors (faster of load_file/get_tensor)",
           "W2", "read/tfckpt", SAFETENSORS_READS, 1.3, "safetensors", READ_FRESH),
    AtMost("W2 open + list keys: tfckpt time / TF time",
           "W2", "list/tfckpt", "list/tf", 0.5),
    # W3
    Faster("W3 read: tfckpt vs TF get_tensor",
           "W3", "read/tfckpt", ("read/tf",), 1, "TF", READ_FRESH),
    Faster("W3 write: tfckpt save_tensors vs SaveV2",
           "W3", "save/tfckpt", ("save/tf",), 2, "TF", WRITE),
    # saves
    Faster("W1 save: tfckpt.Checkpoint.write vs tf.train.Checkpoint.write",
           "W1", "save_obj/tfckpt", ("save_obj/tf",), 1.5, "TF", WRITE),
    Faster("W1 save: tfckpt save_tensors vs safetensors save_file",
           "W1", "save/tfckpt", ("save/safetensors",), 1.2, "safetensors", WRITE),
    Faster("W2 save: tfckpt save_tensors vs SaveV2",
           "W2", "save/tfckpt", ("save/tf",), 7, "TF", WRITE),
    Faster("W2 save: tfckpt save_tensors vs safetensors save_file",
           "W2", "save/tfckpt", ("save/safetensors",), 0.9, "safetensors", WRITE),
    Faster("W4 NumpyState save: tfckpt vs TF-Agents-style NumpyState",
           "W4", "ns_save/tfckpt", ("ns_save/tf",), 5, "TF", NS_WRITE),
    Faster("W4 NumpyState restore: tfckpt vs TF-Agents-style NumpyState",
           "W4", "ns_restore/tfckpt", ("ns_restore/tf",), 2, "TF", RESTORE_FRESH),
    # issue 15: repeated opens, sharded and asynchronous saves, durable saves
    AtMost("W5 list_variables + load_variable per BERT weight: tfckpt time / TF time",
           "W5", "load_var/tfckpt", "load_var/tf", 0.5,
           also=("tfckpt, reader cache cleared", "load_var/tfckpt_cold")),
    Faster("W1 sharded save (128 MiB shards): tfckpt Checkpoint.write vs TF's",
           "W1", "save_sharded/tfckpt_obj", ("save_sharded/tf",), 1.5, "TF", WRITE),
    AtMost("W1 async save, blocking part: tfckpt time / np.copy of the arrays",
           "W1", "save_async/tfckpt_async_block", "save_async/numpy_copy", 1.2,
           also=("TF's blocking part", "save_async/tf_async_block")),
    AtMost("W1 async save + sync(): tfckpt time / synchronous tfckpt Checkpoint.save",
           "W1", "save_async/tfckpt_async_total", "save_async/tfckpt", 1.1,
           also=("TF's async save + sync()", "save_async/tf_async_total")),
    Reported("W1 sharded save_tensors / unsharded save_tensors",
             "W1", "save_sharded/tfckpt", "save/tfckpt"),
    Reported("W1 durable cost: save_tensors(durable=True) / save_tensors()",
             "W1", "save/tfckpt_durable", "save/tfckpt"),
    Reported("W2 durable cost: save_tensors(durable=True) / save_tensors()",
             "W2", "save/tfckpt_durable", "save/tfckpt"),
    # memory
    PeakRss("Peak RSS W1 read owned (whole process) <= 1.1 x data + 50 MiB",
            "W1", "read/tfckpt", 1.1, 50),
    PeakRss("Peak RSS W1 save_tensors (whole process, data included) <= data + 64 MiB",
            "W1", "save/tfckpt", 1, 64),
    ImportTime("import tfckpt (fresh interpreter, minus bare startup)", 0.25),
)
# fmt: on


def compute_targets(
    res: Results, imports: dict[str, Any] | None, tfckpt_fsyncs: bool
) -> list[Target]:
    """Every goal judged from this run, in table order."""
    run = _Run(res, tfckpt_fsyncs)
    return [goal.judge(run, imports) for goal in GOALS]
