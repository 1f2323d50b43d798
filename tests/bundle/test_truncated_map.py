"""A data file truncated while a reader has it open and memory-mapped: every read of a
tensor past the new end is a DataLossError naming the file and the tensor (the reader
compares the extents with the file's size now, one fstat per call, before touching mapped
pages), never SIGBUS; tensors still inside the file read right.  The scenarios run in a
child process so that a regression kills the child, not the test run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import numpy as np

import tfckpt

_CHILD = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import tfckpt

    prefix = sys.argv[1]
    data = prefix + ".data-00000-of-00001"
    front = np.arange(1024, dtype=np.float64)
    outcomes = {}

    def attempt(label, read):
        try:
            value = read()
        except tfckpt.CheckpointError as exc:
            outcomes[label] = [type(exc).__name__, exc.path, exc.tensor, str(exc)]
        else:
            outcomes[label] = ["value", None, None, repr(value)[:60]]

    def truncated_reader():
        # A reader whose data file is open and mapped (a copy=False read), then the file
        # is cut to 8 KiB: "a_front" (bytes 0..8192) is still there, "b_back" is not.
        with open(prefix + ".data-00000-of-00001", "rb") as f:
            original = f.read()
        reader = tfckpt.load_checkpoint(prefix)
        assert (reader.get_tensor("a_front", copy=False) == front).all()
        os.truncate(data, 8192)
        return reader, original

    for label, read in [
        ("get_tensor copy=False", lambda r: r.get_tensor("b_back", copy=False)),
        ("get_tensor copy=True", lambda r: r.get_tensor("b_back")),
        ("get_tensors copy=False", lambda r: r.get_tensors(["a_front", "b_back"], copy=False)),
        ("get_tensors copy=True", lambda r: r.get_tensors(["a_front", "b_back"])),
        ("get_slice", lambda r: r.get_slice("b_back")[3:5]),
        ("get_bytes_view", lambda r: r.get_bytes_view("c_text")),
        ("strings", lambda r: r.get_tensor("d_words", copy=False)),
    ]:
        reader, original = truncated_reader()
        attempt(label, lambda: read(reader))
        outcomes[label + ": front still reads"] = bool(
            (reader.get_tensor("a_front", copy=False) == front).all()
        )
        reader.close()
        with open(data, "wb") as f:
            f.write(original)

    # load_tensors opens the file after the truncation: the entry's extent is past the end.
    os.truncate(data, 8192)
    attempt("load_tensors copy=False", lambda: tfckpt.load_tensors(prefix, copy=False))
    attempt("load_tensors copy=True", lambda: tfckpt.load_tensors(prefix))
    json.dump(outcomes, sys.stdout)
    """
)


def test_a_data_file_truncated_while_mapped_is_data_loss_not_sigbus(tmp_path):
    """get_tensor (copy=False and copy=True), get_tensors, load_tensors (copy=False and
    True), get_slice, get_bytes_view and string reads of tensors past the end of a data
    file cut short after the reader mapped it: DataLossError naming the data file and
    the tensor; the child process is not killed by SIGBUS; the tensor before the cut
    still reads right."""
    prefix = str(tmp_path / "ckpt")
    tfckpt.save_tensors(
        prefix,
        {
            "a_front": np.arange(1024, dtype=np.float64),  # bytes 0..8192 of the data file
            "b_back": np.ones(4096, dtype=np.float64),
            "c_text": np.array(b"x" * 5000, dtype=object),
            "d_words": np.array([b"a" * 3000, b"b" * 3000], dtype=object),
        },
    )
    with tfckpt.load_checkpoint(prefix) as reader:
        assert reader._backend.entry("a_front").offset == 0  # (the layout this test needs)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, prefix], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != -signal.SIGBUS, "killed by SIGBUS"
    assert done.returncode == 0, done.stderr
    outcomes = json.loads(done.stdout)
    data = prefix + ".data-00000-of-00001"
    tensors = {
        "get_bytes_view": "c_text",
        "strings": "d_words",
    }
    for label, outcome in outcomes.items():
        if label.endswith("front still reads"):
            assert outcome is True, label
            continue
        kind, path, tensor, message = outcome
        assert kind == "DataLossError", (label, outcome)
        assert path == data, (label, outcome)
        assert tensor == tensors.get(label, "b_back") or label.startswith("load_tensors"), (
            label,
            outcome,
        )
        assert "8192 bytes" in message, (label, outcome)
