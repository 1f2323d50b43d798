"""The fixture catalogue: every fixture directory, its prefixes, who writes it and why."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from .writers import dtypes, savers, tensors, trackables


class Fixture(NamedTuple):
    name: str  # its directory under fixtures/
    prefixes: tuple[tuple[str, str], ...]  # (prefix relative to fixtures/, "v1" or "v2")
    writer: str  # the TensorFlow API that writes it (MANIFEST.json "writer")
    description: str  # what it exercises (MANIFEST.json "description")
    write: Callable[[], None]  # runs in a fresh subprocess whose cwd is the fixture's directory


FIXTURES: tuple[Fixture, ...] = (
    Fixture(
        "dtypes",
        (("dtypes/ckpt", "v2"),),
        "tf.raw_ops.SaveV2 (one call, eager)",
        "one tensor per dtype TF 2.21 can save, named by the dtype: the 16 classic "
        "dtypes, 5 float8 + float4_e2m1fn (every bit pattern), int4/uint4/int2/uint2 "
        "(full range), 5 quantized dtypes; nan/-nan/signalling nan, +-inf, -0.0, "
        "subnormals, extreme ints",
        dtypes.write_dtypes,
    ),
    Fixture(
        "strings",
        (("strings/ckpt", "v2"),),
        "tf.raw_ops.SaveV2 (one call, eager)",
        "string tensors: 0-d, empty string, embedded NULs, non-UTF-8 bytes, UTF-8, "
        "lengths at varint boundaries (127/128/16383/16384), 300- and 20000-byte 0-d "
        "strings, shapes [0], [2,0], [3,4], [2,2,2] and [2000]",
        tensors.write_strings,
    ),
    Fixture(
        "shapes",
        (("shapes/ckpt", "v2"),),
        "tf.raw_ops.SaveV2 (one call, eager)",
        "0-d tensors of several dtypes, empty tensors ([0], [3,0,2], [0,5]), [1], [1,1], "
        "rank 6 and rank 8, a 100 KiB 1-D float32 tensor",
        tensors.write_shapes,
    ),
    Fixture(
        "partitioned",
        (("partitioned/ckpt", "v2"),),
        "tf.compat.v1.train.Saver (graph mode, V2, not sharded)",
        "partitioned variables (fixed_size_partitioner): [10,4] float32 in 3 parts on "
        "axis 0, [3,7] float32 in 2 parts on axis 1, [2,3,5] int64 in 2 parts on axis 2, "
        "a string variable in 2 parts (TF cannot read string slices); full entries with "
        "slices + per-slice entries under encoded keys; one unpartitioned variable; state "
        "file",
        savers.write_partitioned,
    ),
    Fixture(
        "sharded",
        (("sharded/ckpt", "v2"),),
        "tf.compat.v1.train.Saver(sharded=True) (graph mode, V2, 2 logical CPUs)",
        "2 data shards (one per device) merged into one .index; a partitioned variable (3 "
        "parts) whose parts live in different shards; float32/int64/bool variables on "
        "/cpu:0, float16/bfloat16/string/int32 on /cpu:1; state file",
        savers.write_sharded,
    ),
    Fixture(
        "max_shard_size",
        (("max_shard_size/ckpt", "v2"),),
        "tf.train.Checkpoint.write + "
        "CheckpointOptions(experimental_sharding_callback=MaxShardSizePolicy(max_shard_size=10000))",
        "TF2 size-based sharding: 7 data shards of <= ~10 KB; tensors larger than the "
        "room left in a shard are split into irregular slices spread over several shards "
        "(sliced full entries carrying a non-zero shard_id), including a 1200-element "
        "string variable, which TF then cannot read or restore (string slices)",
        trackables.write_max_shard_size,
    ),
    Fixture(
        "many_keys",
        (("many_keys/ckpt", "v2"),),
        "tf.raw_ops.SaveV2 (one call, eager)",
        "1100 one-element float32 tensors with 558-byte names (model/layer_NNNN/...): the "
        ".index spans 3 SSTable data blocks (prefix compression, restart points, a "
        "multi-entry index block); names are long rather than numerous to keep "
        "MANIFEST.json small",
        tensors.write_many_keys,
    ),
    Fixture(
        "object_based",
        (("object_based/ckpt-1", "v2"),),
        "tf.train.Checkpoint.save",
        "TF2 object-based names: tf.Module with variables, a dict and a list of "
        "variables, Keras 3 Dense + Keras 3 Adam (optimizer/_variables/N), "
        "tf.compat.v1.train.AdamOptimizer slot variables (.OPTIMIZER_SLOT), save_counter, "
        "_CHECKPOINTABLE_OBJECT_GRAPH; state file",
        trackables.write_object_based,
    ),
    Fixture(
        "saved_model",
        (("saved_model/variables/variables", "v2"),),
        "tf.saved_model.save",
        "SavedModel of a small tf.Module (3 variables + a tf.function); the variables/ "
        "bundle is what matters",
        trackables.write_saved_model,
    ),
    Fixture(
        "v1_format",
        (("v1_format/model.ckpt", "v1"),),
        "tf.compat.v1.train.Saver(write_version=SaverDef.V1) (graph mode)",
        "legacy V1 (SavedTensorSlices SSTable): float32/float64/int32/int64/bool/"
        "string/float16/complex64/complex128/int8/uint8/int16/uint16 variables, special "
        "float values, partitioned float32 and string variables (TF's "
        "reader can only read some of these: see tf_error/tf_restore_v2); state file",
        savers.write_v1_format,
    ),
    Fixture(
        "v1_sharded",
        (("v1_sharded/model.ckpt-?????-of-00002", "v1"),),
        "tf.compat.v1.train.Saver(write_version=SaverDef.V1, sharded=True) (graph mode, 2 "
        "logical CPUs)",
        "legacy V1 in 2 files model.ckpt-0000N-of-00002; the prefix is the glob pattern "
        "Saver returns and records in the state file; a partitioned variable whose slices "
        "are in different files",
        savers.write_v1_sharded,
    ),
    Fixture(
        "variant",
        (("variant/ckpt", "v2"),),
        "tf.raw_ops.SaveV2 (one call, eager)",
        "a DT_VARIANT tensor (a TensorList) next to a float32 one: TF writes it "
        "(VariantTensorDataProto bytes) but its reader cannot return it",
        tensors.write_variant,
    ),
    Fixture(
        "numpy_state",
        (("numpy_state/ckpt-1", "v2"),),
        "tf.train.Checkpoint.save of tf.train.experimental.PythonState objects (TF-Agents "
        "NumpyState style)",
        "NumPy arrays serialized with numpy.save(allow_pickle=False) into 0-d string "
        "tensors under <attr>/.ATTRIBUTES/py_state: float64 3x4, int32 0-d, bool, "
        "Fortran-ordered float32, big-endian >i4, structured dtype; state file",
        trackables.write_numpy_state,
    ),
)

BY_NAME = {fixture.name: fixture for fixture in FIXTURES}
NEEDS_TWO_CPUS = {"sharded", "v1_sharded"}
