"""Fuzzing tfckpt's read paths: any file gives the right values or a CheckpointError.

The suite is built from small pieces, each with one job:

* :mod:`~tests.fuzz.seeds`: the checkpoints mutated (fixtures, corpus, synthetic ones);
* :mod:`~tests.fuzz.mutators`: byte-level mutations (bit flips, byte sets, truncations,
  splices, random bytes);
* :mod:`~tests.fuzz.structured`: structure-aware mutations that re-encode entries, tables,
  object graphs, ``.npy`` headers and state files with hostile fields and valid checksums;
* :mod:`~tests.fuzz.specials`: files that are not files (FIFOs, directories, ``/dev/zero``);
* :mod:`~tests.fuzz.operations`: every public read path, run against one case;
* :mod:`~tests.fuzz.oracle`: what counts as correct (values equal to the original's, or a
  CheckpointError naming the file; never another exception, a wrong value, a hang, an
  allocation the files cannot justify, or executed code);
* :mod:`~tests.fuzz.engine`: one case, made deterministically from (run seed, case number),
  run and judged;
* :mod:`~tests.fuzz.worker` and :mod:`~tests.fuzz.supervisor`: cases run in subprocesses
  under RLIMIT_AS and a per-case timeout, so that a hang or a crash is reported as the case
  that caused it.

``tests/fuzz/test_*.py`` run a bounded budget in CI; ``tools/fuzz.py`` runs for longer and
prints the outcome counts, peak memory and the slowest case.
"""
