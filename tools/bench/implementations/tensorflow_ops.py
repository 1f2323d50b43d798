"""TensorFlow's rows: SaveV2, its checkpoint reader, tf.train.Checkpoint, TF-Agents'
NumpyState (tools/tf_numpy_state.py)."""

from __future__ import annotations

import os
from typing import Any

from ..checks import (
    check_numpy_state_checkpoint,
    check_object_checkpoint,
    check_shape_map,
    check_tensors,
)
from ..context import Bench, Ctx, need, save_bench
from .registry import impl


def _tf_numpy_state_class() -> Any:
    from tf_numpy_state import numpy_state_classes  # tools/, on sys.path via __main__

    return numpy_state_classes()[0]


@impl(("save", "tf"))
def save(ctx: Ctx) -> Bench:
    import tensorflow as tf

    data = ctx.data()
    names = list(data)
    tensors = [tf.constant(value) for value in data.values()]
    del data
    specs = [""] * len(names)
    prefix = ctx.p.tf

    def run() -> None:
        tf.raw_ops.SaveV2(
            prefix=prefix, tensor_names=names, shape_and_slices=specs, tensors=tensors
        )

    return save_bench(os.path.dirname(prefix), run)


@impl(("list", "tf"))
def list_keys(ctx: Ctx) -> Bench:
    import tensorflow as tf

    prefix = need(ctx.p.tf + ".index", "TF checkpoint")[: -len(".index")]

    def run() -> Any:
        return tf.train.load_checkpoint(prefix).get_variable_to_shape_map()

    return Bench(run, verify=lambda m: check_shape_map(m, ctx.man, "TF list"))


def _read(ctx: Ctx, prefix: str, what: str) -> Bench:
    import tensorflow as tf

    need(prefix + ".index", "checkpoint")

    def run() -> Any:
        reader = tf.train.load_checkpoint(prefix)
        return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}

    return Bench(run, verify=lambda got: check_tensors(got, ctx.man, what))


@impl(("read", "tf"))
def read(ctx: Ctx) -> Bench:
    return _read(ctx, ctx.p.tf, "TF read")


@impl(("read", "tf_xtfckpt"))
def read_tfckpt_file(ctx: Ctx) -> Bench:
    return _read(ctx, ctx.p.tfckpt, "TF read of tfckpt's file")


@impl(("save_obj", "tf"))
def save_object_based(ctx: Ctx) -> Bench:
    import tensorflow as tf

    data = ctx.data()
    variables = {name: tf.Variable(value) for name, value in data.items()}
    del data
    checkpoint = tf.train.Checkpoint(**variables)
    prefix = ctx.p.obj_tf
    return save_bench(
        os.path.dirname(prefix),
        lambda: checkpoint.write(prefix),
        lambda _: check_object_checkpoint(prefix, ctx.man, "TF Checkpoint.write"),
    )


@impl(("ns_save", "tf"))
def save_numpy_state(ctx: Ctx) -> Bench:
    import tensorflow as tf

    state = _tf_numpy_state_class()()
    for name, value in ctx.data().items():
        setattr(state, name, value)
    checkpoint = tf.train.Checkpoint(state=state)
    prefix = ctx.p.ns_tf
    return save_bench(
        os.path.dirname(prefix),
        lambda: checkpoint.write(prefix),
        lambda _: check_numpy_state_checkpoint(prefix, ctx.man, "TF NumpyState save"),
    )


@impl(("ns_restore", "tf"))
def restore_numpy_state(ctx: Ctx) -> Bench:
    import tensorflow as tf

    state_class = _tf_numpy_state_class()
    prefix = need(ctx.p.ns_tf + ".index", "TF NumpyState checkpoint")[: -len(".index")]
    names = ctx.man["order"]

    def run() -> Any:
        state = state_class()
        tf.train.Checkpoint(state=state).read(prefix)
        return {name: getattr(state, name) for name in names}

    return Bench(run, verify=lambda got: check_tensors(got, ctx.man, "TF NumpyState restore"))
