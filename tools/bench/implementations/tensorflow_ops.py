"""TensorFlow's rows: SaveV2, its checkpoint reader, tf.train.Checkpoint, TF-Agents'
NumpyState (tools/tf_numpy_state.py)."""

from __future__ import annotations

import os
from typing import Any

from .. import files
from ..checks import (
    check_loaded_weights,
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


def _variables(ctx: Ctx) -> Any:
    import tensorflow as tf

    data = ctx.data()
    variables = {name: tf.Variable(value) for name, value in data.items()}
    del data
    return tf.train.Checkpoint(**variables)


@impl(("save_sharded", "tf"))
def save_sharded(ctx: Ctx) -> Bench:
    import tensorflow as tf

    policy = tf.train.experimental.MaxShardSizePolicy(max_shard_size=ctx.max_shard_size())
    options = tf.train.CheckpointOptions(experimental_sharding_callback=policy)
    checkpoint = _variables(ctx)
    prefix = ctx.p.sharded_tf
    return save_bench(
        os.path.dirname(prefix),
        lambda: checkpoint.write(prefix, options=options),
        lambda _: check_object_checkpoint(prefix, ctx.man, "TF sharded Checkpoint.write"),
    )


def _save_async(ctx: Ctx, mode: str) -> Bench:
    """As tfckpt_ops._save_async, with tf.train.Checkpoint and tf.Variables."""
    import tensorflow as tf

    checkpoint = _variables(ctx)
    options = None if mode == "sync" else tf.train.CheckpointOptions(enable_async=True)
    out_dir = os.path.join(ctx.p.async_dir, f"tf_{mode}")
    prefix = os.path.join(out_dir, "ckpt")
    saved: list[str] = []

    def run() -> None:
        saved.append(checkpoint.save(prefix, options=options))
        if mode == "total":
            checkpoint.sync()

    def after() -> None:
        if mode == "block":
            checkpoint.sync()
        files.fsync_tree(out_dir)

    return Bench(
        run,
        prepare=lambda: files.fresh_dir(out_dir),
        after=after,
        verify=lambda _: check_object_checkpoint(saved[-1], ctx.man, f"TF save ({mode})"),
    )


@impl(("save_async", "tf"))
def save_sync(ctx: Ctx) -> Bench:
    return _save_async(ctx, "sync")


@impl(("save_async", "tf_async_block"))
def save_async_blocking(ctx: Ctx) -> Bench:
    return _save_async(ctx, "block")


@impl(("save_async", "tf_async_total"))
def save_async_total(ctx: Ctx) -> Bench:
    return _save_async(ctx, "total")


@impl(("load_var", "tf"))
def load_variables(ctx: Ctx) -> Bench:
    import tensorflow as tf

    from .. import workloads

    prefix = need(ctx.p.tf + ".index", "TF checkpoint")[: -len(".index")]

    def run() -> Any:
        out = {}
        for name, _shape in tf.train.list_variables(prefix):
            if workloads.hf_loaded(name):
                out[name] = tf.train.load_variable(prefix, name)
        return out

    return Bench(
        run, verify=lambda got: check_loaded_weights(got, ctx.man, "TF load_variable loop")
    )
