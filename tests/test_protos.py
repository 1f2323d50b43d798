"""Tests of the generated protobuf modules ``tfckpt.proto.*_pb2``.

* they are not stale with respect to ``proto/`` and ``tools/gen_protos.py``;
* they import without warnings and round-trip messages;
* with TensorFlow installed (``-m tf``): every message and enum matches
  TensorFlow's descriptors, and both sets of modules live side by side in one
  process, whichever is imported first.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, text_format
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from tfckpt.proto import (
    checkpoint_state_pb2,
    resource_handle_pb2,
    saved_tensor_slice_pb2,
    tensor_bundle_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    tensor_slice_pb2,
    trackable_object_graph_pb2,
    types_pb2,
    versions_pb2,
)

ROOT = Path(__file__).resolve().parent.parent
GEN_SCRIPT = ROOT / "tools" / "gen_protos.py"
OUR_PACKAGE = "tfckpt.proto"
TF_PACKAGE = "tensorflow"

# Our module -> the TensorFlow module generated from the .proto it mirrors.
TF_MODULES: dict[str, str] = {
    "types_pb2": "tensorflow.core.framework.types_pb2",
    "tensor_shape_pb2": "tensorflow.core.framework.tensor_shape_pb2",
    "tensor_slice_pb2": "tensorflow.core.framework.tensor_slice_pb2",
    "versions_pb2": "tensorflow.core.framework.versions_pb2",
    "resource_handle_pb2": "tensorflow.core.framework.resource_handle_pb2",
    "tensor_pb2": "tensorflow.core.framework.tensor_pb2",
    "tensor_bundle_pb2": "tensorflow.core.protobuf.tensor_bundle_pb2",
    "saved_tensor_slice_pb2": "tensorflow.core.util.saved_tensor_slice_pb2",
    "trackable_object_graph_pb2": "tensorflow.core.protobuf.trackable_object_graph_pb2",
    "checkpoint_state_pb2": "tensorflow.python.training.checkpoint_state_pb2",
}

OUR_MODULES: dict[str, ModuleType] = {
    mod.__name__.rpartition(".")[2]: mod
    for mod in (
        types_pb2,
        tensor_shape_pb2,
        tensor_slice_pb2,
        versions_pb2,
        resource_handle_pb2,
        tensor_pb2,
        tensor_bundle_pb2,
        saved_tensor_slice_pb2,
        trackable_object_graph_pb2,
        checkpoint_state_pb2,
    )
}


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("tfckpt_tools_gen_protos", GEN_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


def _walk(
    descriptors: Any,
) -> tuple[list[Descriptor], list[EnumDescriptor]]:
    """All messages and enums (nested ones too) of the given message descriptors."""
    messages: list[Descriptor] = []
    enums: list[EnumDescriptor] = []
    stack = list(descriptors)
    while stack:
        message = stack.pop(0)
        messages.append(message)
        enums.extend(message.enum_types)
        stack.extend(message.nested_types)
    return messages, enums


def _our_types() -> tuple[list[Descriptor], list[EnumDescriptor]]:
    messages: list[Descriptor] = []
    enums: list[EnumDescriptor] = []
    for module in OUR_MODULES.values():
        found_messages, found_enums = _walk(module.DESCRIPTOR.message_types_by_name.values())
        messages += found_messages
        enums += found_enums + list(module.DESCRIPTOR.enum_types_by_name.values())
    return messages, enums


OUR_MESSAGES, OUR_ENUMS = _our_types()


def _local(full_name: str) -> str:
    for package in (OUR_PACKAGE, TF_PACKAGE):
        if full_name.startswith(package + "."):
            return full_name[len(package) + 1 :]
    return full_name  # e.g. google.protobuf.BoolValue


# --------------------------------------------------------------------------- #
# 1. Staleness
# --------------------------------------------------------------------------- #


def test_generated_modules_are_current_without_protoc() -> None:
    """Committed modules == what the generator renders now (no protoc needed).

    Each module is re-rendered from the descriptor embedded in it and stamped
    with the hash of the current .proto, so an edited .proto, a hand-edited
    module, a changed generator, or a missing/extra module all show up here.
    """
    expected, problems, ignore = gen.expected_files_offline()
    problems += gen.compare(expected, ignore=ignore)
    assert not problems, "stale generated protos; run `python tools/gen_protos.py`:\n" + "\n".join(
        problems
    )


@pytest.mark.skipif(
    not gen.protoc_available(),
    reason="grpcio-tools (protoc) is not installed; the protoc-free staleness check still ran",
)
def test_generated_modules_match_full_regeneration() -> None:
    proc = subprocess.run(
        [sys.executable, str(GEN_SCRIPT), "--check"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_offline_check_detects_edits(tmp_path: Path) -> None:
    proto_root = tmp_path / "proto"
    out_dir = tmp_path / "out"
    shutil.copytree(gen.PROTO_ROOT, proto_root)
    shutil.copytree(gen.OUT_DIR, out_dir, ignore=shutil.ignore_patterns("__pycache__"))

    def problems() -> list[str]:
        expected, found, ignore = gen.expected_files_offline(proto_root, out_dir)
        return found + gen.compare(expected, out_dir, ignore)

    assert problems() == []

    with open(proto_root / "tfckpt/proto/versions.proto", "a", encoding="utf-8") as fh:
        fh.write("// edited\n")
    (out_dir / "stray_pb2.py").write_text("", encoding="utf-8")
    pyi = out_dir / "types_pb2.pyi"
    pyi.write_text(pyi.read_text(encoding="utf-8") + "x: int\n", encoding="utf-8")
    (out_dir / "tensor_slice_pb2.py").unlink()

    found = "\n".join(problems())
    for name in (
        "versions_pb2.py:",
        "versions_pb2.pyi:",
        "types_pb2.pyi:",
        "stray_pb2.py:",
        "tensor_slice_pb2.py:",
    ):
        assert name in found, found
    assert "types_pb2.py:" not in found, found


def test_every_module_mirrors_a_tensorflow_module() -> None:
    stems = {gen.module_stem(source) for source in gen.proto_sources()}
    assert stems == set(OUR_MODULES) == set(TF_MODULES)


# --------------------------------------------------------------------------- #
# Importing and round-tripping (no TensorFlow)
# --------------------------------------------------------------------------- #

_IMPORT_IN_ISOLATION = textwrap.dedent(
    """
    import importlib, importlib.util, sys, types
    # Import the generated modules without running tfckpt/__init__.py, so that
    # any warning seen here comes from them (and the protobuf runtime).
    spec = importlib.util.find_spec("tfckpt")
    package = types.ModuleType("tfckpt")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["tfckpt"] = package
    for name in sys.argv[1:]:
        importlib.import_module("tfckpt.proto." + name)
    from google.protobuf import descriptor_pb2
    from tfckpt.proto import tensor_bundle_pb2, trackable_object_graph_pb2
    header = tensor_bundle_pb2.BundleHeaderProto(num_shards=1, version={"producer": 1})
    assert header.SerializeToString() == bytes.fromhex("08011a020801")
    # The pure-Python backend rebuilds these from _serialized_start/_end.
    proto = descriptor_pb2.DescriptorProto()
    trackable_object_graph_pb2.TrackableObjectGraph.TrackableObject.DESCRIPTOR.CopyToProto(proto)
    assert proto.name == "TrackableObject" and len(proto.nested_type) == 3
    print("ok")
    """
)


@pytest.mark.parametrize("backend", [None, "python"], ids=["default-backend", "pure-python"])
def test_modules_import_with_warnings_as_errors(backend: str | None) -> None:
    env = dict(os.environ)
    env.pop("PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION", None)
    if backend:
        env["PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION"] = backend
    proc = subprocess.run(
        [sys.executable, "-W", "error", "-c", _IMPORT_IN_ISOLATION, *sorted(OUR_MODULES)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
    assert proc.stderr == ""


def test_proto_package_is_not_tensorflow() -> None:
    for module in OUR_MODULES.values():
        assert module.DESCRIPTOR.package == OUR_PACKAGE
        stem = module.__name__.rpartition(".")[2].removesuffix("_pb2")
        assert module.DESCRIPTOR.name == f"tfckpt/proto/{stem}.proto"


# --------------------------------------------------------------------------- #
# 4. Round trips and known encodings
# --------------------------------------------------------------------------- #


def test_bundle_header_bytes() -> None:
    header = tensor_bundle_pb2.BundleHeaderProto(num_shards=1, version={"producer": 1})
    data = header.SerializeToString()
    assert data == bytes([0x08, 0x01, 0x1A, 0x02, 0x08, 0x01])
    parsed = tensor_bundle_pb2.BundleHeaderProto.FromString(data)
    assert parsed == header
    assert parsed.endianness == tensor_bundle_pb2.BundleHeaderProto.LITTLE
    assert tensor_bundle_pb2.BundleHeaderProto.BIG == 1


def test_bundle_entry_round_trip() -> None:
    entry = tensor_bundle_pb2.BundleEntryProto(
        dtype=types_pb2.DT_BFLOAT16,
        shape=tensor_shape_pb2.TensorShapeProto(dim=[{"size": 4}, {"size": -1, "name": "b"}]),
        shard_id=2,
        offset=1 << 40,
        size=16,
        crc32c=0xFFFFFFFF,
        slices=[{"extent": [{"start": 0, "length": 2}, {}]}],
    )
    parsed = tensor_bundle_pb2.BundleEntryProto.FromString(entry.SerializeToString())
    assert parsed == entry
    assert parsed.crc32c == 0xFFFFFFFF
    assert parsed.slices[0].extent[0].HasField("length")
    assert not parsed.slices[0].extent[1].HasField("length")
    # crc32c is fixed32: tag (6 << 3 | 5) then four little-endian bytes.
    only_crc = tensor_bundle_pb2.BundleEntryProto(crc32c=0x12345678).SerializeToString()
    assert only_crc == bytes([0x35, 0x78, 0x56, 0x34, 0x12])


def test_tensor_and_slices_round_trip() -> None:
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT,
        tensor_shape={"dim": [{"size": 2}]},
        float_val=[1.5, -2.0],
        half_val=[0x3C00],
        string_val=[b"\x00\xff"],
        variant_val=[{"type_name": "t", "metadata": b"m", "tensors": [{"dtype": 9}]}],
        resource_handle_val=[
            {"device": "/cpu:0", "hash_code": 2**64 - 1, "dtypes_and_shapes": [{"dtype": 1}]}
        ],
        uint64_val=[2**64 - 1],
        float8_val=b"\x01\x02",
    )
    assert tensor_pb2.TensorProto.FromString(tensor.SerializeToString()) == tensor
    slices = saved_tensor_slice_pb2.SavedTensorSlices(
        meta={"tensor": [{"name": "w", "type": types_pb2.DT_INT64}], "versions": {"producer": 1}},
        data={"name": "w", "slice": {"extent": [{}]}, "data": tensor},
    )
    parsed = saved_tensor_slice_pb2.SavedTensorSlices.FromString(slices.SerializeToString())
    assert parsed == slices


def test_trackable_object_graph_round_trip() -> None:
    graph = trackable_object_graph_pb2.TrackableObjectGraph(
        nodes=[
            {
                "children": [{"node_id": 1, "local_name": "v"}],
                "slot_variables": [
                    {"original_variable_node_id": 1, "slot_name": "m", "slot_variable_node_id": 2}
                ],
                "registered_saver": {"name": "saver", "object_name": "obj"},
                "has_checkpoint_values": {"value": True},
            },
            {"attributes": [{"name": "VARIABLE_VALUE", "checkpoint_key": "v/.ATTRIBUTES/V"}]},
        ]
    )
    data = graph.SerializeToString()
    parsed = trackable_object_graph_pb2.TrackableObjectGraph.FromString(data)
    assert parsed == graph
    assert parsed.nodes[0].HasField("has_checkpoint_values")
    assert not parsed.nodes[1].HasField("has_checkpoint_values")


def test_checkpoint_state_text_format() -> None:
    state = checkpoint_state_pb2.CheckpointState(
        model_checkpoint_path="model.ckpt-2",
        all_model_checkpoint_paths=["model.ckpt-1", "model.ckpt-2"],
        all_model_checkpoint_timestamps=[1.5, 2.5],
        last_preserved_timestamp=0.25,
    )
    text = text_format.MessageToString(state)
    assert text == (
        'model_checkpoint_path: "model.ckpt-2"\n'
        'all_model_checkpoint_paths: "model.ckpt-1"\n'
        'all_model_checkpoint_paths: "model.ckpt-2"\n'
        "all_model_checkpoint_timestamps: 1.5\n"
        "all_model_checkpoint_timestamps: 2.5\n"
        "last_preserved_timestamp: 0.25\n"
    )
    assert text_format.Parse(text, checkpoint_state_pb2.CheckpointState()) == state


def test_data_type_values() -> None:
    values = {v.name: v.number for v in types_pb2.DataType.DESCRIPTOR.values}
    assert values["DT_INVALID"] == 0
    assert values["DT_FLOAT"] == 1
    assert values["DT_FLOAT8_E5M2"] == 24
    assert values["DT_FLOAT4_E2M1FN"] == 33
    plain = {name: n for name, n in values.items() if 0 < n < 100}
    refs = {name: n for name, n in values.items() if n > 100}
    assert sorted(plain.values()) == list(range(1, 34))
    assert refs == {f"{name}_REF": n + 100 for name, n in plain.items()}
    assert types_pb2.SerializedDType(datatype=types_pb2.DT_INT4).SerializeToString() == b"\x08\x1d"


# --------------------------------------------------------------------------- #
# 2. Equivalence with TensorFlow's descriptors
# --------------------------------------------------------------------------- #


@pytest.fixture(scope="module")
def tf_modules(tf: ModuleType) -> dict[str, ModuleType]:
    """TensorFlow's generated modules; ``tf`` (tests/conftest.py) skips without TensorFlow."""
    return {ours: importlib.import_module(theirs) for ours, theirs in TF_MODULES.items()}


def _tf_pool(tf_modules: dict[str, ModuleType]) -> Any:
    return tf_modules["types_pb2"].DESCRIPTOR.pool


def _normalized_tf_file(proto: descriptor_pb2.FileDescriptorProto) -> None:
    """Rewrite TensorFlow's FileDescriptorProto into the form ours must have."""

    def our_file(name: str) -> str:
        if name.startswith("google/protobuf/"):
            return name
        return "tfckpt/proto/" + name.rpartition("/")[2]

    proto.name = our_file(proto.name)
    proto.package = OUR_PACKAGE
    deps = [our_file(d) for d in proto.dependency]
    del proto.dependency[:]
    proto.dependency.extend(deps)
    proto.ClearField("options")  # java_package, go_package, cc_enable_arenas
    for message in gen.walk_messages(proto.message_type):
        for field in message.field:
            if field.type_name.startswith(f".{TF_PACKAGE}."):
                field.type_name = f".{OUR_PACKAGE}." + field.type_name[len(TF_PACKAGE) + 2 :]
            if field.HasField("options"):
                # Explicit [packed = true] on proto3 repeated scalars is the
                # default, which our sources rely on instead.
                assert field.options == descriptor_pb2.FieldOptions(packed=True), field
                assert field.label == field.LABEL_REPEATED
                field.ClearField("options")


def _without_json_names(proto: descriptor_pb2.FileDescriptorProto) -> None:
    for message in gen.walk_messages(proto.message_type):
        for field in message.field:
            field.ClearField("json_name")


@pytest.mark.tf
@pytest.mark.parametrize("stem", sorted(TF_MODULES))
def test_file_descriptor_matches_tensorflow(stem: str, tf_modules: dict[str, ModuleType]) -> None:
    """Whole-file comparison: declaration order, oneofs, reserved ranges/names too."""
    ours = descriptor_pb2.FileDescriptorProto()
    OUR_MODULES[stem].DESCRIPTOR.CopyToProto(ours)
    theirs = descriptor_pb2.FileDescriptorProto()
    tf_modules[stem].DESCRIPTOR.CopyToProto(theirs)
    _normalized_tf_file(theirs)
    _without_json_names(ours)
    _without_json_names(theirs)
    if ours != theirs:
        diff = difflib.unified_diff(
            text_format.MessageToString(theirs).splitlines(),
            text_format.MessageToString(ours).splitlines(),
            "tensorflow (normalized)",
            "tfckpt",
            lineterm="",
        )
        pytest.fail("descriptor differs from TensorFlow's:\n" + "\n".join(diff))


def _field_facts(field: FieldDescriptor) -> dict[str, Any]:
    oneof = field.containing_oneof
    return {
        "number": field.number,
        "type": field.type,
        "cpp_type": field.cpp_type,
        "repeated": field.is_repeated,
        "required": field.is_required,
        "has_presence": field.has_presence,
        "packed": field.is_packed,
        "default": field.default_value if not field.is_repeated else None,
        "message_type": _local(field.message_type.full_name) if field.message_type else None,
        "enum_type": _local(field.enum_type.full_name) if field.enum_type else None,
        "oneof": oneof.name if oneof else None,
    }


@pytest.mark.tf
@pytest.mark.parametrize("ours", OUR_MESSAGES, ids=lambda d: d.full_name)
def test_message_matches_tensorflow(ours: Descriptor, tf_modules: dict[str, ModuleType]) -> None:
    theirs = _tf_pool(tf_modules).FindMessageTypeByName(f"{TF_PACKAGE}.{_local(ours.full_name)}")
    assert [f.name for f in ours.fields] == [f.name for f in theirs.fields]
    for field in ours.fields:
        assert _field_facts(field) == _field_facts(theirs.fields_by_name[field.name]), field.name
    assert {o.name: [f.name for f in o.fields] for o in ours.oneofs} == {
        o.name: [f.name for f in o.fields] for o in theirs.oneofs
    }
    assert [m.name for m in ours.nested_types] == [m.name for m in theirs.nested_types]
    assert [e.name for e in ours.enum_types] == [e.name for e in theirs.enum_types]


@pytest.mark.tf
@pytest.mark.parametrize("ours", OUR_ENUMS, ids=lambda d: d.full_name)
def test_enum_matches_tensorflow(ours: EnumDescriptor, tf_modules: dict[str, ModuleType]) -> None:
    theirs = _tf_pool(tf_modules).FindEnumTypeByName(f"{TF_PACKAGE}.{_local(ours.full_name)}")
    assert [(v.name, v.number) for v in ours.values] == [(v.name, v.number) for v in theirs.values]


@pytest.mark.tf
def test_wire_and_text_interop_with_tensorflow(
    tf: ModuleType, tf_modules: dict[str, ModuleType]
) -> None:
    import numpy as np

    tf_tensor = tf.make_tensor_proto(np.arange(6, dtype=np.float32).reshape(2, 3))
    ours = tensor_pb2.TensorProto.FromString(tf_tensor.SerializeToString())
    assert ours.dtype == types_pb2.DT_FLOAT
    assert [d.size for d in ours.tensor_shape.dim] == [2, 3]
    assert ours.SerializeToString() == tf_tensor.SerializeToString()

    entry = tensor_bundle_pb2.BundleEntryProto(
        dtype=types_pb2.DT_FLOAT4_E2M1FN,
        shape={"dim": [{"size": 3}]},
        shard_id=1,
        offset=7,
        size=2,
        crc32c=0x89ABCDEF,
        slices=[{"extent": [{"start": 1, "length": 2}]}],
    )
    tf_entry = tf_modules["tensor_bundle_pb2"].BundleEntryProto.FromString(
        entry.SerializeToString()
    )
    assert tf_entry.SerializeToString() == entry.SerializeToString()
    assert tf_entry.crc32c == 0x89ABCDEF and tf_entry.slices[0].extent[0].length == 2

    state = dict(
        model_checkpoint_path="/tmp/x/ckpt-3",
        all_model_checkpoint_paths=["/tmp/x/ckpt-2", "/tmp/x/ckpt-3"],
        all_model_checkpoint_timestamps=[1700000000.123456, 1700000100.5],
        last_preserved_timestamp=1699999999.0,
    )
    ours_text = text_format.MessageToString(checkpoint_state_pb2.CheckpointState(**state))
    tf_state = tf_modules["checkpoint_state_pb2"].CheckpointState(**state)
    assert ours_text == text_format.MessageToString(tf_state)


# --------------------------------------------------------------------------- #
# 3. Coexistence with TensorFlow in one process, both import orders
# --------------------------------------------------------------------------- #

_COEXIST = textwrap.dedent(
    """
    import importlib, sys
    TF_MODULES = {tf_modules!r}
    first = sys.argv[1]

    def load_ours():
        return {{n: importlib.import_module("tfckpt.proto." + n) for n in TF_MODULES}}

    def load_tf():
        import tensorflow  # noqa: F401
        return {{n: importlib.import_module(m) for n, m in TF_MODULES.items()}}

    if first == "tfckpt":
        ours, theirs = load_ours(), load_tf()
    else:
        theirs, ours = load_tf(), load_ours()

    from google.protobuf import descriptor_pool
    pool = descriptor_pool.Default()
    for name in ("BundleHeaderProto", "TensorProto", "DataType"):
        for package in ("tfckpt.proto", "tensorflow"):
            full = package + "." + name
            try:
                pool.FindMessageTypeByName(full)
            except KeyError:
                pool.FindEnumTypeByName(full)
    for n in TF_MODULES:
        assert ours[n].DESCRIPTOR.package == "tfckpt.proto", n
        assert theirs[n].DESCRIPTOR.package == "tensorflow", n
    header = ours["tensor_bundle_pb2"].BundleHeaderProto(num_shards=1, version={{"producer": 1}})
    tf_header = theirs["tensor_bundle_pb2"].BundleHeaderProto.FromString(header.SerializeToString())
    assert tf_header.num_shards == 1 and tf_header.version.producer == 1
    assert tf_header.SerializeToString() == bytes.fromhex("08011a020801")
    print("ok", first)
    """
)


@pytest.mark.tf
@pytest.mark.parametrize("first", ["tfckpt", "tensorflow"], ids=["tfckpt-first", "tf-first"])
def test_coexists_with_tensorflow(first: str) -> None:
    # Same rule as the ``tf`` fixture, without importing TensorFlow in this process.
    if importlib.util.find_spec("tensorflow") is None:
        if os.environ.get("TFCKPT_REQUIRE_TF") == "1":
            pytest.fail("TensorFlow is not installed but TFCKPT_REQUIRE_TF=1")
        pytest.skip("TensorFlow is not installed (TFCKPT_REQUIRE_TF=1 makes this an error)")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, "-c", _COEXIST.format(tf_modules=TF_MODULES), first],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().endswith(f"ok {first}"), proc.stdout + proc.stderr
