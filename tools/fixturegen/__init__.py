"""The fixture generators behind tools/make_fixtures.py (fixtures/) and
tools/make_object_fixtures.py (fixtures/objects/), one module per job.

fixtures/: ``catalogue`` (what is written, by which writer), ``writers/`` (one module per
fixture family, each run in a fresh TensorFlow subprocess), ``probes`` (what TensorFlow
cannot save), ``manifest`` (TensorFlow's view, MANIFEST.json), ``readme`` (README.md),
``generate`` (write, check, install); helpers ``sstable``, ``containers``, ``values``,
``tf_util``, ``environment``.  fixtures/objects/: the ``objects`` subpackage.
"""
