"""Benchmark tfckpt beside TensorFlow, safetensors, NumPy and the raw hardware limits.

Usage (from the repository root)::

    PYTHONPATH=src python tools/bench                 # full size (W1 = 1 GiB), ~10 min
    PYTHONPATH=src python tools/bench --scale 0.05    # quick run, ~2 min
    PYTHONPATH=src python tools/bench --only W1,W3 --repeat 5 --json /tmp/bench.json
    PYTHONPATH=src python tools/bench --remote       # object storage: see remote.py

Workloads (``workloads.py``, fixed seeds) are generated into a scratch directory
(``--dir``, default a temporary directory, removed unless ``--keep``):

    W1  1 GiB of float32 in 16 tensors            W3  one string tensor of 1,000,000 strings
    W2  20,000 small float32 tensors              W4  NumpyState with 8 arrays, 256 MiB
    W5  BERT-base: 206 weights, Adam slots, global_step (463 entries, 421 MiB)

W1 is also saved in 128 MiB shards (MaxShardSizePolicy) and asynchronously (the blocking
part, and save + sync(), beside np.copy of the arrays and a synchronous save); W5 is read
the way Hugging Face's BERT loader reads it (list_variables, then load_variable per name).

Each library writes every workload once in its own format (the last timed save is the file
the read benchmarks use); tfckpt and TensorFlow also read each other's V2 files.

Method.  Every (operation, library) pair runs in a fresh subprocess (this package with the
hidden ``--worker`` option): it builds its inputs untimed, runs one warm-up and then
``--repeat`` timed repetitions (at least 9 when one takes under 0.1 s) with
``time.perf_counter``, and reports the median.  Peak RSS is the child's VmHWM from
/proc/self/status, i.e. the whole child process (interpreter, imports, inputs and the
operation); ``ru_maxrss`` is not used because Linux carries the parent's peak into a
child's ``ru_maxrss`` across fork/exec.  Every read result (and every object-based or raw
write) is checked against the SHA-256 of the generated data after the timed repetitions;
a mismatch prints FAIL and the run exits non-zero.  The page cache cannot be dropped
without root, so all numbers are warm-cache.  Save outputs are removed before each
repetition and fsynced after it, untimed, so one writer's dirty pages do not slow the next.

Ratios are ``row time / tfckpt time`` in the same section: above 1 means tfckpt is that
many times faster; the raw rows (hardware limits) are normally below 1.  The goal summary
(``goals.py``) also gives each speed goal's "raw-limit ceiling", the ratio tfckpt would
reach if it ran at the matching raw row, so goals this machine cannot reach stand out.
Saves are compared with the raw write that does what tfckpt's default save does (fsync or
not, read from ``save_tensors``' ``durable=`` default); ``save_tensors(durable=True)`` gets
its own row.

Modules: ``plan`` (which rows run, their labels), ``workloads``, ``implementations`` (one
module per library), ``worker`` (one row in a child process), ``checks`` (digest checks),
``runner`` (the parent: one workload's rows), ``machine`` (machine facts, import times),
``report`` (tables, JSON), ``goals`` (the issue's goals as a table), ``cli``; ``remote``
and ``remote_servers`` (the remote benchmark and its servers).
"""
