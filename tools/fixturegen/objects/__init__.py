"""The generator of fixtures/objects/ (tools/make_object_fixtures.py): one module per
fixture, ``describe`` for what EXPECTED.json records, ``generate`` to write, check and
install."""
